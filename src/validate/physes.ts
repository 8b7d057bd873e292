/**
 * Physes: name, underlay interface and IP, MTU against the overhead of the nets they carry,
 * what types require of them (their `checks.phys`), and UDP ports shared by their nets.
 */
import type { Net, Phys } from '../model/netmodel.js';
import { ipFamily, isMulticastIp, normalizeIp } from '../core/addr.js';
import { interfaceNameProblem } from '../core/charset.js';
import type { NetworkType } from '../types/plugin.js';
import { networkTypes } from '../types/registry.js';
import { IPV6_MIN_MTU, MTU_MIN, physLabel, q, type Checker } from './checker.js';

export function checkPhyses(c: Checker): void {
  const ips = new Map<string, Phys>();
  const host = c.opts.host;
  for (const p of c.model.physes.values()) {
    const label = physLabel(p);
    c.checkName(label, 'phys', p.name, p);
    const nets = [...c.model.nets.values()].filter((n) => p.nets.has(n));
    const typed = nets.flatMap((n) => {
      const t = c.typeOf(n);
      return t ? [{ n, t }] : [];
    });
    if (nets.length === 0) {
      c.warning('phys-unattached', label, `phys ${q(p.name)} is attached to no net`, p);
    }

    if (p.if === undefined) {
      if (nets.length > 0 && c.inScope(p)) {
        c.error('phys-if-missing', label,
          `it is attached to net ${q(nets[0]?.name)} but has no underlay interface ("if")`, p, 'if');
      }
    } else {
      const prob = interfaceNameProblem(p.if);
      if (prob) c.error('phys-if-invalid', label, `interface name ${q(p.if)} ${prob}`, p, 'if');
      else if (host && nets.length > 0 && c.inScope(p) && !host.interfaces.has(p.if)) {
        c.error('underlay-interface-missing', label, `underlay interface ${q(p.if)} does not exist on this host`, p, 'if');
      }
    }

    if (p.ip === undefined) {
      const needing = typed.find(({ t }) => t.needsPhysIp);
      if (needing) {
        c.error('phys-ip-missing', label,
          `net ${q(needing.n.name)} is ${needing.t.name}, which needs an underlay IP ("ip") on each of its physes`, p, 'ip');
      }
    } else if (typeof p.ip !== 'string' || ipFamily(p.ip) === undefined) {
      c.error('phys-ip-invalid', label, `ip ${q(p.ip)} is not an IP address`, p, 'ip');
    } else {
      const norm = normalizeIp(p.ip) ?? p.ip;
      if (isMulticastIp(p.ip) || norm === '0.0.0.0' || norm === '::' || norm === '255.255.255.255') {
        c.error('phys-ip-invalid', label, `ip ${q(p.ip)} is not a unicast address`, p, 'ip');
      } else {
        const first = ips.get(norm);
        if (first) c.error('phys-ip-duplicate', label, `ip ${q(p.ip)} is also the ip of phys ${q(first.name)}`, p, 'ip');
        else ips.set(norm, p);
      }
    }

    c.checkMtu('phys-mtu-invalid', label, p.mtu, p);
    const u = c.underlayMtu(p);
    if (u) {
      let worst: { n: Net; t: NetworkType; oh: number } | undefined;
      for (const { n, t } of typed) {
        const oh = t.overhead(c.underlayFamily(p, n));
        if (!worst || oh > worst.oh) worst = { n, t, oh };
      }
      if (worst) {
        const left = u.mtu - worst.oh;
        const msg = `${u.from} ${u.mtu} minus ${worst.oh} bytes of ${worst.t.name} overhead (net ${q(worst.n.name)}) leaves ${left}`;
        const field = p.mtu !== undefined ? 'mtu' : 'if';
        if (left < MTU_MIN) {
          c.error('phys-mtu-too-small', label, `${msg}, below the minimum MTU ${MTU_MIN}`, p, field);
        } else if (left < IPV6_MIN_MTU) {
          c.warning('phys-mtu-below-ipv6-minimum', label,
            `${msg}, below ${IPV6_MIN_MTU}: the overlay cannot carry IPv6`, p, field);
        }
      }
    }

    // What types require of a phys carrying their nets (direct: no other net).
    for (const owner of networkTypes()) owner.checks?.phys?.(p, typed, c.typeChecks);

    checkPorts(c, p, label, typed);
  }
}
/** Nets on one phys that share a UDP port must be of one family, and (LSDN) agree on learning. */
export function checkPorts(c: Checker, p: Phys, label: string, typed: { n: Net; t: NetworkType }[]): void {
  const byPort = new Map<number, { n: Net; t: NetworkType }[]>();
  for (const e of typed) {
    const port = c.portOf(e.n);
    if (port === undefined) continue;
    const list = byPort.get(port) ?? [];
    list.push(e);
    byPort.set(port, list);
  }
  for (const [port, list] of byPort) {
    const first = list[0];
    if (!first) continue;
    const otherFamily = list.find((e) => e.t.family !== first.t.family);
    if (otherFamily) {
      c.error('port-family-clash', label,
        `nets ${q(first.n.name)} (${first.t.name}) and ${q(otherFamily.n.name)} (${otherFamily.t.name}) both use UDP port ${port}; one port can carry only one encapsulation`,
        p);
    }
    const vx = list.filter((e) => e.t.family === 'vxlan');
    const learning = vx.find((e) => e.t.learning);
    const fixed = vx.find((e) => !e.t.learning);
    if (learning && fixed) {
      c.error('port-learning-clash', label,
        `static net ${q(fixed.n.name)} (${fixed.t.name}) and learning net ${q(learning.n.name)} (${learning.t.name}) both use UDP port ${port}; give one of their settings another port`,
        p);
    }
  }
}