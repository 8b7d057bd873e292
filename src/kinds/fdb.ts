/**
 * Forwarding-database entries: on a VXLAN device (`self`: remote endpoint, head-end
 * replication) or on a bridge port (`master`: a MAC programmed as static). Encoded as
 * `bridge fdb replace|append|del`; decoded from `bridge -j fdb show`.
 */
import type { FdbObject, LinkObject } from '../core/objects.js';
import { Phase, type Command } from '../core/plan.js';
import type { FdbEntry } from './iproute.js';
import type { ObjectKind, PlanContext } from './kind.js';
import { iprouteArg as a } from './escape.js';

const bridge = (line: string): Command => ({ tool: 'bridge', line });

export function createFdb(o: FdbObject): Command[] {
  if (o.table === 'master') return [bridge(`fdb replace ${a(o.mac)} dev ${a(o.dev)} master static`)];
  const dst = o.dst ? ` dst ${a(o.dst)}` : '';
  const port = o.port !== undefined ? ` port ${o.port}` : '';
  return [bridge(`fdb append ${a(o.mac)} dev ${a(o.dev)}${dst}${port} self permanent`)];
}

export function deleteFdb(o: FdbObject): Command[] {
  if (o.table === 'master') return [bridge(`fdb del ${a(o.mac)} dev ${a(o.dev)} master`)];
  const dst = o.dst ? ` dst ${a(o.dst)}` : '';
  return [bridge(`fdb del ${a(o.mac)} dev ${a(o.dev)}${dst} self`)];
}

/**
 * An entry lsdn programmed on a bridge port: `master` of an owned bridge, `static` (not the
 * bridge's `permanent` port-address entries, not learned ones, whose state prints as ""). `dev`:
 * when the listing left the device out (`bridge fdb show dev X`).
 */
export function masterFdbFromKernel(e: FdbEntry, ownedBridges: ReadonlySet<string>, dev = e.ifname): FdbObject | undefined {
  if (!dev || (e.flags ?? []).includes('self')) return undefined;
  if (!e.master || !ownedBridges.has(e.master) || e.state !== 'static') return undefined;
  return { kind: 'fdb', dev, mac: e.mac, table: 'master' };
}

/**
 * An entry lsdn programmed on an owned VXLAN device (`self`: other devices' `self` entries are
 * their unicast/multicast address lists): permanent or static, minus the all-zero entry the
 * kernel makes for the device's own group/remote.
 */
export function selfFdbFromKernel(e: FdbEntry, owned: ReadonlyMap<string, LinkObject>): FdbObject | undefined {
  const dev = e.ifname;
  if (!dev || !(e.flags ?? []).includes('self')) return undefined;
  const link = owned.get(dev);
  if (link?.type !== 'vxlan') return undefined;
  if (e.state !== 'permanent' && e.state !== 'static') return undefined;
  const devDst = link.attrs.group ?? link.attrs.remote;
  if (e.mac === '00:00:00:00:00:00' && e.dst !== undefined && e.dst === devDst) return undefined;
  const o: FdbObject = { kind: 'fdb', dev, mac: e.mac, table: 'self' };
  if (e.dst !== undefined) o.dst = e.dst;
  if (e.port !== undefined && e.port !== link.attrs.dstport) o.port = e.port;
  return o;
}

/** The bridge a desired interface is (to be) a port of. */
function masterOf(p: PlanContext, dev: string): string | undefined {
  const d = p.desired.get(`link ${dev}`) ?? p.desired.get(`port ${dev}`);
  return d && (d.kind === 'link' || d.kind === 'port') ? d.master : undefined;
}

/** A master FDB entry on a port that leaves its bridge goes away with the enslavement. */
function releasedPort(p: PlanContext, dev: string): boolean {
  return p.actual.get(`port ${dev}`) !== undefined && !p.desired.get(`port ${dev}`);
}

export const FDB: ObjectKind<FdbObject> = {
  kind: 'fdb',
  hangsOn: (o) => [o.dev],
  blocked: (o, p) => p.dep(o.dev, 'interface') ?? (o.table === 'master' ? p.dep(masterOf(p, o.dev), 'bridge') : undefined),
  remove(have, p) {
    if (!p.gone.has(have.dev) && !releasedPort(p, have.dev)) p.add(Phase.DeleteEntries, 'delete', have, deleteFdb(have));
  },
  converge(want, have, _found, p) {
    if (have) return;
    const missingDev = want.table === 'master' && p.facts.links && !p.facts.links.has(want.dev) && !p.willCreate(want.dev);
    if (missingDev) p.add(Phase.CreateEntries, 'create', want, [], { blocked: `interface ${want.dev} does not exist on this host` });
    else p.add(Phase.CreateEntries, 'create', want, createFdb(want));
  },
};
