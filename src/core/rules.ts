/**
 * The words of firewall rules, parsed once for validation and for the firewall compiler:
 * ports and port ranges, MAC matches with masks, ICMP types by number or name.
 */
import { normalizeMac } from './addr.js';

/**
 * ICMP types: number, the name nft uses for it (what `nft list` prints), and whether a model
 * may give the type by that name (the others only by number).
 */
const ICMP_TYPES: Record<'icmp' | 'icmpv6', readonly (readonly [number, string, boolean])[]> = {
  icmp: [
    [0, 'echo-reply', true], [3, 'destination-unreachable', true], [4, 'source-quench', true], [5, 'redirect', true],
    [8, 'echo-request', true], [9, 'router-advertisement', true], [10, 'router-solicitation', true],
    [11, 'time-exceeded', true], [12, 'parameter-problem', true], [13, 'timestamp-request', true], [14, 'timestamp-reply', true],
    [15, 'info-request', false], [16, 'info-reply', false], [17, 'address-mask-request', false], [18, 'address-mask-reply', false],
  ],
  icmpv6: [
    [1, 'destination-unreachable', true], [2, 'packet-too-big', true], [3, 'time-exceeded', true], [4, 'parameter-problem', true],
    [128, 'echo-request', true], [129, 'echo-reply', true], [130, 'mld-listener-query', true], [131, 'mld-listener-report', true],
    [132, 'mld-listener-done', true], [133, 'nd-router-solicit', true], [134, 'nd-router-advert', true],
    [135, 'nd-neighbor-solicit', true], [136, 'nd-neighbor-advert', true], [137, 'nd-redirect', true],
    [138, 'router-renumbering', false], [141, 'ind-neighbor-solicit', false], [142, 'ind-neighbor-advert', false],
    [143, 'mld2-listener-report', false],
  ],
};

/** The number of an ICMP type given as a number (0..255), a decimal string, or a name; undefined when invalid. */
export function icmpTypeNumber(proto: 'icmp' | 'icmpv6', t: string | number): number | undefined {
  if (typeof t === 'number') return Number.isInteger(t) && t >= 0 && t <= 255 ? t : undefined;
  if (/^\d{1,3}$/.test(t.trim())) return icmpTypeNumber(proto, Number(t.trim()));
  const name = t.trim().toLowerCase();
  return ICMP_TYPES[proto].find(([, n, byName]) => byName && n === name)?.[0];
}

/** The name nft prints for an ICMP type number (undefined: nft prints the number). */
export function icmpTypeName(proto: 'icmp' | 'icmpv6', n: number): string | undefined {
  return ICMP_TYPES[proto].find(([k]) => k === n)?.[1];
}

/** A port or "lo-hi" range of a rule as [lo, hi]; undefined when malformed or outside 0..65535. */
export function parsePortRange(p: number | string): [number, number] | undefined {
  let lo: number;
  let hi: number;
  if (typeof p === 'number') {
    lo = hi = p;
  } else {
    const m = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$/.exec(p);
    if (!m) return undefined;
    lo = Number(m[1]);
    hi = m[2] !== undefined ? Number(m[2]) : lo;
  }
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi > 65535 || lo > hi) return undefined;
  return [lo, hi];
}

/** A MAC match "MAC" or "MAC/MASK": the masked MAC and the mask (normalized); undefined when malformed. */
export function parseMacMatch(s: string): { mac: string; mask: string } | undefined {
  const parts = s.split('/');
  if (parts.length > 2) return undefined;
  const mac = normalizeMac(parts[0] ?? '');
  const mask = parts[1] !== undefined ? normalizeMac(parts[1]) : 'ff:ff:ff:ff:ff:ff';
  if (!mac || !mask) return undefined;
  const bytes = mac.split(':').map((b, i) => (parseInt(b, 16) & parseInt(mask.split(':')[i] ?? '0', 16)).toString(16).padStart(2, '0'));
  return { mac: bytes.join(':'), mask };
}
