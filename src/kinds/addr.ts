/** Addresses on owned links (a public net's gateway on its bridge): `ip addr add|del`; decoded from `ip -j addr show`. */
import type { AddrObject } from '../core/objects.js';
import { Phase, type Command } from '../core/plan.js';
import type { IpLink } from './iproute.js';
import type { ObjectKind } from './kind.js';
import { iprouteArg as a } from './escape.js';

export function createAddr(o: AddrObject): Command[] {
  return [{ tool: 'ip', line: `addr add ${a(o.prefix)} dev ${a(o.dev)}` }];
}

export function deleteAddr(o: AddrObject): Command[] {
  return [{ tool: 'ip', line: `addr del ${a(o.prefix)} dev ${a(o.dev)}` }];
}

/** The addresses of an owned link, without the IPv6 link-local ones the kernel gives it. */
export function addrsFromKernel(l: IpLink): AddrObject[] {
  const out: AddrObject[] = [];
  for (const a of l.addr_info ?? []) {
    if (a.local === undefined || a.prefixlen === undefined) continue;
    if (a.family === 'inet6' && /^fe[89ab]/i.test(a.local)) continue; // link-local
    out.push({ kind: 'addr', dev: l.ifname, prefix: `${a.local}/${a.prefixlen}` });
  }
  return out;
}

export const ADDR: ObjectKind<AddrObject> = {
  kind: 'addr',
  hangsOn: (o) => [o.dev],
  blocked: (o, p) => p.dep(o.dev, 'interface'),
  remove(have, p) {
    if (!p.gone.has(have.dev)) p.add(Phase.DeleteEntries, 'delete', have, deleteAddr(have));
  },
  converge(want, have, _found, p) {
    if (!have) p.add(Phase.CreateEntries, 'create', want, createAddr(want));
  },
};
