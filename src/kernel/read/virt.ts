/**
 * The hook's virt-scoped reader (src/apply/virt.ts): one virt's objects, read with a fixed number
 * of per-device commands (`ip link show dev`, `bridge fdb show dev`, `tc qdisc show dev`, `nft
 * list chain`), whatever the model's size, and decoded by the same kinds as the full reader
 * (host.ts): what it finds is what a full read would find of them.
 */
import type { Kernel } from '../exec.js';
import { KernelError } from '../../core/errors.js';
import { HostState, type KernelObject, type NftTableObject } from '../../core/objects.js';
import { isOwnedLink, isOwnedTap } from '../../core/names.js';
import { masterFdbFromKernel } from '../../kinds/fdb.js';
import { linkIndex, type FdbEntry, type IpLink, type TcQdisc } from '../../kinds/iproute.js';
import { linkFromKernel } from '../../kinds/link.js';
import { parseNftTables } from '../../kinds/nft.js';
import { portFromKernel } from '../../kinds/port.js';
import { tapFromKernel } from '../../kinds/tap.js';
import { readTc } from './tc.js';

/** The names a virt's objects hang on. */
export interface VirtScope {
  /** Its interface (tap or adopted) on this host. */
  ifname: string;
  /** Its net's bridge. */
  bridge: string;
  /** Its IFB (rate limit of what it sends). */
  ifb: string;
  /** Its two firewall chains (in, out) in the context's bridge table `table`. */
  chains: string[];
  table: string;
}

/** One link (`ip -d -j link show dev X`); undefined when there is none. */
export async function linkShow(kernel: Kernel, dev: string): Promise<IpLink | undefined> {
  try {
    const [l] = await kernel.json<IpLink[]>('ip', ['-d', 'link', 'show', 'dev', dev]);
    return l;
  } catch (e) {
    if (e instanceof KernelError && /does not exist|Cannot find device/.test(e.stderr + e.message)) return undefined;
    throw e;
  }
}

/** One chain of a bridge table, as the full reader parses tables (undefined: no such table or chain). */
export async function chainShow(kernel: Kernel, table: string, chain: string): Promise<string[] | undefined> {
  try {
    const { stdout } = await kernel.run('nft', ['-s', 'list', 'chain', 'bridge', table, chain]);
    return parseNftTables(stdout, (family, name) => family === 'bridge' && name === table)[0]?.chains[chain];
  } catch (e) {
    if (e instanceof KernelError) return undefined; // no such table or chain (or no nft: nothing of lsdn's)
    throw e;
  }
}

/** Read the virt's scope from the kernel: a fixed number of processes, whatever the model. */
export async function readVirtScope(kernel: Kernel, context: string, scope: VirtScope):
  Promise<{ state: HostState; links: Set<string>; bridge?: IpLink }> {
  const [port, ifb, bridge, fdb, qdiscs, chains] = await Promise.all([
    linkShow(kernel, scope.ifname),
    linkShow(kernel, scope.ifb),
    linkShow(kernel, scope.bridge),
    kernel.json<FdbEntry[]>('bridge', ['fdb', 'show', 'dev', scope.ifname]).catch(() => [] as FdbEntry[]),
    // (`show dev X` leaves the device out of each entry: put it back)
    Promise.all([scope.ifname, scope.ifb].map((d) => kernel.json<TcQdisc[]>('tc', ['qdisc', 'show', 'dev', d])
      .then((qs) => qs.map((q) => ({ ...q, dev: q.dev ?? d })), () => [] as TcQdisc[]))),
    Promise.all(scope.chains.map((c) => chainShow(kernel, scope.table, c))),
  ]);
  const objects: KernelObject[] = [];
  const links = new Set<string>();
  const managed = new Set<string>();
  const bridgeOwned = bridge !== undefined && isOwnedLink(bridge.ifname, bridge.ifalias, context) && bridge.linkinfo?.info_kind === 'bridge';
  if (port) {
    links.add(port.ifname);
    if (isOwnedTap(port.linkinfo?.info_kind, port.linkinfo?.info_data?.type, port.ifalias, context)) objects.push(tapFromKernel(port));
    // A port as the full reader sees one: enslaved to the net's (owned) bridge.
    if (port.master === scope.bridge && bridgeOwned) {
      objects.push(portFromKernel(port, port.master));
      managed.add(port.ifname);
      for (const e of fdb) {
        const o = masterFdbFromKernel(e, new Set([scope.bridge]), port.ifname);
        if (o) objects.push(o);
      }
    }
  }
  if (ifb) {
    links.add(ifb.ifname);
    if (isOwnedLink(ifb.ifname, ifb.ifalias, context)) {
      objects.push(linkFromKernel(ifb, linkIndex([ifb])));
      managed.add(ifb.ifname);
    }
  }
  if (bridge) links.add(bridge.ifname);
  objects.push(...(await readTc(kernel, qdiscs.flat(), managed)));
  const found = scope.chains.flatMap((c, i) => (chains[i] ? [[c, chains[i]] as [string, string[]]] : []));
  if (found.length) objects.push({ kind: 'nft', family: 'bridge', name: scope.table, chains: Object.fromEntries(found) } satisfies NftTableObject);
  return { state: new HostState(objects), links, ...(bridge ? { bridge } : {}) };
}
