/**
 * Virts: name, connection (phys, interface), MAC, addresses, MTU, then each virt's rules,
 * rates and default policy.
 */
import { DIRECTIONS, type Phys, type Virt } from '../model/netmodel.js';
import { macIsMulticast, macIsZero, normalizeMac, parsePrefix } from '../core/addr.js';
import { virtInterfaceProblem } from '../core/charset.js';
import { RULE_ACTIONS, checkRules } from './rules.js';
import { checkRates } from './rates.js';
import { q, virtLabel, type Checker } from './checker.js';

export function checkVirts(c: Checker): void {
  /** First virt by "phys\0if". */
  const ifs = new Map<string, Virt>();
  const host = c.opts.host;
  for (const n of c.model.nets.values()) {
    const t = c.typeOf(n);
    const macs = new Map<string, Virt>();
    const addrs = new Map<string, Virt>();
    for (const v of n.virts.values()) {
      const label = virtLabel(v);
      c.checkName(label, 'virt', v.name, v);

      // Connection.
      let phys: Phys | undefined;
      if (v.physRef !== undefined) {
        const p = v.phys;
        if (!p || c.model.physes.get(p.name) !== p) {
          c.error('virt-phys-unknown', label, `it is connected through phys ${q(v.physRef)}, which is not defined`, v, 'phys');
        } else {
          phys = p;
          if (!n.physes.has(p)) {
            c.error('virt-phys-not-attached', label,
              `it is connected through phys ${q(p.name)}, which is not attached to net ${q(n.name)}`, v, 'phys');
          }
        }
      }
      if (v.if === undefined) {
        if (phys && c.inScope(phys)) {
          c.error('virt-if-missing', label, `it is connected to phys ${q(phys.name)} but has no interface ("if")`, v, 'if');
        }
      } else {
        const prob = virtInterfaceProblem(v.if);
        if (prob) {
          c.error('virt-if-invalid', label, `interface name ${q(v.if)} ${prob}`, v, 'if');
        } else if (phys) {
          const key = `${phys.name}\0${v.if}`;
          const first = ifs.get(key);
          if (first) {
            c.error('virt-if-duplicate', label,
              `interface ${q(v.if)} on phys ${q(phys.name)} is already the interface of virt ${first.id}`, v, 'if');
          } else {
            ifs.set(key, v);
          }
          if (v.if === phys.if) {
            c.error('virt-if-is-underlay', label,
              `interface ${q(v.if)} is the underlay interface of phys ${q(phys.name)}`, v, 'if');
          } else if (host && c.inScope(phys) && !host.interfaces.has(v.if) && !v.tap) {
            // (a `tap` virt's interface is created by apply)
            c.error('interface-missing', label, `interface ${q(v.if)} does not exist on this host (phys ${phys.name})`, v, 'if');
          }
        }
      }

      // MAC.
      if (v.mac === undefined) {
        if (t?.needsMac) {
          c.error('virt-mac-missing', label,
            `net ${q(n.name)} is ${t.name}, which programs every MAC: the virt needs a "mac"`, v, 'mac');
        }
      } else {
        const mac = typeof v.mac === 'string' ? normalizeMac(v.mac) : undefined;
        if (!mac) {
          c.error('virt-mac-invalid', label, `MAC ${q(v.mac)} is malformed (expected six hex pairs, like 02:00:00:00:00:01)`, v, 'mac');
        } else if (macIsZero(mac)) {
          c.error('virt-mac-invalid', label, `MAC ${q(v.mac)} is all zeros`, v, 'mac');
        } else if (macIsMulticast(mac)) {
          c.error('virt-mac-invalid', label, `MAC ${q(v.mac)} is a multicast address (its first byte is odd)`, v, 'mac');
        } else {
          const first = macs.get(mac);
          if (first) c.error('virt-mac-duplicate', label, `MAC ${q(v.mac)} is also the MAC of virt ${first.id} in net ${q(n.name)}`, v, 'mac');
          else macs.set(mac, v);
        }
      }

      // Addresses.
      for (const a of v.ips) {
        const pre = typeof a === 'string' && a.includes('/') ? parsePrefix(a) : undefined;
        if (!pre) {
          c.error('virt-ip-invalid', label, `address ${q(a)} is not an IP address with a prefix length (like "10.0.0.1/24")`, v, 'ips');
          continue;
        }
        const first = addrs.get(pre.ip);
        if (first && first !== v) c.error('virt-ip-duplicate', label, `address ${q(a)} is also an address of virt ${first.id} in net ${q(n.name)}`, v, 'ips');
        else if (!first) addrs.set(pre.ip, v);
      }

      // MTU.
      if (c.checkMtu('virt-mtu-invalid', label, v.mtu, v) && v.mtu !== undefined && phys && t) {
        const u = c.underlayMtu(phys);
        if (u) {
          const oh = t.overhead(c.underlayFamily(phys, n));
          if (v.mtu > u.mtu - oh) {
            c.error('mtu-too-large', label,
              `mtu ${v.mtu} exceeds what phys ${phys.name} carries: ${u.from} ${u.mtu} minus ${oh} bytes of ${t.name} overhead is ${u.mtu - oh}`,
              v, 'mtu');
          }
        }
      }

      checkRules(c, v);
      checkRates(c, v, label);
      checkPolicy(c, v, label);
    }
  }
}
export function checkPolicy(c: Checker, v: Virt, label: string): void {
  for (const dir of DIRECTIONS) {
    const a = v.policy[dir];
    if (!RULE_ACTIONS.includes(a)) {
      c.error('virt-policy-invalid', label, `policy ${dir} ${q(a)} is not one of ${RULE_ACTIONS.join(', ')}`, v, 'policy');
    }
  }
  if (v.stateful && v.mac === undefined) {
    c.error('virt-stateful-needs-mac', label,
      'it is stateful, which recognizes replies toward the VM by its MAC: give the virt a "mac"', v, 'stateful');
  }
}