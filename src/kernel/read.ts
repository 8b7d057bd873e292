/**
 * The kernel reader: the actual state of one host, restricted to what lsdn owns, in a
 * constant number of processes whatever the number of objects:
 *
 *   ip -j -d -batch -       `addr show` (links with link/slave details, addresses) and `neigh show`
 *   bridge -j fdb show      every FDB entry (VXLAN `self` and bridge `master`)
 *   nft -s list ruleset     the tables lsdn owns (of the context: `lsdn_<context>`)
 *   tc -j qdisc show        every qdisc; lsdn's are on the interfaces it manages
 *
 * These four run concurrently; then, only when there is something to look at, two more at
 * most, concurrently: `tc -j -batch -` with `filter show dev X ingress` for the managed
 * interfaces that have an ingress qdisc, and `tc qdisc show` (text: the only place tc prints
 * a tbf's peak rate) when one of lsdn's tbf has a peak rate. Besides the owned state it
 * returns facts about every link of the host (does the VM's interface exist, the underlay's MTU...).
 */
import { Kernel } from './exec.js';
import { KernelError } from '../core/errors.js';
import { HostState, objectKey, type BridgePortFlags, type FdbObject, type KernelObject, type LinkObject, type NftTableObject, type PortObject, type QdiscObject, type TapObject } from '../core/objects.js';
import { isOwnedLink } from '../core/names.js';
import { isOwnedTap, isTapAlias } from '../core/names.js';
import { FILTER_PREF, QDISC_HANDLE, tbfLimitFromLatency } from '../policy/shaping.js';
import { canonicalNftLine } from '../policy/nft.js';
import { nftTableName } from '../core/names.js';
import { isServerPort } from '../core/names.js';
import { readServers, readSysctls, type PortFact } from '../services/read.js';
import { networkTypes } from '../types/registry.js';
import { isOwnedNftTable } from '../core/names.js';

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

const NFT_FAMILIES: ReadonlySet<string> = new Set(['bridge', 'inet', 'netdev', 'ip', 'ip6']);

// ---- shapes of iproute2's JSON (only the fields used) ----

interface IpAddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
  scope?: string;
}

export interface IpLink {
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

export interface FdbEntry {
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

export interface TcQdisc {
  kind?: string;
  handle?: string;
  dev?: string;
  root?: boolean;
  parent?: string;
  options?: { rate?: number; burst?: number; lat?: number; minburst?: number };
}

interface TcFilter {
  pref?: number;
  kind?: string;
  options?: { actions?: { kind?: string; mirred_action?: string; direction?: string; to_dev?: string }[] };
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

export function brportFlags(l: IpLink): BridgePortFlags | undefined {
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
    if (chain && t) chain.push(canonicalNftLine(t));
  }
  return out;
}

/** Split concatenated JSON values (what `ip|tc -j -batch` print, one per command). */
export function splitJsonValues(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '[' || c === '{') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === ']' || c === '}') {
      depth--;
      if (depth === 0 && start >= 0) {
        out.push(JSON.parse(text.slice(start, i + 1)));
        start = -1;
      }
    }
  }
  return out;
}

/** A rate as tc's text prints it ("41943Kbit", "20Mibit", "999bit") in bit/s. */
export function parseTcRate(text: string): number | undefined {
  const m = /^([\d.]+)([KMGT]?)(i?)bit$/.exec(text);
  if (!m) return undefined;
  const base = m[3] ? 1024 : 1000;
  return Math.round(Number(m[1]) * base ** ' KMGT'.indexOf(m[2] || ' '));
}

/**
 * The owned tables, in one process: the whole ruleset, stateless (`-s`: no counter values).
 * (nft 1.0.6 cannot list several tables in one process, its cache keeps only the last one.)
 * With a context, only that context's tables (`lsdn_<context>`, in any family).
 */
async function readNft(kernel: Kernel, context?: string): Promise<NftTableObject[]> {
  let stdout: string;
  try {
    ({ stdout } = await kernel.run('nft', ['-s', 'list', 'ruleset']));
  } catch (e) {
    if (isNftMissing(e)) return [];
    throw e;
  }
  const mine = context !== undefined ? nftTableName(context) : undefined;
  return parseNftTables(stdout, (_family, name) => (mine !== undefined ? name === mine : isOwnedNftTable(name)));
}

/**
 * lsdn's qdiscs and redirect filters on the interfaces it manages (`devs`): root qdiscs with
 * lsdn's handle, and ingress qdiscs that hold lsdn's redirect filter.
 */
export async function readTc(kernel: Kernel, qdiscs: TcQdisc[], devs: ReadonlySet<string>): Promise<KernelObject[]> {
  const out: KernelObject[] = [];
  const tbfs: QdiscObject[] = [];
  const ingress: string[] = [];
  const withPeak = new Set<string>();
  for (const q of qdiscs) {
    if (!q.dev || !devs.has(q.dev)) continue;
    if (q.kind === 'ingress') {
      ingress.push(q.dev);
    } else if (q.root && q.handle === QDISC_HANDLE && q.kind === 'tbf') {
      const o = q.options ?? {};
      const rateBps = o.rate ?? 0;
      const obj: QdiscObject = { kind: 'qdisc', dev: q.dev, parent: 'root', type: 'tbf', rate: rateBps * 8, burst: o.burst ?? 0 };
      if (o.minburst !== undefined) {
        obj.mtu = o.minburst;
        withPeak.add(q.dev);
      }
      if (o.lat !== undefined) obj.limit = tbfLimitFromLatency(o.lat, rateBps, obj.burst ?? 0);
      tbfs.push(obj);
    }
  }
  ingress.sort();
  const [filters, text] = await Promise.all([
    ingress.length
      ? kernel.run('tc', ['-j', '-batch', '-'], { input: ingress.map((d) => `filter show dev ${d} ingress`).join('\n') + '\n' }).catch(() => ({ stdout: '' }))
      : undefined,
    withPeak.size ? kernel.run('tc', ['qdisc', 'show']) : undefined,
  ]);
  if (filters) {
    let lists = splitJsonValues(filters.stdout) as TcFilter[][];
    // A device gone between the reads prints no list: then ask again one device at a time.
    if (lists.length !== ingress.length) {
      lists = await Promise.all(ingress.map((d) => kernel.json<TcFilter[]>('tc', ['filter', 'show', 'dev', d, 'ingress']).catch(() => [])));
    }
    ingress.forEach((dev, i) => {
      const f = (lists[i] ?? []).find((x) => x.pref === FILTER_PREF && x.kind === 'u32' && x.options?.actions?.length);
      const a = f?.options?.actions?.[0];
      if (!a || a.kind !== 'mirred' || a.mirred_action !== 'redirect' || a.direction !== 'egress' || !a.to_dev) return;
      out.push({ kind: 'qdisc', dev, parent: 'ingress', type: 'ingress' });
      out.push({ kind: 'filter', dev, parent: 'ingress', pref: FILTER_PREF, redirect: a.to_dev });
    });
  }
  if (text) {
    for (const line of text.stdout.split('\n')) {
      const m = /^qdisc tbf \S+ dev (\S+) .*\bpeakrate (\S+)/.exec(line);
      const q = m ? tbfs.find((t) => t.dev === m[1]) : undefined;
      const peak = m ? parseTcRate(m[2] as string) : undefined;
      if (q && peak !== undefined) q.peakrate = peak;
    }
  }
  for (const q of tbfs) {
    // With a peak rate tc prints the larger of the two queue times: recompute the limit with it.
    const src = qdiscs.find((x) => x.dev === q.dev && x.root && x.handle === QDISC_HANDLE);
    const lat = src?.options?.lat;
    if (lat !== undefined && q.peakrate !== undefined) {
      q.limit = tbfLimitFromLatency(lat, (q.rate ?? 0) / 8, q.burst ?? 0, q.peakrate / 8, q.mtu);
    }
    out.push(q);
  }
  return out;
}

/** An lsdn tap as `ip -d -j link` shows it (tun info: owner, multi-queue, vnet header; carrier: a VM has it open). */
export function tapFromKernel(l: IpLink): TapObject {
  const d = l.linkinfo?.info_data ?? {};
  const o: TapObject = {
    kind: 'tap', name: l.ifname, alias: l.ifalias as string, multiQueue: d.multi_queue === true, vnetHdr: d.vnet_hdr === true,
    attached: (l.flags ?? []).includes('LOWER_UP'),
  };
  if (d.user !== undefined && d.user !== null) o.user = String(d.user as string | number);
  if (d.group !== undefined && d.group !== null) o.group = String(d.group as string | number);
  return o;
}

/**
 * An owned link as the kernel shows it (`ip -d -j link`). `byName`/`byIndex`: the links that
 * attributes may refer to (a VXLAN's device, a VLAN's lower link).
 */
export function ownedLinkFromKernel(l: IpLink, byName: Map<string, IpLink>, byIndex: Map<number, IpLink>): LinkObject {
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
  if (kind === 'bridge') {
    const d = l.linkinfo?.info_data ?? {};
    const v4 = d.nf_call_iptables === 1 || d.nf_call_iptables === true;
    const v6 = d.nf_call_ip6tables === 1 || d.nf_call_ip6tables === true;
    if (v4 || v6) link.netfilter = v4 && v6;
  }
  return link;
}

/** A foreign interface enslaved to an owned bridge (a VM's tap or veth), as a port. */
export function portFromKernel(l: IpLink, master: string): PortObject {
  const port: PortObject = { kind: 'port', name: l.ifname, master, up: (l.flags ?? []).includes('UP') };
  if (l.mtu !== undefined) port.mtu = l.mtu;
  const bp = brportFlags(l);
  if (bp) port.brport = bp;
  return port;
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
  const serverPorts = new Map<string, PortFact>();
  for (const l of ipLinks) {
    // Taps lsdn created for VMs: the name is the user's, so the alias alone marks them (src/vm/tap.ts).
    if (isTapAlias(l.ifalias)) {
      if (isOwnedTap(l.linkinfo?.info_kind, l.linkinfo?.info_data?.type, l.ifalias, opts.context)) objects.push(tapFromKernel(l));
      continue;
    }
    if (!isOwnedLink(l.ifname, l.ifalias, opts.context)) continue;
    if (isServerPort(l.ifalias)) {
      // The host end of an address server's veth: part of that server's object (src/services).
      const f = links.get(l.ifname) as LinkFact;
      serverPorts.set(l.ifname, { name: f.name, mtu: f.mtu, up: f.up, master: f.master, alias: f.alias });
      continue;
    }
    const link = ownedLinkFromKernel(l, byName, byIndex);
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
