/**
 * Ports: interfaces lsdn does not own (a VM's tap or veth, the underlay in `direct` mode)
 * enslaved to an owned bridge. Encoded as `link set dev X master B` / `nomaster`; decoded from
 * `ip -d -j link` (a foreign link whose master is an owned bridge).
 */
import type { PortObject } from '../core/objects.js';
import { Phase, type Command } from '../core/plan.js';
import { brportFlags, planPortFlags } from './brport.js';
import type { IpLink } from './iproute.js';
import { diffFields, type ObjectKind } from './kind.js';
import { linkSetArgs, updateLinkOrPort } from './link.js';
import { iprouteArg as a } from './escape.js';

export function attachPort(o: PortObject): Command[] {
  return [{ tool: 'ip', line: `link set dev ${a(o.name)} ${linkSetArgs({ mtu: o.mtu, master: o.master, up: o.up })}` }];
}

export function releasePort(o: PortObject): Command[] {
  return [{ tool: 'ip', line: `link set dev ${a(o.name)} nomaster` }];
}

/** A foreign interface enslaved to an owned bridge (a VM's tap or veth), as a port. */
export function portFromKernel(l: IpLink, master: string): PortObject {
  const port: PortObject = { kind: 'port', name: l.ifname, master, up: (l.flags ?? []).includes('UP') };
  if (l.mtu !== undefined) port.mtu = l.mtu;
  const bp = brportFlags(l);
  if (bp) port.brport = bp;
  return port;
}

export const PORT: ObjectKind<PortObject> = {
  kind: 'port',
  hangsOn: (o) => [o.master, o.name],
  blocked: (o, p) => p.dep(o.master, 'bridge'),
  remove(have, p) {
    if (!p.gone.has(have.master) && !p.gone.has(have.name)) p.add(Phase.ReleasePorts, 'delete', have, releasePort(have));
  },
  converge(want, have, _found, p) {
    // (A tap this plan deletes is missing too: the virt's interface is the hypervisor's again.)
    if (((p.facts.links && !p.facts.links.has(want.name)) || p.gone.has(want.name)) && !p.desired.get(`tap ${want.name}`)) {
      p.add(Phase.Ports, 'create', want, [], { blocked: `interface ${want.name} does not exist on this host` });
      return;
    }
    if (!have) {
      p.add(Phase.Ports, 'create', want, attachPort(want));
      planPortFlags(p, want, undefined, 'create');
    } else {
      const changes = diffFields(have, want, ['mtu', 'master', 'up']);
      if (changes.length) p.add(Phase.Ports, 'update', want, updateLinkOrPort(want.name, have, want), { changes });
      planPortFlags(p, want, have.brport, 'update');
    }
  },
};
