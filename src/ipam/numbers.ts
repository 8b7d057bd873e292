/**
 * Address arithmetic (pure): IPv4 addresses as numbers, IPv6 as bigints, subnets, ranges and
 * their merging, EUI-64 and SLAAC/link-local addresses, RFC 5952 text, the slot hash.
 */
import ipaddr from 'ipaddr.js';

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

export function v6ToBig(s: string): bigint | undefined {
  if (typeof s !== 'string' || s.includes('%') || !ipaddr.IPv6.isValid(s)) return undefined;
  let n = 0n;
  for (const b of ipaddr.IPv6.parse(s).toByteArray()) n = (n << 8n) | BigInt(b);
  return n;
}

export function bigToV6(n: bigint): string {
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
export function mergeRanges(rs: Range4[]): Range4[] {
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
export function subtractRanges(from: Range4[], minus: Range4[]): Range4[] {
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

const MAC_RE = /^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i;

/** The modified EUI-64 interface identifier of a MAC (RFC 4291 appendix A) as four 16-bit groups. */
export function eui64(mac: string): number[] | undefined {
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
export function formatV6(g: number[]): string {
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
export function upperGroups(n: bigint): number[] {
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

/** FNV-1a, 32 bits: the preferred slot of a virt (stable across hosts, versions and platforms). */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
