/**
 * The kernel reader: the actual state of one host, restricted to what lsdn owns, in a
 * constant number of processes whatever the number of objects:
 *
 *   ip -j -d addr show      links (with link/slave details) and their addresses
 *   bridge -j fdb show      every FDB entry (VXLAN `self` and bridge `master`)
 *   ip -j neigh show        neighbour entries
 *   nft -j list tables      then, only when lsdn owns tables: one `nft -s list` of them
 *
 * The four first run concurrently. Besides the owned state it returns facts about every
 * link of the host (does the VM's interface exist, the underlay's MTU...).
 */
import { Kernel, KernelError } from './exec.js';
import {
  HostState,
  isOwnedLink,
  objectKey,
  type BridgePortFlags,
  type FdbObject,
  type KernelObject,
  type LinkObject,
  type NftTableObject,
  type PortObject,
} from '../compile/state.js';

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

/** The five bridge-port flags lsdn manages, in the order `bridge link set` takes them. */
export const BRPORT_FLAGS = ['learning', 'flood', 'mcast_flood', 'bcast_flood', 'neigh_suppress', 'isolated'] as const;

/**
 * `port_range` of a VXLAN device created without `srcport` (measured on kernel 6.18 with
 * iproute2 6.1: the kernel keeps 0/0 and picks the source port in the host's ephemeral range).
 * A device whose range differs gets an explicit `srcport` attribute.
 */
export const VXLAN_DEFAULT_SRCPORT = { low: 0, high: 0 } as const;

/** Names of the nftables tables lsdn owns: `lsdn` and `lsdn_*`, in any family. */
export function isOwnedNftTable(name: string): boolean {
  return name === 'lsdn' || name.startsWith('lsdn_');
}

const NFT_FAMILIES: ReadonlySet<string> = new Set(['bridge', 'inet', 'netdev', 'ip', 'ip6']);

// ---- shapes of iproute2's JSON (only the fields used) ----

interface IpAddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
  scope?: string;
}

interface IpLink {
  ifindex: number;
  ifname: string;
  flags?: string[];
  mtu?: number;
  master?: string;
  address?: string;
  ifalias?: string;
  /** Lower device: a name, or (another namespace / old iproute2) an index. */
  link?: string | number | null;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: {
    info_kind?: string;
    info_data?: Record<string, unknown>;
    info_slave_kind?: string;
    info_slave_data?: Record<string, unknown>;
  };
  addr_info?: IpAddrInfo[];
}

interface FdbEntry {
  mac: string;
  ifname?: string;
  dst?: string;
  port?: number;
  vni?: number;
  master?: string;
  flags?: string[];
  state?: string;
}

interface NeighEntry {
  dst?: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}

interface NftListTables {
  nftables?: { table?: { family: string; name: string } }[];
}

// ---- helpers ----

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Resolve a device reference printed by iproute2 (a name, "if<N>" for an unknown name, or an index). */
function resolveDev(ref: unknown, byName: Map<string, IpLink>, byIndex: Map<number, IpLink>): string | undefined {
  if (typeof ref === 'number') return ref > 0 ? (byIndex.get(ref)?.ifname ?? `if${ref}`) : undefined;
  if (typeof ref !== 'string' || ref === '') return undefined;
  if (byName.has(ref)) return ref;
  const m = /^if(\d+)$/.exec(ref);
  if (m) return byIndex.get(Number(m[1]))?.ifname ?? ref;
  return ref;
}

function brportFlags(l: IpLink): BridgePortFlags | undefined {
  const li = l.linkinfo;
  if (!l.master || li?.info_slave_kind !== 'bridge' || !li.info_slave_data) return undefined;
  const d = li.info_slave_data;
  const out: BridgePortFlags = {};
  for (const f of BRPORT_FLAGS) out[f] = d[f] === true;
  return out;
}

/** Lower device of a stacked link (vlan, macvlan), when it is in this namespace. */
function lowerOf(l: IpLink, byName: Map<string, IpLink>, byIndex: Map<number, IpLink>): string | undefined {
  if (l.link_netnsid !== undefined) return undefined;
  if (l.link !== undefined && l.link !== null) return resolveDev(l.link, byName, byIndex);
  if (l.link_index !== undefined) return resolveDev(l.link_index, byName, byIndex);
  return undefined;
}

/** `attrs` of an owned link, in the keys and order the type plug-ins build them (see src/types). */
function linkAttrs(l: IpLink, byName: Map<string, IpLink>, byIndex: Map<number, IpLink>): LinkObject['attrs'] {
  const kind = l.linkinfo?.info_kind;
  const d = l.linkinfo?.info_data ?? {};
  const attrs: LinkObject['attrs'] = {};
  switch (kind) {
    case 'vxlan': {
      const id = num(d.id);
      if (id !== undefined) attrs.id = id;
      if (d.external === true) attrs.external = true;
      const group = str(d.group) ?? str(d.group6);
      const remote = str(d.remote) ?? str(d.remote6);
      if (group) attrs.group = group;
      else if (remote) attrs.remote = remote;
      const local = str(d.local) ?? str(d.local6);
      if (local) attrs.local = local;
      const dev = resolveDev(d.link, byName, byIndex);
      if (dev) attrs.dev = dev;
      const ttl = num(d.ttl);
      if (ttl) attrs.ttl = ttl;
      const port = num(d.port);
      if (port !== undefined) attrs.dstport = port;
      const range = d.port_range as { low?: number; high?: number } | undefined;
      if (range && (range.low !== VXLAN_DEFAULT_SRCPORT.low || range.high !== VXLAN_DEFAULT_SRCPORT.high)) {
        attrs.srcport = `${range.low ?? 0} ${range.high ?? 0}`;
      }
      attrs.learning = d.learning === true;
      break;
    }
    case 'geneve': {
      const id = num(d.id);
      if (id !== undefined) attrs.id = id;
      if (d.external === true) attrs.external = true;
      const remote = str(d.remote) ?? str(d.remote6);
      if (remote) attrs.remote = remote;
      const ttl = num(d.ttl);
      if (ttl) attrs.ttl = ttl;
      const port = num(d.port);
      if (port !== undefined) attrs.dstport = port;
      break;
    }
    case 'vlan': {
      const id = num(d.id);
      if (id !== undefined) attrs.id = id;
      break;
    }
    case 'macvlan': {
      const mode = str(d.mode);
      if (mode) attrs.mode = mode;
      break;
    }
    default:
      break;
  }
  return attrs;
}

function isNftMissing(e: unknown): boolean {
  if (!(e instanceof KernelError)) return false;
  // Not installed: spawn ENOENT (no exit code), or `ip netns exec` failing to exec it.
  if (e.exitCode === null && / is not installed/.test(e.message)) return true;
  if (/exec of "nft" failed/.test(e.stderr)) return true;
  // No nf_tables in this kernel: nothing lsdn could own either.
  return /Protocol not supported|Operation not supported|Address family not supported/.test(e.stderr);
}

/**
 * Parse `nft list table|ruleset` text: owned tables -> chains -> trimmed body lines (the hook
 * line `type filter hook ... policy ...;` first when the chain is a base chain). Sets, maps and
 * other table-level objects are not part of NftTableObject and are skipped.
 */
export function parseNftTables(text: string, wanted: (family: string, name: string) => boolean): NftTableObject[] {
  const out: NftTableObject[] = [];
  let table: NftTableObject | undefined;
  let chain: string[] | undefined;
  let depth = 0; // inside a table: 1 = table level, 2 = inside a chain/set/...
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+$/, '');
    if (depth === 0) {
      const m = /^table (\S+) (\S+) \{/.exec(line);
      if (!m) continue;
      const family = m[1] as string;
      const name = (m[2] as string).replace(/^"(.*)"$/, '$1');
      depth = 1;
      table = wanted(family, name) && NFT_FAMILIES.has(family)
        ? { kind: 'nft', family: family as NftTableObject['family'], name, chains: {} }
        : undefined;
      if (table) out.push(table);
      continue;
    }
    const t = line.trim();
    if (depth === 1) {
      if (t === '}') {
        depth = 0;
        table = undefined;
        continue;
      }
      const cm = /^chain (\S+) \{$/.exec(t);
      if (cm) {
        depth = 2;
        chain = table ? [] : undefined;
        if (table && chain) table.chains[(cm[1] as string).replace(/^"(.*)"$/, '$1')] = chain;
      } else if (t.endsWith('{')) {
        depth = 2;
        chain = undefined;
      }
      continue;
    }
    // depth 2: a chain's (or a set's) body, one statement per line; "}" at this level closes it.
    // A set's multi-line element list ("elements = { a,\n b }") only has "}" at its end of line.
    if (t === '}') {
      depth = 1;
      chain = undefined;
      continue;
    }
    if (chain && t) chain.push(t);
  }
  return out;
}

async function readNft(kernel: Kernel): Promise<NftTableObject[]> {
  let tables: { family: string; name: string }[];
  try {
    const j = await kernel.json<NftListTables>('nft', ['list', 'tables']);
    tables = (Array.isArray(j) ? [] : (j.nftables ?? []))
      .map((e) => e.table)
      .filter((t): t is { family: string; name: string } => !!t && isOwnedNftTable(t.name) && NFT_FAMILIES.has(t.family));
  } catch (e) {
    if (isNftMissing(e)) return [];
    throw e;
  }
  if (tables.length === 0) return [];
  const wanted = (family: string, name: string) => tables.some((t) => t.family === family && t.name === name);
  // nft 1.0.6 cannot list several tables in one process (its cache keeps only the last one):
  // one table is listed alone, several through the whole ruleset (still one process).
  const only = tables.length === 1 ? tables[0] : undefined;
  const args = only ? ['-s', 'list', 'table', only.family, only.name] : ['-s', 'list', 'ruleset'];
  const { stdout } = await kernel.run('nft', args);
  return parseNftTables(stdout, wanted);
}

/** Read the host's links and its owned kernel state (optionally of one context only). */
export async function readHostState(kernel: Kernel, opts: { context?: string } = {}): Promise<ReadResult> {
  const [ipLinks, fdb, neigh, nft] = await Promise.all([
    kernel.json<IpLink[]>('ip', ['-d', 'addr', 'show']),
    kernel.json<FdbEntry[]>('bridge', ['fdb', 'show']),
    kernel.json<NeighEntry[]>('ip', ['neigh', 'show']),
    readNft(kernel),
  ]);

  const byName = new Map<string, IpLink>();
  const byIndex = new Map<number, IpLink>();
  for (const l of ipLinks) {
    byName.set(l.ifname, l);
    byIndex.set(l.ifindex, l);
  }

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
  for (const l of ipLinks) {
    if (!isOwnedLink(l.ifname, l.ifalias, opts.context)) continue;
    const kind = l.linkinfo?.info_kind;
    const link: LinkObject = {
      kind: 'link',
      name: l.ifname,
      // An owned link of a type lsdn does not create keeps its real kind, so the planner sees it differ.
      type: (kind ?? 'unknown') as LinkObject['type'],
      alias: l.ifalias as string,
      up: (l.flags ?? []).includes('UP'),
      attrs: linkAttrs(l, byName, byIndex),
    };
    if (l.mtu !== undefined) link.mtu = l.mtu;
    if (kind === 'vlan' || kind === 'macvlan') {
      const lower = lowerOf(l, byName, byIndex);
      if (lower) link.lower = lower;
    }
    if (l.master) {
      link.master = l.master;
      const bp = brportFlags(l);
      if (bp) link.brport = bp;
    }
    owned.set(link.name, link);
    objects.push(link);
  }
  const ownedBridges = new Set([...owned.values()].filter((o) => o.type === 'bridge').map((o) => o.name));

  // Ports: foreign links enslaved to an owned bridge.
  for (const l of ipLinks) {
    if (owned.has(l.ifname) || !l.master || !ownedBridges.has(l.master)) continue;
    if (isOwnedLink(l.ifname, l.ifalias)) continue; // owned by another context
    const port: PortObject = { kind: 'port', name: l.ifname, master: l.master, up: (l.flags ?? []).includes('UP') };
    if (l.mtu !== undefined) port.mtu = l.mtu;
    const bp = brportFlags(l);
    if (bp) port.brport = bp;
    objects.push(port);
  }

  // FDB. `self` entries of an owned VXLAN device (other devices' `self` entries are their
  // unicast/multicast address lists) that were programmed (permanent/static), minus the
  // all-zero entry the kernel makes for the device's own group/remote. `master` entries of an
  // owned bridge programmed as `static` (not the bridge's `permanent` port-address entries,
  // not learned ones, whose state prints as "").
  for (const e of fdb) {
    const dev = e.ifname;
    if (!dev) continue;
    const flags = e.flags ?? [];
    if (flags.includes('self')) {
      const link = owned.get(dev);
      if (link?.type !== 'vxlan') continue;
      if (e.state !== 'permanent' && e.state !== 'static') continue;
      const devDst = link.attrs.group ?? link.attrs.remote;
      if (e.mac === '00:00:00:00:00:00' && e.dst !== undefined && e.dst === devDst) continue;
      const o: FdbObject = { kind: 'fdb', dev, mac: e.mac, table: 'self' };
      if (e.dst !== undefined) o.dst = e.dst;
      if (e.port !== undefined && e.port !== link.attrs.dstport) o.port = e.port;
      objects.push(o);
    } else if (e.master && ownedBridges.has(e.master) && e.state === 'static') {
      objects.push({ kind: 'fdb', dev, mac: e.mac, table: 'master' });
    }
  }

  for (const n of neigh) {
    if (!n.dev || !n.dst || !n.lladdr || !owned.has(n.dev)) continue;
    if (!(n.state ?? []).includes('PERMANENT')) continue;
    objects.push({ kind: 'neigh', dev: n.dev, ip: n.dst, mac: n.lladdr });
  }

  for (const l of ipLinks) {
    if (!owned.has(l.ifname)) continue;
    for (const a of l.addr_info ?? []) {
      if (a.local === undefined || a.prefixlen === undefined) continue;
      if (a.family === 'inet6' && /^fe[89ab]/i.test(a.local)) continue; // link-local
      objects.push({ kind: 'addr', dev: l.ifname, prefix: `${a.local}/${a.prefixlen}` });
    }
  }

  objects.push(...nft);

  const state = new HostState();
  for (const o of objects) {
    // One key can show twice when entries differ only in what lsdn does not model (a VXLAN
    // entry's vni or via): the first stands for both.
    if (!state.get(objectKey(o))) state.add(o);
  }
  return { state, links };
}
