/**
 * IP address management (pure): which addresses each virt has.
 *
 * - IPv4: a virt's static address (the first of its `ip` in the net's subnet), else its
 *   recorded allocation (the model file's `allocations` section, written by `lsdn allocate`)
 *   when it is still valid, else a new allocation from the net's pools.
 * - IPv6: its static addresses, plus, on a /64 subnet served by router advertisements (SLAAC)
 *   and with a known MAC, the SLAAC address the guest kernel configures (prefix + modified
 *   EUI-64), plus its link-local address fe80::EUI-64.
 *
 * New allocations are a pure function of the model: the preferred slot of a virt is a hash of
 * "net/virt" into the pool, probing to the next free address; new virts are placed in name
 * order after every recorded and static address is taken. Every host computes the same result
 * from the same file without coordination. Recording the result in the file (`lsdn allocate`)
 * makes it stable: a recorded allocation is kept as long as its virt exists and it stays valid,
 * so adding or removing other virts never renumbers it.
 *
 * Speed: addresses are numbers, pools are sorted ranges, taken addresses a Set, and the next
 * free slot is found through a path-compressed skip map: no per-virt scan of a pool.
 */
import ipaddr from 'ipaddr.js';
import type { Net, Netmodel, Subnet, Virt } from '../model/netmodel.js';
import type { Located } from '../core/location.js';
import type { Severity } from '../core/problem.js';

export interface AssignedAddress {
  ip: string;
  len: number;
  source: 'static' | 'recorded' | 'allocated' | 'slaac' | 'link-local';
}

export interface VirtAddressing {
  v4?: AssignedAddress;
  v6: AssignedAddress[];
}

/** A problem found while assigning addresses; validate() locates it, `lsdn allocate` prints it. */
export interface IpamIssue {
  code: string;
  severity: Severity;
  /** "net NAME", "virt NET/NAME", "allocation NET/NAME". */
  object: string;
  message: string;
  /** The object (and field) to locate it at. */
  at?: Located;
  field?: string;
}

export interface IpamResult {
  addressing: Map<string, VirtAddressing>;
  issues: IpamIssue[];
}

/** The location key of a recorded allocation in `Netmodel.fieldLocs` (set by the loader). */
export function allocationField(virtId: string): string {
  return `allocations:${virtId}`;
}

// --- IPv4 numbers ------------------------------------------------------------------------------

const V4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** "10.0.0.1" -> 167772161; undefined unless four decimal parts 0..255 (no leading zeros). */
export function v4ToNum(s: string): number | undefined {
  const m = V4_RE.exec(s);
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!;
    if (part.length > 1 && part[0] === '0') return undefined;
    const b = Number(part);
    if (b > 255) return undefined;
    n = n * 256 + b;
  }
  return n;
}

export function numToV4(n: number): string {
  return `${Math.floor(n / 16777216) % 256}.${Math.floor(n / 65536) % 256}.${Math.floor(n / 256) % 256}.${n % 256}`;
}

/** An inclusive range of IPv4 addresses as numbers. */
export interface Range4 {
  lo: number;
  hi: number;
}

export interface Subnet4 {
  /** Network address and prefix length. */
  net: number;
  len: number;
  /** The last address (broadcast for len <= 30). */
  last: number;
  /** The usable host addresses (all of a /31 or /32, RFC 3021). */
  first: number;
  lastUsable: number;
}

export interface Subnet6 {
  net: bigint;
  len: number;
  last: bigint;
}

/** Parse an IPv4 subnet "A.B.C.D/LEN"; a string describing the problem when it is not one. */
export function parseSubnet4(prefix: string): Subnet4 | { error: string; code: string } {
  if (typeof prefix !== 'string') return { code: 'subnet-invalid', error: `subnet ${JSON.stringify(prefix)} is not a prefix` };
  const [ip, lenText, ...rest] = prefix.split('/');
  if (ip !== undefined && rest.length === 0 && v4ToNum(ip) === undefined && ipaddr.IPv6.isValid(ip)) {
    return { code: 'subnet-family', error: `subnet "${prefix}" is IPv6, but this is the ipv4 subnet` };
  }
  const a = ip !== undefined ? v4ToNum(ip) : undefined;
  if (a === undefined || rest.length || lenText === undefined || !/^\d{1,2}$/.test(lenText) || Number(lenText) > 32) {
    return { code: 'subnet-invalid', error: `subnet "${prefix}" is not an IPv4 prefix like "10.0.0.0/24"` };
  }
  const len = Number(lenText);
  const size = 2 ** (32 - len);
  const net = Math.floor(a / size) * size;
  if (net !== a) {
    return { code: 'subnet-host-bits', error: `subnet "${prefix}" has host bits set (the network is ${numToV4(net)}/${len})` };
  }
  const last = net + size - 1;
  const small = len >= 31;
  return { net, len, last, first: small ? net : net + 1, lastUsable: small ? last : last - 1 };
}

function v6ToBig(s: string): bigint | undefined {
  if (typeof s !== 'string' || s.includes('%') || !ipaddr.IPv6.isValid(s)) return undefined;
  let n = 0n;
  for (const b of ipaddr.IPv6.parse(s).toByteArray()) n = (n << 8n) | BigInt(b);
  return n;
}

function bigToV6(n: bigint): string {
  const parts: number[] = [];
  for (let i = 7; i >= 0; i--) parts.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  return formatV6(parts);
}

export function parseSubnet6(prefix: string): Subnet6 | { error: string; code: string } {
  if (typeof prefix !== 'string') return { code: 'subnet-invalid', error: `subnet ${JSON.stringify(prefix)} is not a prefix` };
  const [ip, lenText, ...rest] = prefix.split('/');
  if (ip !== undefined && rest.length === 0 && v4ToNum(ip) !== undefined) {
    return { code: 'subnet-family', error: `subnet "${prefix}" is IPv4, but this is the ipv6 subnet` };
  }
  const a = ip !== undefined ? v6ToBig(ip) : undefined;
  if (a === undefined || rest.length || lenText === undefined || !/^\d{1,3}$/.test(lenText) || Number(lenText) > 128) {
    return { code: 'subnet-invalid', error: `subnet "${prefix}" is not an IPv6 prefix like "2001:db8:1::/64"` };
  }
  const len = Number(lenText);
  const hostBits = BigInt(128 - len);
  const net = (a >> hostBits) << hostBits;
  if (net !== a) {
    return { code: 'subnet-host-bits', error: `subnet "${prefix}" has host bits set (the network is ${bigToV6(net)}/${len})` };
  }
  return { net, len, last: net + (1n << hostBits) - 1n };
}

/** "A-B", "A/LEN" or "A" as a range of a v4 subnet; an error text when malformed or reversed. */
export function parseRange4(s: string): Range4 | { error: string } {
  if (typeof s !== 'string') return { error: `${JSON.stringify(s)} is not an address, range or prefix` };
  const t = s.trim();
  const dash = t.indexOf('-');
  if (dash >= 0) {
    const lo = v4ToNum(t.slice(0, dash).trim());
    const hi = v4ToNum(t.slice(dash + 1).trim());
    if (lo === undefined || hi === undefined) return { error: `"${s}" is not an IPv4 range like "10.0.0.100-10.0.0.199"` };
    if (lo > hi) return { error: `range "${s}" is reversed (its start is after its end)` };
    return { lo, hi };
  }
  if (t.includes('/')) {
    const p = parseSubnet4(t);
    if ('error' in p) return { error: p.error.replace(/^subnet/, 'prefix') };
    return { lo: p.net, hi: p.last };
  }
  const a = v4ToNum(t);
  if (a === undefined) return { error: `"${s}" is not an IPv4 address, range "A-B" or prefix "A/LEN"` };
  return { lo: a, hi: a };
}

/** Sort and merge ranges. */
function mergeRanges(rs: Range4[]): Range4[] {
  const sorted = [...rs].sort((a, b) => a.lo - b.lo);
  const out: Range4[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.lo <= last.hi + 1) last.hi = Math.max(last.hi, r.hi);
    else out.push({ ...r });
  }
  return out;
}

/** Merged ranges minus merged ranges. */
function subtractRanges(from: Range4[], minus: Range4[]): Range4[] {
  const m = mergeRanges(minus);
  const out: Range4[] = [];
  for (const r of from) {
    let lo = r.lo;
    for (const x of m) {
      if (x.hi < lo || x.lo > r.hi) continue;
      if (x.lo > lo) out.push({ lo, hi: x.lo - 1 });
      lo = x.hi + 1;
      if (lo > r.hi) break;
    }
    if (lo <= r.hi) out.push({ lo, hi: r.hi });
  }
  return out;
}

// --- addresses of one virt ---------------------------------------------------------------------

interface StaticAddr {
  text: string;
  fam: 4 | 6;
  /** v4 number (fam 4) */
  n4?: number;
  n6?: bigint;
  ip: string;
  len: number;
}

const NONE: StaticAddr[] = [];

/** The virt's static addresses ("ip"), parsed; malformed ones are validate()'s (virt-ip-invalid). */
function staticAddrs(v: Virt): StaticAddr[] {
  if (v.ips.length === 0) return NONE;
  const out: StaticAddr[] = [];
  for (const text of v.ips) {
    if (typeof text !== 'string') continue;
    const slash = text.indexOf('/');
    if (slash < 0) continue;
    const ip = text.slice(0, slash);
    const lenText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText)) continue;
    const len = Number(lenText);
    const n4 = v4ToNum(ip);
    if (n4 !== undefined) {
      if (len <= 32) out.push({ text, fam: 4, n4, ip: numToV4(n4), len });
      continue;
    }
    const n6 = v6ToBig(ip);
    if (n6 !== undefined && len <= 128) out.push({ text, fam: 6, n6, ip: bigToV6(n6), len });
  }
  return out;
}

const MAC_RE = /^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i;

/** The modified EUI-64 interface identifier of a MAC (RFC 4291 appendix A) as four 16-bit groups. */
function eui64(mac: string): number[] | undefined {
  if (typeof mac !== 'string') return undefined;
  const t = mac.length === 17 ? mac : mac.trim();
  if (!MAC_RE.test(t)) return undefined;
  const b0 = hexByte(t, 0);
  return [((b0 ^ 0x02) << 8) | hexByte(t, 3), (hexByte(t, 6) << 8) | 0xff, 0xfe00 | hexByte(t, 9), (hexByte(t, 12) << 8) | hexByte(t, 15)];
}

/** The byte written as two hex digits at `i` (already validated). */
function hexByte(s: string, i: number): number {
  const hi = s.charCodeAt(i);
  const lo = s.charCodeAt(i + 1);
  return ((hi <= 57 ? hi - 48 : (hi | 32) - 87) << 4) | (lo <= 57 ? lo - 48 : (lo | 32) - 87);
}

/** Eight 16-bit groups as RFC 5952 text (what ipaddr.js and normalizeIp print). */
function formatV6(g: number[]): string {
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  let sep = false;
  for (let i = 0; i < 8; i++) {
    if (i === bestAt) {
      out += '::';
      i += bestLen - 1;
      sep = false;
      continue;
    }
    if (sep) out += ':';
    out += g[i]!.toString(16);
    sep = true;
  }
  return out;
}

/** The upper 64 bits of an IPv6 address as four groups. */
function upperGroups(n: bigint): number[] {
  return [3, 2, 1, 0].map((i) => Number((n >> BigInt(64 + i * 16)) & 0xffffn));
}

const LINK_LOCAL_GROUPS = [0xfe80, 0, 0, 0];

/**
 * The SLAAC address a guest with `mac` configures from the /64 `prefix` ("2001:db8:a::/64" or
 * just the address): the prefix's upper 64 bits and the MAC's modified EUI-64.
 * Throws on a malformed prefix or MAC.
 */
export function slaacAddress(prefix: string, mac: string): string {
  const a = v6ToBig(prefix.split('/')[0] ?? '');
  const id = eui64(mac);
  if (a === undefined) throw new Error(`slaacAddress: "${prefix}" is not an IPv6 prefix`);
  if (id === undefined) throw new Error(`slaacAddress: "${mac}" is not a MAC address`);
  return formatV6([...upperGroups(a), ...id]);
}

/** fe80::EUI-64 of a MAC (undefined when the MAC is malformed). */
export function linkLocalAddress(mac: string): string | undefined {
  const id = eui64(mac);
  return id === undefined ? undefined : formatV6([...LINK_LOCAL_GROUPS, ...id]);
}

/**
 * The address of the net's address server on every host (DHCPv4 / router advertisements):
 * the subnet's `server`, else for IPv4 the highest usable host address (.254 of a /24), for
 * IPv6 prefix::fffe. Throws when the subnet (or its server) is malformed: validate() first.
 */
export function serverAddress(subnet: Subnet): string {
  const given = subnet.spec.server;
  if (subnet.family === 4) {
    if (given !== undefined) {
      const n = v4ToNum(given);
      if (n === undefined) throw new Error(`net ${subnet.net.name}: server "${given}" is not an IPv4 address`);
      return numToV4(n);
    }
    const p = parseSubnet4(subnet.spec.prefix);
    if ('error' in p) throw new Error(`net ${subnet.net.name}: ${p.error}`);
    return numToV4(defaultServer4(p));
  }
  if (given !== undefined) {
    const n = v6ToBig(given);
    if (n === undefined) throw new Error(`net ${subnet.net.name}: server "${given}" is not an IPv6 address`);
    return bigToV6(n);
  }
  const p = parseSubnet6(subnet.spec.prefix);
  if ('error' in p) throw new Error(`net ${subnet.net.name}: ${p.error}`);
  return bigToV6(defaultServer6(p));
}

function defaultServer4(p: Subnet4): number {
  return p.lastUsable;
}

function defaultServer6(p: Subnet6): bigint {
  return p.len <= 112 ? p.net + 0xfffen : p.last > p.net ? p.last - 1n : p.net;
}

/** FNV-1a, 32 bits: the preferred slot of a virt (stable across hosts, versions and platforms). */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

// --- the pool of one net ------------------------------------------------------------------------

/** The allocatable addresses of a net: sorted disjoint ranges, indexable 0..size-1. */
class Pool {
  private readonly starts: number[] = [];
  readonly size: number;
  /** Taken addresses (static, recorded, allocated, whatever the pools contain or not). */
  readonly taken = new Set<number>();
  private free: number;
  /** Path-compressed "try this index next" pointers of taken slots. */
  private readonly skip = new Map<number, number>();

  constructor(readonly ranges: Range4[]) {
    let total = 0;
    for (const r of ranges) {
      this.starts.push(total);
      total += r.hi - r.lo + 1;
    }
    this.size = total;
    this.free = total;
  }

  /** Index of the range holding `a`, or -1. */
  private rangeOf(a: number): number {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.ranges[mid]!;
      if (a < r.lo) hi = mid - 1;
      else if (a > r.hi) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  contains(a: number): boolean {
    return this.rangeOf(a) >= 0;
  }

  private at(i: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return this.ranges[lo]!.lo + (i - this.starts[lo]!);
  }

  take(a: number): void {
    if (this.taken.has(a)) return;
    this.taken.add(a);
    if (this.contains(a)) this.free--;
  }

  get freeCount(): number {
    return this.free;
  }

  /** The first free address at or after slot `start` (wrapping), taken; undefined when full. */
  takeFrom(start: number): number | undefined {
    if (this.free <= 0) return undefined;
    const visited: number[] = [];
    let i = start % this.size;
    let a = this.at(i);
    while (this.taken.has(a)) {
      visited.push(i);
      i = this.skip.get(i) ?? (i + 1) % this.size;
      a = this.at(i);
    }
    for (const v of visited) this.skip.set(v, i);
    this.take(a);
    return a;
  }
}

// --- the whole model ----------------------------------------------------------------------------

const netLabel = (n: Net): string => `net ${n.name}`;
const virtLabel = (v: Virt): string => `virt ${v.id}`;

function virtError(issues: IpamIssue[], v: Virt, code: string, message: string): void {
  issues.push({ code, severity: 'error', object: virtLabel(v), message, at: v, field: 'ip' });
}

/** A virt of the net being assigned: its id, parsed static addresses and result. */
interface VirtRec {
  v: Virt;
  id: string;
  st: StaticAddr[];
  out: VirtAddressing;
}

function byRecName(a: VirtRec, b: VirtRec): number {
  return a.v.name < b.v.name ? -1 : a.v.name > b.v.name ? 1 : 0;
}

/** Assign every virt its addresses, with the problems found on the way. */
export function analyzeAddresses(model: Netmodel): IpamResult {
  const addressing = new Map<string, VirtAddressing>();
  const issues: IpamIssue[] = [];
  for (const net of model.nets.values()) assignNet(model, net, addressing, issues);
  // Recorded allocations of virts that no longer need one.
  for (const [id, ip] of model.allocations) {
    const v = model.virt(id);
    const a = v ? addressing.get(id)?.v4 : undefined;
    if (!v || !v.net.ipv4 || (a && a.source === 'static')) {
      const why = !v ? 'there is no such virt' : !v.net.ipv4 ? `net "${v.net.name}" has no ipv4 subnet` : `the virt has the static address ${a!.ip}`;
      issues.push({
        code: 'allocation-stale', severity: 'warning', object: `allocation ${id}`,
        message: `recorded allocation ${ip} is not used: ${why} (\`lsdn allocate\` drops it)`,
        at: model, field: allocationField(id),
      });
    }
  }
  return { addressing, issues };
}

/** Every virt's addresses (virt id -> addressing). Pure, deterministic, identical on every host. */
export function assignAddresses(model: Netmodel): Map<string, VirtAddressing> {
  return analyzeAddresses(model).addressing;
}

function assignNet(model: Netmodel, net: Net, addressing: Map<string, VirtAddressing>, issues: IpamIssue[]): void {
  const recs: VirtRec[] = [];
  for (const v of net.virts.values()) {
    const rec: VirtRec = { v, id: v.id, st: staticAddrs(v), out: { v6: [] } };
    addressing.set(rec.id, rec.out);
    recs.push(rec);
  }
  const netIssue = (code: string, severity: Severity, message: string, at: Located, field?: string) =>
    issues.push({ code, severity, object: netLabel(net), message, at, field });

  // ---- IPv4 ----
  const sub4 = net.ipv4;
  let p4: Subnet4 | undefined;
  if (sub4) {
    const r = parseSubnet4(sub4.spec.prefix);
    if ('error' in r) netIssue(r.code, 'error', r.error, sub4, 'subnet');
    else p4 = r;
  }
  if (!p4) {
    // No (valid) subnet: static addresses only.
    for (const r of recs) {
      const s = r.st.find((a) => a.fam === 4);
      if (s) r.out.v4 = { ip: s.ip, len: s.len, source: 'static' };
    }
  } else {
    const sub = sub4!;
    const inSubnet = (n: number) => n >= p4.net && n <= p4.last;
    const single = (field: string, text: string | undefined): number | undefined => {
      if (text === undefined) return undefined;
      const n = typeof text === 'string' ? v4ToNum(text) : undefined;
      if (n === undefined) {
        netIssue('subnet-address-invalid', 'error', `ipv4 ${field} ${JSON.stringify(text)} is not an IPv4 address`, sub, field);
        return undefined;
      }
      if (!inSubnet(n)) {
        netIssue('subnet-address-outside', 'error', `ipv4 ${field} ${text} is outside the subnet ${sub.spec.prefix}`, sub, field);
        return undefined;
      }
      if (p4.len <= 30 && (n === p4.net || n === p4.last)) {
        netIssue('subnet-address-invalid', 'error',
          `ipv4 ${field} ${text} is the ${n === p4.net ? 'network' : 'broadcast'} address of ${sub.spec.prefix}`, sub, field);
        return undefined;
      }
      return n;
    };
    const gateway = single('gateway', sub.spec.gateway);
    // The default server address is kept free only where a server runs (dhcp not false).
    const server = sub.spec.server !== undefined ? single('server', sub.spec.server) : sub.spec.serve !== false ? defaultServer4(p4) : undefined;
    if (gateway !== undefined && server !== undefined && gateway === server) {
      netIssue('subnet-server-is-gateway', 'error',
        `the address server ${numToV4(server)}${sub.spec.server === undefined ? ' (the default: the highest host address)' : ''} is also the gateway; give the server another address ("server")`,
        sub, sub.spec.server === undefined ? 'gateway' : 'server');
    }
    for (const d of sub.spec.dns ?? []) {
      // DNS servers may be anywhere (a resolver outside the subnet is common); only the family matters.
      if (typeof d !== 'string' || v4ToNum(d) === undefined) {
        netIssue('subnet-address-invalid', 'error', `ipv4 dns ${JSON.stringify(d)} is not an IPv4 address`, sub, 'dns');
      }
    }
    const usable: Range4 = { lo: p4.first, hi: p4.lastUsable };
    const ranges = (field: 'pools' | 'reserved'): Range4[] => {
      const out: Range4[] = [];
      for (const text of sub.spec[field] ?? []) {
        const r = parseRange4(text);
        if ('error' in r) {
          netIssue(`subnet-${field === 'pools' ? 'pool' : 'reserved'}-invalid`, 'error', `ipv4 ${field}: ${r.error}`, sub, field);
          continue;
        }
        if (!inSubnet(r.lo) || !inSubnet(r.hi)) {
          netIssue(`subnet-${field === 'pools' ? 'pool' : 'reserved'}-invalid`, 'error',
            `ipv4 ${field}: "${text}" is ${inSubnet(r.lo) || inSubnet(r.hi) ? 'partly ' : ''}outside the subnet ${sub.spec.prefix}`, sub, field);
          continue;
        }
        out.push(r);
      }
      return out;
    };
    const poolsGiven = (sub.spec.pools ?? []).length > 0;
    const poolRanges = poolsGiven ? mergeRanges(ranges('pools')) : [usable];
    const reserved = ranges('reserved');
    const excluded: Range4[] = [...reserved];
    if (p4.len <= 30) excluded.push({ lo: p4.net, hi: p4.net }, { lo: p4.last, hi: p4.last });
    if (gateway !== undefined) excluded.push({ lo: gateway, hi: gateway });
    if (server !== undefined) excluded.push({ lo: server, hi: server });
    const pool = new Pool(subtractRanges(poolRanges, excluded));

    // Static addresses: checked, and taken.
    const need: VirtRec[] = [];
    for (const r of recs) {
      const v = r.v;
      const all = r.st;
      const s4 = all.length ? all.filter((a) => a.fam === 4) : NONE;
      for (const a of s4) {
        const n = a.n4!;
        pool.take(n);
        if (!inSubnet(n)) virtError(issues, v, 'virt-ip-outside-subnet', `address ${a.text} is outside the ipv4 subnet ${sub.spec.prefix} of net "${net.name}"`);
        else if (n === gateway) virtError(issues, v, 'virt-ip-gateway', `address ${a.text} is the gateway of net "${net.name}"`);
        else if (n === server) virtError(issues, v, 'virt-ip-server', `address ${a.text} is the address server's of net "${net.name}" (${sub.spec.server === undefined ? 'the default server address, the highest host address; set "server" to move it' : 'its "server"'})`);
        else if (p4.len <= 30 && (n === p4.net || n === p4.last)) virtError(issues, v, 'virt-ip-network', `address ${a.text} is the ${n === p4.net ? 'network' : 'broadcast'} address of ${sub.spec.prefix}`);
        else if (a.len !== p4.len) {
          issues.push({ code: 'virt-ip-prefix-mismatch', severity: 'warning', object: virtLabel(v),
            message: `address ${a.text} has prefix length ${a.len}, but the ipv4 subnet of net "${net.name}" is ${sub.spec.prefix}`, at: v, field: 'ip' });
        }
      }
      const first = s4.find((a) => inSubnet(a.n4!)) ?? s4[0];
      if (first) r.out.v4 = { ip: first.ip, len: first.len, source: 'static' };
      else need.push(r);
    }
    need.sort(byRecName);

    // Recorded allocations still valid are kept (in name order: of two clashing, the first wins).
    const fresh: VirtRec[] = [];
    for (const r of need) {
      const rec = model.allocations.get(r.id);
      if (rec === undefined) {
        fresh.push(r);
        continue;
      }
      const n = typeof rec === 'string' ? v4ToNum(rec) : undefined;
      let why: string | undefined;
      if (n === undefined) why = 'is not an IPv4 address';
      else if (!inSubnet(n)) why = `is outside the subnet ${sub.spec.prefix}`;
      else if (!pool.contains(n) && !pool.taken.has(n)) why = 'is outside the pools (or reserved, the gateway, the server, the network or broadcast address)';
      else if (pool.taken.has(n)) why = 'is already used (by a static address or an earlier recorded allocation)';
      if (why) {
        issues.push({
          code: 'allocation-invalid', severity: 'warning', object: virtLabel(r.v),
          message: `recorded allocation ${String(rec)} ${why}; it gets a new address (run \`lsdn allocate\` to record it)`,
          at: model, field: allocationField(r.id),
        });
        fresh.push(r);
        continue;
      }
      pool.take(n!);
      // v4ToNum accepts only canonical text, so the recorded text is the address's.
      r.out.v4 = { ip: rec, len: p4.len, source: 'recorded' };
    }

    // New allocations: hashed slot, next free, in name order.
    const starved: Virt[] = [];
    const netPrefix = `${net.name}/`;
    for (const r of fresh) {
      const a = pool.size > 0 ? pool.takeFrom(hash32(netPrefix + r.v.name) % pool.size) : undefined;
      if (a === undefined) starved.push(r.v);
      else r.out.v4 = { ip: numToV4(a), len: p4.len, source: 'allocated' };
    }
    if (starved.length) {
      netIssue('subnet-pool-exhausted', 'error',
        `the ipv4 pools of ${sub.spec.prefix} (${pool.size} allocatable addresses) have no address left for ${starved.length === 1 ? 'virt' : 'virts'} ${starved.map((v) => v.name).join(', ')}`,
        sub, poolsGiven ? 'pools' : 'subnet');
    }
  }

  // ---- IPv6 ----
  const sub6 = net.ipv6;
  let p6: Subnet6 | undefined;
  if (sub6) {
    const r = parseSubnet6(sub6.spec.prefix);
    if ('error' in r) netIssue(r.code, 'error', r.error, sub6, 'subnet');
    else p6 = r;
  }
  let slaacOn = false;
  const prefixGroups = p6 ? upperGroups(p6.net) : [];
  let gw6: bigint | undefined;
  let srv6: bigint | undefined;
  if (sub6 && p6) {
    const inSubnet = (n: bigint) => n >= p6.net && n <= p6.last;
    const single = (field: string, text: string | undefined): bigint | undefined => {
      if (text === undefined) return undefined;
      const n = v6ToBig(text);
      if (n === undefined) {
        netIssue('subnet-address-invalid', 'error', `ipv6 ${field} ${JSON.stringify(text)} is not an IPv6 address`, sub6, field);
        return undefined;
      }
      // The IPv6 gateway may be link-local (routers advertise from fe80::).
      if (!inSubnet(n) && !(field === 'gateway' && n >> 118n === 0x3fan)) {
        netIssue('subnet-address-outside', 'error', `ipv6 ${field} ${text} is outside the subnet ${sub6.spec.prefix}`, sub6, field);
        return undefined;
      }
      return n;
    };
    gw6 = single('gateway', sub6.spec.gateway);
    srv6 = sub6.spec.server !== undefined ? single('server', sub6.spec.server) : sub6.spec.serve !== false ? defaultServer6(p6) : undefined;
    if (gw6 !== undefined && gw6 === srv6) {
      netIssue('subnet-server-is-gateway', 'error', `the address server ${bigToV6(srv6)} is also the gateway; give the server another address ("server")`,
        sub6, sub6.spec.server === undefined ? 'gateway' : 'server');
    }
    for (const d of sub6.spec.dns ?? []) {
      if (v6ToBig(d) === undefined) netIssue('subnet-address-invalid', 'error', `ipv6 dns ${JSON.stringify(d)} is not an IPv6 address`, sub6, 'dns');
    }
    if ((sub6.spec.pools ?? []).length) {
      netIssue('subnet-pool-invalid', 'error', 'ipv6 subnets have no pools: IPv6 addresses are static or configured by the guest (SLAAC)', sub6, 'pools');
    }
    for (const r of sub6.spec.reserved ?? []) {
      if (v6ToBig(r) === undefined) netIssue('subnet-reserved-invalid', 'error', `ipv6 reserved ${JSON.stringify(r)} is not an IPv6 address`, sub6, 'reserved');
    }
    if (sub6.spec.serve !== false) {
      if (p6.len !== 64) {
        netIssue('subnet-slaac-prefix', 'error',
          `SLAAC needs a /64, but the ipv6 subnet is ${sub6.spec.prefix}; use a /64 or set "slaac: false" and give virts static addresses`, sub6, 'subnet');
      } else {
        slaacOn = true;
      }
    }
  }
  for (const r of recs) {
    const v = r.v;
    const out = r.out;
    const all = r.st;
    const s6 = all.length ? all.filter((a) => a.fam === 6) : NONE;
    const seen = (ip: string) => s6.length > 0 && out.v6.some((x) => x.ip === ip);
    for (const a of s6) {
      out.v6.push({ ip: a.ip, len: a.len, source: 'static' });
      if (p6 && sub6) {
        const n = a.n6!;
        const linkLocal = n >> 118n === 0x3fan;
        if (!linkLocal && (n < p6.net || n > p6.last)) virtError(issues, v, 'virt-ip-outside-subnet', `address ${a.text} is outside the ipv6 subnet ${sub6.spec.prefix} of net "${net.name}"`);
        else if (n === gw6) virtError(issues, v, 'virt-ip-gateway', `address ${a.text} is the gateway of net "${net.name}"`);
        else if (n === srv6) virtError(issues, v, 'virt-ip-server', `address ${a.text} is the address server's of net "${net.name}"${sub6.spec.server === undefined ? ' (the default, prefix::fffe; set "server" to move it)' : ''}`);
      }
    }
    const mac = v.mac;
    if (slaacOn && p6) {
      if (mac === undefined) {
        issues.push({ code: 'virt-slaac-no-mac', severity: 'warning', object: virtLabel(v),
          message: `net "${net.name}" configures IPv6 by SLAAC, but the virt has no "mac", so its address is unknown (anti-spoofing lets no IPv6 source through)`, at: v });
      } else {
        const id = eui64(mac);
        if (id !== undefined) {
          const ip = formatV6([prefixGroups[0]!, prefixGroups[1]!, prefixGroups[2]!, prefixGroups[3]!, id[0]!, id[1]!, id[2]!, id[3]!]);
          if (!seen(ip)) out.v6.push({ ip, len: 64, source: 'slaac' });
        }
      }
    }
    if (mac !== undefined && (p6 || s6.length)) {
      const ll = linkLocalAddress(mac);
      if (ll !== undefined && !seen(ll)) out.v6.push({ ip: ll, len: 64, source: 'link-local' });
    }
  }
}

/**
 * The allocation record the model should have: every virt whose IPv4 address is recorded or
 * allocated (virt id -> address, sorted by id), what is new or changed (`added`) and which
 * recorded entries go (`dropped`: the virt is gone, has a static address, or was re-allocated).
 */
export function allocate(model: Netmodel): { allocations: Map<string, string>; added: string[]; dropped: string[]; problems: string[] } {
  const { addressing, issues } = analyzeAddresses(model);
  const entries: [string, string][] = [];
  for (const [id, a] of addressing) {
    if (a.v4 && (a.v4.source === 'recorded' || a.v4.source === 'allocated')) entries.push([id, a.v4.ip]);
  }
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const allocations = new Map(entries);
  const added: string[] = [];
  const dropped: string[] = [];
  for (const [id, ip] of allocations) if (model.allocations.get(id) !== ip) added.push(id);
  for (const [id, ip] of model.allocations) if (allocations.get(id) !== ip) dropped.push(id);
  dropped.sort();
  const problems = issues
    .filter((i) => i.severity === 'error' || i.code === 'allocation-invalid')
    .map((i) => `${i.severity}: ${i.object}: ${i.message}`);
  return { allocations, added, dropped, problems };
}
