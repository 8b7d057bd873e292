/**
 * qdiscs lsdn owns: a token bucket (`tbf`) as the root qdisc of an interface (handle `15d:`,
 * lsdn's mark) and the `ingress` qdisc of a VM port that redirects to an IFB (src/kinds/filter.ts).
 * Encoded as `tc qdisc replace|del`; decoded from `tc -j qdisc show`, and for a peak rate from
 * tc's text output (the only place it prints one).
 *
 * tc reads a tbf back through time units: the rate exactly (bytes/s), the burst and the limit
 * (as a latency) rounded, the peak rate only in its text output. `sameQdisc` compares with the
 * tolerance those conversions need, so an unchanged rate plans nothing.
 */
import type { KernelObject, QdiscObject } from '../core/objects.js';
import { Phase, type Command } from '../core/plan.js';
import type { TcQdisc } from './iproute.js';
import type { ObjectKind, PlanContext } from './kind.js';
import { iprouteArg as a } from './escape.js';

/** Handle of lsdn's root qdiscs (hex: 0x15d). */
export const QDISC_HANDLE = '15d:';

const tc = (line: string): Command => ({ tool: 'tc', line });

// ---- encoding ---------------------------------------------------------------------------------

/** tc's units: rates in bit/s as `Nbit`, sizes in bytes as `Nb`. */
export function tbfArgs(o: QdiscObject): string {
  const parts = [`rate ${o.rate ?? 0}bit`, `burst ${o.burst ?? 0}b`, `limit ${o.limit ?? 0}b`];
  if (o.peakrate !== undefined) parts.push(`peakrate ${o.peakrate}bit`, `mtu ${o.mtu ?? 0}b`);
  return parts.join(' ');
}

/** Create or change a qdisc (`replace`: idempotent, and takes over a root qdisc that is not lsdn's). */
export function replaceQdisc(o: QdiscObject): Command[] {
  if (o.type === 'ingress') return [tc(`qdisc replace dev ${a(o.dev)} handle ffff: ingress`)];
  return [tc(`qdisc replace dev ${a(o.dev)} root handle ${QDISC_HANDLE} tbf ${tbfArgs(o)}`)];
}

/** Remove a qdisc (the interface gets its default back; an ingress qdisc takes its filters with it). */
export function deleteQdisc(o: QdiscObject): Command[] {
  return [tc(`qdisc del dev ${a(o.dev)} ${o.parent === 'ingress' ? 'ingress' : 'root'}`)];
}

// ---- decoding ---------------------------------------------------------------------------------

/**
 * The limit of a tbf from what tc prints (`lat` in µs): tc prints the larger of the queue
 * times at the rate ((limit - burst) / rate) and at the peak rate ((limit - mtu) / peak), so
 * the limit is the smaller of the two it gives back.
 */
export function tbfLimitFromLatency(latUs: number, rateBps: number, burst: number, peakBps?: number, mtu?: number): number {
  const a = (latUs * rateBps) / 1e6 + burst;
  if (peakBps === undefined || mtu === undefined) return Math.round(a);
  const b = (latUs * peakBps) / 1e6 + mtu;
  return Math.round(Math.min(a, b));
}

/** A rate as tc's text prints it ("41943Kbit", "20Mibit", "999bit") in bit/s. */
export function parseTcRate(text: string): number | undefined {
  const m = /^([\d.]+)([KMGT]?)(i?)bit$/.exec(text);
  if (!m) return undefined;
  const base = m[3] ? 1024 : 1000;
  return Math.round(Number(m[1]) * base ** ' KMGT'.indexOf(m[2] || ' '));
}

/** Is this (from `tc -j qdisc show`) one of lsdn's root tbfs? */
export function isOwnedTbf(q: TcQdisc): boolean {
  return q.root === true && q.handle === QDISC_HANDLE && q.kind === 'tbf';
}

/**
 * lsdn's root tbf as `tc -j qdisc show` prints it; a peak rate (`mtu` set) is only in the text
 * output: `withPeakRate` adds it.
 */
export function tbfFromKernel(q: TcQdisc & { dev: string }): QdiscObject {
  const o = q.options ?? {};
  const rateBps = o.rate ?? 0;
  const obj: QdiscObject = { kind: 'qdisc', dev: q.dev, parent: 'root', type: 'tbf', rate: rateBps * 8, burst: o.burst ?? 0 };
  if (o.minburst !== undefined) obj.mtu = o.minburst;
  if (o.lat !== undefined) obj.limit = tbfLimitFromLatency(o.lat, rateBps, obj.burst ?? 0);
  return obj;
}

/** Peak rates of tbfs by device, from `tc qdisc show` (text). */
export function tbfPeakRates(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^qdisc tbf \S+ dev (\S+) .*\bpeakrate (\S+)/.exec(line);
    const peak = m ? parseTcRate(m[2] as string) : undefined;
    if (m && peak !== undefined) out.set(m[1] as string, peak);
  }
  return out;
}

/** The tbf with its peak rate; with one, tc printed the larger queue time: the limit is recomputed with it. */
export function withPeakRate(q: QdiscObject, peakrate: number, latUs: number | undefined): QdiscObject {
  q.peakrate = peakrate;
  if (latUs !== undefined) q.limit = tbfLimitFromLatency(latUs, (q.rate ?? 0) / 8, q.burst ?? 0, peakrate / 8, q.mtu);
  return q;
}

// ---- diffing ----------------------------------------------------------------------------------

function close(a: number | undefined, b: number | undefined, tolerance: number): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Math.abs(a - b) <= tolerance;
}

/**
 * Does the qdisc read back (`have`) stand for the desired one? The rate must be exact; burst,
 * limit, peak bucket are compared within tc's rounding (1 %, at least 64 bytes, at least what
 * 2 µs at the rate carry) and the peak rate within 0.2 % (tc prints it with 4 digits).
 */
export function sameQdisc(have: QdiscObject, want: QdiscObject): boolean {
  if (have.type !== want.type || have.parent !== want.parent) return false;
  if (want.type !== 'tbf') return true;
  if (have.rate !== want.rate) return false;
  const bytesPerUs = Math.max(want.rate ?? 0, want.peakrate ?? 0) / 8 / 1e6;
  const tol = (v: number | undefined) => Math.max(64, 0.01 * (v ?? 0), 2 * bytesPerUs);
  if (!close(have.burst, want.burst, tol(want.burst))) return false;
  if (!close(have.limit, want.limit, tol(want.limit))) return false;
  if ((have.peakrate === undefined) !== (want.peakrate === undefined)) return false;
  if (want.peakrate !== undefined) {
    if (!close(have.peakrate, want.peakrate, 0.002 * want.peakrate)) return false;
    if (!close(have.mtu, want.mtu, Math.max(16, 0.01 * (want.mtu ?? 0)))) return false;
  }
  return true;
}

/** What differs, for plans and `lsdn status` ("rate 1000 -> 2000"). */
export function qdiscChanges(have: QdiscObject, want: QdiscObject): string[] {
  const out: string[] = [];
  for (const k of ['type', 'rate', 'burst', 'limit', 'peakrate', 'mtu'] as const) {
    if (have[k] !== want[k]) out.push(`${k} ${have[k] ?? '(none)'} -> ${want[k] ?? '(none)'}`);
  }
  return out;
}

/** tc objects hang on an interface that must exist (or be made by this plan). */
export function tcBlocked(o: Extract<KernelObject, { dev: string }>, p: PlanContext): string | undefined {
  return p.dep(o.dev, 'interface') ?? (p.facts.links && !p.facts.links.has(o.dev) && !p.willCreate(o.dev)
    ? `interface ${o.dev} does not exist on this host`
    : undefined);
}

export const QDISC: ObjectKind<QdiscObject> = {
  kind: 'qdisc',
  hangsOn: (o) => [o.dev],
  blocked: tcBlocked,
  remove(have, p) {
    if (!p.gone.has(have.dev)) p.add(Phase.DeleteQdiscs, 'delete', have, deleteQdisc(have));
  },
  converge(want, have, _found, p) {
    if (!have) p.add(Phase.Qdiscs, 'create', want, replaceQdisc(want));
    else if (!sameQdisc(have, want)) p.add(Phase.Qdiscs, 'update', want, replaceQdisc(want), { changes: qdiscChanges(have, want) });
  },
};
