/** Permanent neighbour (ARP/ND) entries on owned links: `ip neigh replace|del`; decoded from `ip -j neigh show`. */
import type { NeighObject } from '../core/objects.js';
import { Phase, type Command } from '../core/plan.js';
import type { NeighEntry } from './iproute.js';
import type { ObjectKind } from './kind.js';
import { iprouteArg as a } from './escape.js';

export function createNeigh(o: NeighObject): Command[] {
  return [{ tool: 'ip', line: `neigh replace ${a(o.ip)} lladdr ${a(o.mac)} dev ${a(o.dev)} nud permanent` }];
}

export function deleteNeigh(o: NeighObject): Command[] {
  return [{ tool: 'ip', line: `neigh del ${a(o.ip)} dev ${a(o.dev)}` }];
}

/** A permanent entry on an owned link (others are the kernel's or someone else's). */
export function neighFromKernel(n: NeighEntry, owned: { has(dev: string): boolean }): NeighObject | undefined {
  if (!n.dev || !n.dst || !n.lladdr || !owned.has(n.dev)) return undefined;
  if (!(n.state ?? []).includes('PERMANENT')) return undefined;
  return { kind: 'neigh', dev: n.dev, ip: n.dst, mac: n.lladdr };
}

export const NEIGH: ObjectKind<NeighObject> = {
  kind: 'neigh',
  hangsOn: (o) => [o.dev],
  blocked: (o, p) => p.dep(o.dev, 'interface'),
  remove(have, p) {
    if (!p.gone.has(have.dev)) p.add(Phase.DeleteEntries, 'delete', have, deleteNeigh(have));
  },
  converge(want, have, _found, p) {
    if (!have || have.mac !== want.mac) p.add(Phase.CreateEntries, have ? 'update' : 'create', want, createNeigh(want));
  },
};
