/**
 * The frame a trace follows, and the evaluation of nftables rule lines against it: the lines
 * lsdn compiles (src/policy, src/types/public.ts), in the words `nft -s list` prints. A
 * selector whose header the frame lacks does not match (nft's implicit protocol dependency: `ip
 * saddr != X` passes an ARP frame), like the kernel. A line with a word this evaluator does not
 * know is an error naming it, never a guess.
 */
import ipaddr from 'ipaddr.js';
import { icmpTypeName, icmpTypeNumber } from '../core/rules.js';

export type L4 = 'tcp' | 'udp' | 'icmp' | 'icmpv6';

/** One frame as it enters the datapath (what the trace follows). */
export interface Frame {
  srcMac?: string;
  dstMac: string;
  /** IPv4/IPv6 payload; absent for ARP. */
  ip?: { family: 4 | 6; src: string; dst: string; proto: L4; sport?: number; dport?: number; icmpType?: number };
  /** An ARP request (sender and target addresses). */
  arp?: { senderMac?: string; senderIp: string; targetIp: string };
  /** The packet mark (stateful filtering's bit). */
  mark: number;
  /** Conntrack's view: the trace follows the first packet of a connection. */
  ct: 'new';
}

/** Where the frame is while a chain runs: input and output interface. */
export interface HookContext {
  iif?: string;
  oif?: string;
}

export const BROADCAST = 'ff:ff:ff:ff:ff:ff';

export function isGroupMac(mac: string): boolean {
  return (parseInt(mac.slice(0, 2), 16) & 1) === 1;
}

/** A line's verdict, and the statements the evaluator does not judge (masquerade, jump). */
export type Verdict = { kind: 'accept' | 'drop' | 'masquerade' | 'continue' } | { kind: 'jump'; chain: string };

/** A line this evaluator cannot judge: the trace reports it instead of guessing. */
export class UnknownLineError extends Error {}

type Field = string | number | undefined;

function tokens(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i] as string;
    if (c === ' ') {
      i++;
      continue;
    }
    let j = i;
    if (c === '{') {
      let q = false;
      while (j < line.length && (q || line[j] !== '}')) {
        if (line[j] === '"') q = !q;
        j++;
      }
      j++;
    } else if (c === '"') {
      j = line.indexOf('"', i + 1) + 1;
      if (j === 0) j = line.length;
    } else {
      while (j < line.length && line[j] !== ' ') j++;
    }
    out.push(line.slice(i, j));
    i = j;
  }
  return out;
}

/** Elements of a value token: `{ a, b }` or one value; quotes removed. */
function elements(tok: string): string[] {
  const inner = tok.startsWith('{') ? tok.slice(1, -1) : tok;
  const els = tok.startsWith('{') ? inner.split(',') : [inner];
  return els.map((e) => e.trim()).filter(Boolean).map((e) => e.replace(/^"(.*)"$/, '$1'));
}

/** The map of a vmap: `{ "a" : jump x, "b" : jump y }` -> key -> verdict text. */
function mapElements(tok: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of elements(tok)) {
    const i = e.indexOf(':');
    if (i < 0) continue;
    m.set(e.slice(0, i).trim().replace(/^"(.*)"$/, '$1'), e.slice(i + 1).trim());
  }
  return m;
}

function ipMatches(addr: string, el: string): boolean {
  try {
    const a = ipaddr.parse(addr);
    if (el.includes('/')) {
      const [net, len] = ipaddr.parseCIDR(el);
      return a.kind() === net.kind() && a.match(net, len);
    }
    const b = ipaddr.parse(el);
    return a.kind() === b.kind() && a.toNormalizedString() === b.toNormalizedString();
  } catch {
    return false;
  }
}

function portMatches(p: number, el: string): boolean {
  const m = /^(\d+)(?:-(\d+))?$/.exec(el);
  if (!m) return false;
  const lo = Number(m[1]);
  const hi = m[2] !== undefined ? Number(m[2]) : lo;
  return p >= lo && p <= hi;
}

const ETHER_TYPES: Record<string, string> = { ip: 'ip', ip6: 'ip6', arp: 'arp', '8021q': '8021q', '8021ad': '8021ad', vlan: '8021q' };
const L4_NAMES: Record<string, L4> = { tcp: 'tcp', udp: 'udp', icmp: 'icmp', 'ipv6-icmp': 'icmpv6', icmpv6: 'icmpv6' };

function etherType(f: Frame): string {
  return f.arp ? 'arp' : f.ip?.family === 6 ? 'ip6' : 'ip';
}

/** The field a selector reads, its value in the frame (undefined: the header is absent) and how an element compares. */
interface Selector {
  words: number;
  value(f: Frame, h: HookContext): Field;
  eq(v: Field, el: string): boolean;
}

const mac = (v: Field, el: string) => v !== undefined && String(v).toLowerCase() === el.toLowerCase();
const ip = (v: Field, el: string) => v !== undefined && ipMatches(String(v), el);
const port = (v: Field, el: string) => v !== undefined && portMatches(Number(v), el);
const wildcard = (v: Field, el: string) =>
  v !== undefined && (el.endsWith('*') ? String(v).startsWith(el.slice(0, -1)) : String(v) === el);

function icmpEq(proto: 'icmp' | 'icmpv6') {
  return (v: Field, el: string) => v !== undefined && icmpTypeNumber(proto, el) === Number(v);
}

function l4(f: Frame): L4 | undefined {
  return f.ip?.proto;
}

const SELECTORS: Record<string, Selector> = {
  'ether saddr': { words: 2, value: (f) => f.srcMac, eq: mac },
  'ether daddr': { words: 2, value: (f) => f.dstMac, eq: mac },
  'ether type': { words: 2, value: (f) => etherType(f), eq: (v, el) => v === (ETHER_TYPES[el] ?? el) },
  'arp saddr ether': { words: 3, value: (f) => f.arp?.senderMac, eq: mac },
  'arp saddr ip': { words: 3, value: (f) => f.arp?.senderIp, eq: ip },
  'arp daddr ip': { words: 3, value: (f) => f.arp?.targetIp, eq: ip },
  'ip saddr': { words: 2, value: (f) => (f.ip?.family === 4 ? f.ip.src : undefined), eq: ip },
  'ip daddr': { words: 2, value: (f) => (f.ip?.family === 4 ? f.ip.dst : undefined), eq: ip },
  'ip6 saddr': { words: 2, value: (f) => (f.ip?.family === 6 ? f.ip.src : undefined), eq: ip },
  'ip6 daddr': { words: 2, value: (f) => (f.ip?.family === 6 ? f.ip.dst : undefined), eq: ip },
  'meta l4proto': { words: 2, value: (f) => l4(f), eq: (v, el) => v !== undefined && v === (L4_NAMES[el] ?? el) },
  'meta protocol': { words: 2, value: (f) => etherType(f), eq: (v, el) => v === (ETHER_TYPES[el] ?? el) },
  'meta mark': { words: 2, value: (f) => f.mark, eq: (v, el) => v !== undefined && Number(v) === Number(el) },
  'icmp type': { words: 2, value: (f) => (f.ip?.proto === 'icmp' ? f.ip.icmpType : undefined), eq: icmpEq('icmp') },
  'icmpv6 type': { words: 2, value: (f) => (f.ip?.proto === 'icmpv6' ? f.ip.icmpType : undefined), eq: icmpEq('icmpv6') },
  'ct state': { words: 2, value: (f) => f.ct, eq: (v, el) => el.split(',').includes(String(v)) },
  // The trace follows a connection's first packet: a TCP frame is a SYN.
  'tcp flags': { words: 2, value: (f) => (f.ip?.proto === 'tcp' ? 'syn' : undefined), eq: (v, el) => v !== undefined && el.split(/[|,]/).includes(String(v)) },
  iifname: { words: 1, value: (_f, h) => h.iif, eq: wildcard },
  oifname: { words: 1, value: (_f, h) => h.oif, eq: wildcard },
};
for (const p of ['tcp', 'udp'] as const) {
  SELECTORS[`${p} sport`] = { words: 2, value: (f) => (f.ip?.proto === p ? f.ip.sport : undefined), eq: port };
  SELECTORS[`${p} dport`] = { words: 2, value: (f) => (f.ip?.proto === p ? f.ip.dport : undefined), eq: port };
}

const VERDICTS = new Set(['accept', 'drop', 'masquerade', 'continue']);

/** The result of one line: matched or not, and the verdict when it matched. */
export interface LineResult {
  matched: boolean;
  verdict?: Verdict;
}

/**
 * Evaluate one rule line (a chain's hook line `type ...` never matches). Matches are ANDed left
 * to right; the first that fails ends the line (so a raw payload match behind `icmpv6 type
 * nd-...` is never reached by a frame that is no neighbour discovery).
 */
export function evalLine(line: string, f: Frame, h: HookContext): LineResult {
  if (line.startsWith('type ')) return { matched: false };
  const t = tokens(line);
  let i = 0;
  while (i < t.length) {
    const w = t[i] as string;
    if (VERDICTS.has(w)) return { matched: true, verdict: { kind: w as 'accept' } };
    if (w === 'jump' || w === 'goto') return { matched: true, verdict: { kind: 'jump', chain: t[i + 1] ?? '' } };
    // `meta mark set meta mark & X` (a statement): the trace's frames carry no mark bit to clear.
    if (w === 'meta' && t[i + 1] === 'mark' && t[i + 2] === 'set') {
      i += 3;
      while (i < t.length && !VERDICTS.has(t[i] as string)) i++;
      continue;
    }
    // The MSS clamp (`tcp option maxseg size > N tcp option maxseg size set N`): it rewrites a
    // SYN's option and decides nothing; the trace's frames carry no MSS to compare or clamp.
    if (w === 'tcp' && t[i + 1] === 'option' && t[i + 2] === 'maxseg' && t[i + 3] === 'size') {
      if (f.ip?.proto !== 'tcp') return { matched: false };
      i += t[i + 4] === 'set' ? 6 : ['>', '<', '>=', '<=', '==', '!='].includes(t[i + 4] as string) ? 6 : 5;
      continue;
    }
    // `iifname vmap { "x" : jump c }`
    if ((w === 'iifname' || w === 'oifname') && t[i + 1] === 'vmap') {
      const dev = w === 'iifname' ? h.iif : h.oif;
      const target = dev !== undefined ? mapElements(t[i + 2] ?? '').get(dev) : undefined;
      if (!target) return { matched: false };
      const [verb, chain] = target.split(/\s+/);
      if (verb === 'jump' || verb === 'goto') return { matched: true, verdict: { kind: 'jump', chain: chain ?? '' } };
      if (verb && VERDICTS.has(verb)) return { matched: true, verdict: { kind: verb as 'accept' } };
      throw new UnknownLineError(`cannot evaluate the map verdict "${target}" in: ${line}`);
    }
    const key3 = t.slice(i, i + 3).join(' ');
    const key2 = t.slice(i, i + 2).join(' ');
    const sel = SELECTORS[key3] ?? SELECTORS[key2] ?? SELECTORS[w];
    if (!sel) throw new UnknownLineError(`cannot evaluate "${w}" in: ${line}`);
    i += sel.words;
    let value = sel.value(f, h);
    // A mask: `ether saddr & MASK == MAC`, `meta mark & 0x00800000 == 0x00800000`.
    if (t[i] === '&') {
      const mask = t[i + 1] ?? '';
      value = applyMask(value, mask);
      i += 2;
    }
    let negate = false;
    if (t[i] === '==') i++;
    else if (t[i] === '!=') {
      negate = true;
      i++;
    }
    const tok = t[i];
    if (tok === undefined) throw new UnknownLineError(`a match without a value in: ${line}`);
    if (tok.startsWith('@')) throw new UnknownLineError(`cannot evaluate the raw payload match "${tok}" in: ${line}`);
    i++;
    if (value === undefined) return { matched: false };
    const hit = elements(tok).some((el) => sel.eq(value, el));
    if (hit === negate) return { matched: false };
  }
  // A line of matches only (no verdict): nft continues with the next line.
  return { matched: true, verdict: { kind: 'continue' } };
}

function applyMask(v: Field, mask: string): Field {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return (v & Number(mask)) >>> 0;
  const a = String(v).split(':');
  const m = mask.split(':');
  if (a.length !== 6 || m.length !== 6) return v;
  return a.map((b, k) => (parseInt(b, 16) & parseInt(m[k] ?? '0', 16)).toString(16).padStart(2, '0')).join(':');
}

/** The first line of `lines` that decides the frame: its index and verdict (undefined: none did, the chain's policy applies). */
export function firstMatch(lines: readonly string[], f: Frame, h: HookContext): { index: number; verdict: Verdict } | undefined {
  for (let k = 0; k < lines.length; k++) {
    const r = evalLine(lines[k] as string, f, h);
    if (r.matched && r.verdict && r.verdict.kind !== 'continue') return { index: k, verdict: r.verdict };
  }
  return undefined;
}

/** What a frame is, in words: "ICMP echo-request 10.0.0.1 -> 10.0.0.2", "ARP who-has 10.0.0.2". */
export function describeFrame(f: Frame): string {
  if (f.arp) return `ARP who-has ${f.arp.targetIp} tell ${f.arp.senderIp}`;
  const p = f.ip;
  if (!p) return f.dstMac === BROADCAST ? 'Ethernet broadcast' : 'Ethernet frame';
  const ports = p.sport !== undefined || p.dport !== undefined ? ` ${p.sport ?? '*'} -> ${p.dport ?? '*'}` : '';
  const icmp = p.proto === 'icmp' || p.proto === 'icmpv6' ? p.proto : undefined;
  const type = icmp ? (p.icmpType === undefined ? 'echo-request' : icmpTypeName(icmp, p.icmpType) ?? `type ${p.icmpType}`) : '';
  const kind = icmp ? `${icmp === 'icmp' ? 'ICMP' : 'ICMPv6'} ${type}` : (p.proto as string).toUpperCase();
  return `${kind} ${p.src} -> ${p.dst}${ports}`;
}
