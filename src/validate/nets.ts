/**
 * Nets: name, settings, id (range, unique per family and port), MTU, the underlay families of
 * their physes and their multicast group.
 */
import type { Net, Phys } from '../model/netmodel.js';
import { ipFamily, type IpFamily } from '../core/addr.js';
import { quoteList as listNames } from '../core/problem.js';
import { familyName, isIntIn, netLabel, q, type Checker } from './checker.js';

export function checkNets(c: Checker): void {
  /** First net by "family port id" (vxlan/geneve families) or "vlan id". */
  const ids = new Map<string, Net>();
  for (const n of c.model.nets.values()) {
    const label = netLabel(n);
    c.checkName(label, 'net', n.name, n);
    checkNetSettings(c, n, label);
    const t = c.typeOf(n);

    if (t) {
      if (n.vid !== undefined) {
        if (t.idRange && !isIntIn(n.vid, t.idRange[0], t.idRange[1])) {
          c.error('net-vid-invalid', label,
            `vid ${q(n.vid)} is outside ${t.name}'s range ${t.idRange[0]}..${t.idRange[1]}`, n, 'vid');
        }
      } else if (t.idRange && !t.defaultId) {
        c.error('net-vid-missing', label,
          `a ${t.name} net needs a vid (${t.idRange[0]}..${t.idRange[1]})`, n, 'vid');
      }
      const id = c.idOf(n);
      const port = c.portOf(n);
      if (t.idRange && isIntIn(id, t.idRange[0], t.idRange[1]) && (t.defaultPort === undefined || port !== undefined)) {
        const key = `${t.family} ${port ?? '-'} ${id}`;
        const first = ids.get(key);
        if (first) {
          const firstType = c.typeOf(first)?.name ?? '?';
          const on = port !== undefined ? ` on UDP port ${port}` : '';
          const implicit = n.vid === undefined ? ' (the vni of its settings)' : '';
          c.error('net-id-duplicate', label,
            `id ${id}${implicit}${on} is already used by net ${q(first.name)} (${firstType}); nets of the ${t.family} family${port !== undefined ? ' on one port' : ''} need distinct ids`,
            n, 'vid');
        } else {
          ids.set(key, n);
        }
      }
    }

    const mtuOk = c.checkMtu('net-mtu-invalid', label, n.mtu, n);
    const physes = c.physesWhere((p) => n.physes.has(p));
    if (physes.length === 0) {
      c.warning('net-no-physes', label, `net ${q(n.name)} is attached to no phys, so none of its virts can reach another`, n);
    }

    // Underlay IP families of the physes.
    const byFamily = new Map<IpFamily, Phys>();
    for (const p of physes) {
      const f = p.ip !== undefined ? ipFamily(p.ip) : undefined;
      if (f !== undefined && !byFamily.has(f)) byFamily.set(f, p);
    }
    const p4 = byFamily.get(4);
    const p6 = byFamily.get(6);
    if (p4 && p6) {
      c.error('net-mixed-ip-family', label,
        `its physes mix IPv4 and IPv6 underlay addresses: ${p4.name} has ${q(p4.ip)}, ${p6.name} has ${q(p6.ip)}`, n);
    }
    const gf = c.groupFamily(n);
    if (gf !== undefined) {
      const other = gf === 4 ? p6 : p4;
      if (other) {
        const s = c.settingsOf(n);
        c.error('net-mcast-family', label,
          `multicast group ${q(s?.options.mcastIp)} of settings ${q(s?.name)} is ${familyName(gf)}, but phys ${other.name} has the ${familyName(gf === 4 ? 6 : 4)} underlay address ${q(other.ip)}`,
          n, 'settings');
      }
    }

    if (t && mtuOk && n.mtu !== undefined) {
      for (const p of physes) {
        const u = c.underlayMtu(p);
        if (!u) continue;
        const oh = t.overhead(c.underlayFamily(p, n));
        if (n.mtu > u.mtu - oh) {
          c.error('mtu-too-large', label,
            `mtu ${n.mtu} exceeds what phys ${p.name} carries: ${u.from} ${u.mtu} minus ${oh} bytes of ${t.name} overhead is ${u.mtu - oh}`,
            n, 'mtu');
          break;
        }
      }
    }
  }
}
export function checkNetSettings(c: Checker, n: Net, label: string): void {
  const m = c.model;
  if (n.settingsRef !== undefined) {
    const s = n.settings;
    if (!s || s.removed || m.settings.get(s.name) !== s) {
      const why = s?.removed ? 'was removed' : 'is not defined';
      c.error('net-settings-unknown', label,
        `settings ${q(n.settingsRef)} ${why} (settings: ${listNames(m.settings.keys())})`, n, 'settings');
    }
  } else if (!m.defaultSettings()) {
    c.error('net-settings-missing', label,
      m.settings.size === 0
        ? 'names no settings, and no settings are defined'
        : `names no settings, and there is no default among ${listNames(m.settings.keys())}: name the net's settings or call one "default"`,
      n, 'settings');
  }
}