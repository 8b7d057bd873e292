/** Address helpers shared by the model, validation and compilation. */
import ipaddr from 'ipaddr.js';

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function isMac(s: string): boolean {
  return MAC_RE.test(s);
}

/** Normalized (lower case) MAC, or undefined when malformed. Accepts '-' separators too. */
export function normalizeMac(s: string): string | undefined {
  const t = s.trim().replace(/-/g, ':').toLowerCase();
  return MAC_RE.test(t) ? t : undefined;
}

export function macIsMulticast(mac: string): boolean {
  return (parseInt(mac.slice(0, 2), 16) & 1) === 1;
}

export function macIsZero(mac: string): boolean {
  return /^(00:){5}00$/.test(mac);
}

export type IpFamily = 4 | 6;

/**
 * The family of an address or prefix ("ADDR" or "ADDR/LEN") already known to be one (validated,
 * or lsdn's own): 6 when it has a ':', else 4 (also when there is none). `ipFamily` validates.
 */
export function familyOf(addr: string | undefined): IpFamily {
  return addr?.includes(':') ? 6 : 4;
}

/** The family of an IP address; undefined when it is not one (the validating form of familyOf). */
export function ipFamily(ip: string): IpFamily | undefined {
  if (!ipaddr.isValid(ip)) return undefined;
  // ipaddr.js accepts shorthand IPv4 ("10.1") in isValid; require four parts for v4.
  if (ipaddr.IPv4.isValid(ip)) return ipaddr.IPv4.isValidFourPartDecimal(ip) ? 4 : undefined;
  return 6;
}

/** Canonical text of an IP address (IPv6 compressed, lower case). */
export function normalizeIp(ip: string): string | undefined {
  if (ipFamily(ip) === undefined) return undefined;
  return ipaddr.parse(ip).toString();
}

export interface Prefix {
  ip: string;
  len: number;
  family: IpFamily;
}

/** Parse "ADDR/LEN" or "ADDR" (full-length) into a prefix; undefined when malformed. */
export function parsePrefix(s: string): Prefix | undefined {
  const [ip, len, ...rest] = s.split('/');
  if (rest.length || ip === undefined) return undefined;
  const family = ipFamily(ip);
  if (!family) return undefined;
  const max = family === 4 ? 32 : 128;
  let n = max;
  if (len !== undefined) {
    if (!/^\d+$/.test(len)) return undefined;
    n = Number(len);
    if (n > max) return undefined;
  }
  return { ip: ipaddr.parse(ip).toString(), len: n, family };
}

export function formatPrefix(p: Prefix): string {
  return `${p.ip}/${p.len}`;
}

export function isMulticastIp(ip: string): boolean {
  return ipFamily(ip) !== undefined && ipaddr.parse(ip).range() === 'multicast';
}
