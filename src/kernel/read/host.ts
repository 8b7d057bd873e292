/**
 * The kernel reader: the actual state of one host, restricted to what lsdn owns, in a
 * constant number of processes whatever the number of objects:
 *
 *   ip -j -d -batch -       `addr show` (links with link/slave details, addresses) and `neigh show`
 *   bridge -j fdb show      every FDB entry (VXLAN `self` and bridge `master`)
 *   nft -s list ruleset     the tables lsdn owns (of the context: `lsdn_<context>`)
 *   tc -j qdisc show        every qdisc; lsdn's are on the interfaces it manages
 *
 * These four run concurrently; then at most two more tc processes (tc.ts), the address servers
 * from their files (servers.ts) and the sysctls the types name. Every object is decoded by its
 * kind (src/kinds); the hook's virt-scoped reader (virt.ts) uses the same decoders. Besides the
 * owned state it returns facts about every link of the host (does the VM's interface exist,
 * the underlay's MTU...).
 */
import type { Kernel } from '../exec.js';
import { KernelError } from '../../core/errors.js';
import { HostState, objectKey, type KernelObject, type LinkObject } from '../../core/objects.js';
import { isOwnedLink, isOwnedTap, isServerPort, isTapAlias } from '../../core/names.js';
import { addrsFromKernel } from '../../kinds/addr.js';
import type { PortFact } from '../../kinds/dhcp.js';
import { masterFdbFromKernel, selfFdbFromKernel } from '../../kinds/fdb.js';
import { linkIndex, splitJsonValues, type FdbEntry, type IpLink, type NeighEntry, type TcQdisc } from '../../kinds/iproute.js';
import { linkFromKernel } from '../../kinds/link.js';
import { neighFromKernel } from '../../kinds/neigh.js';
import { portFromKernel } from '../../kinds/port.js';
import { tapFromKernel } from '../../kinds/tap.js';
import { networkTypes } from '../../types/registry.js';
import { readNft } from './nft.js';
import { readServers, readSysctls } from './servers.js';
import { readTc } from './tc.js';

export interface LinkFact {
  name: string;
  ifindex: number;
  /** `linkinfo.info_kind` (absent for plain devices such as lo or a physical NIC). */
  type?: string;
  mtu: number;
  up: boolean;
  master?: string;
  alias?: string;
  mac: string;
  /** Every address, "ip/len" (link-local ones included). */
  addresses: string[];
}

export interface ReadResult {
  /** Owned objects only. */
  state: HostState;
  /** Every link on the host, by name. */
  links: Map<string, LinkFact>;
}

/** Read the host's links and its owned kernel state (optionally of one context only). */
export async function readHostState(kernel: Kernel, opts: { context?: string } = {}): Promise<ReadResult> {
  const [ipOut, fdb, nft, qdiscs] = await Promise.all([
    kernel.run('ip', ['-j', '-d', '-batch', '-'], { input: 'addr show\nneigh show\n' }),
    kernel.json<FdbEntry[]>('bridge', ['fdb', 'show']),
    readNft(kernel, opts.context),
    kernel.json<TcQdisc[]>('tc', ['qdisc', 'show']).catch((e: unknown) => {
      // Without tc there is nothing of lsdn's to read (like nft, above).
      if (e instanceof KernelError && e.exitCode === null && / is not installed/.test(e.message)) return [];
      throw e;
    }),
  ]);
  const ipLists = splitJsonValues(ipOut.stdout);
  if (ipLists.length !== 2 || !ipLists.every(Array.isArray)) {
    throw new KernelError(
      `ip -j -d -batch: expected two JSON lists (links, neighbours), got ${ipLists.length}`,
      kernel.argv('ip', ['-j', '-d', '-batch', '-']), ipOut.stderr, 0,
    );
  }
  const ipLinks = ipLists[0] as IpLink[];
  const neigh = ipLists[1] as NeighEntry[];

  const index = linkIndex(ipLinks);

  const links = new Map<string, LinkFact>();
  for (const l of ipLinks) {
    const fact: LinkFact = {
      name: l.ifname,
      ifindex: l.ifindex,
      mtu: l.mtu ?? 0,
      up: (l.flags ?? []).includes('UP'),
      mac: l.address ?? '',
      addresses: (l.addr_info ?? []).filter((a) => a.local !== undefined).map((a) => `${a.local}/${a.prefixlen}`),
    };
    if (l.linkinfo?.info_kind) fact.type = l.linkinfo.info_kind;
    if (l.master) fact.master = l.master;
    if (l.ifalias) fact.alias = l.ifalias;
    links.set(l.ifname, fact);
  }

  const objects: KernelObject[] = [];
  const owned = new Map<string, LinkObject>();
  const serverPorts = new Map<string, PortFact>();
  for (const l of ipLinks) {
    // Taps lsdn created for VMs: the name is the user's, so the alias alone marks them (src/core/names.ts).
    if (isTapAlias(l.ifalias)) {
      if (isOwnedTap(l.linkinfo?.info_kind, l.linkinfo?.info_data?.type, l.ifalias, opts.context)) objects.push(tapFromKernel(l));
      continue;
    }
    if (!isOwnedLink(l.ifname, l.ifalias, opts.context)) continue;
    if (isServerPort(l.ifalias)) {
      // The host end of an address server's veth: part of that server's object (src/kinds/dhcp.ts).
      const f = links.get(l.ifname) as LinkFact;
      serverPorts.set(l.ifname, { name: f.name, mtu: f.mtu, up: f.up, master: f.master, alias: f.alias });
      continue;
    }
    const link = linkFromKernel(l, index);
    owned.set(link.name, link);
    objects.push(link);
  }
  const ownedBridges = new Set([...owned.values()].filter((o) => o.type === 'bridge').map((o) => o.name));

  // Ports: foreign links enslaved to an owned bridge.
  const managed = new Set(owned.keys());
  for (const l of ipLinks) {
    if (owned.has(l.ifname) || !l.master || !ownedBridges.has(l.master)) continue;
    if (isOwnedLink(l.ifname, l.ifalias) && !isTapAlias(l.ifalias)) continue; // owned by another context
    const port = portFromKernel(l, l.master);
    objects.push(port);
    managed.add(port.name);
  }

  objects.push(...(await readTc(kernel, qdiscs, managed)));

  // FDB: `self` entries of owned VXLAN devices, `master` entries on owned bridges' ports.
  for (const e of fdb) {
    const o = selfFdbFromKernel(e, owned) ?? masterFdbFromKernel(e, ownedBridges);
    if (o) objects.push(o);
  }
  for (const n of neigh) {
    const o = neighFromKernel(n, owned);
    if (o) objects.push(o);
  }
  for (const l of ipLinks) if (owned.has(l.ifname)) objects.push(...addrsFromKernel(l));

  objects.push(...nft);
  objects.push(...readServers(kernel, opts.context, serverPorts));
  // The sysctls among the types' host objects, where the types say so (public: forwarding, where its table is).
  const sysctls = [...new Set(networkTypes().flatMap((t) => t.hostSysctls?.(objects) ?? []))];
  objects.push(...(await readSysctls(kernel, sysctls)));

  const state = new HostState();
  for (const o of objects) {
    // One key can show twice when entries differ only in what lsdn does not model (a VXLAN
    // entry's vni or via): the first stands for both.
    if (!state.get(objectKey(o))) state.add(o);
  }
  return { state, links };
}
