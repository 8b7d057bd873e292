/**
 * Rate limits of virts as queues (shaping), not policing: a token bucket filter holds a
 * direction to its average rate, lets `burst` bytes through at once and, with a peak rate,
 * caps how fast that burst drains. Pure.
 *
 *   in  (toward the VM): root qdisc of the VM's host-side port
 *         tc qdisc replace dev PORT root handle 15d: tbf rate Rbit burst Bb limit Lb [peakrate Pbit mtu Mb]
 *   out (from the VM):   the port's ingress is redirected to an IFB lsdn owns, shaped at its root
 *         ip link add lsi-XXXXXXXX type ifb          (owned and aliased like every lsdn link)
 *         tc qdisc replace dev PORT handle ffff: ingress
 *         tc filter replace dev PORT parent ffff: protocol all pref 349 handle 800::800 u32 match u32 0 0 \
 *            action mirred egress redirect dev lsi-XXXXXXXX
 *         tc qdisc replace dev lsi-XXXXXXXX root handle 15d: tbf ...
 *
 * The root handle `15d:` and the filter preference 349 (0x15d) mark lsdn's tc objects: the
 * reader takes a root qdisc as lsdn's only with that handle, and an ingress qdisc only when it
 * holds lsdn's redirect.
 *
 * tc reads a tbf back through time units: the rate exactly (bytes/s), the burst and the limit
 * (as a latency) rounded, the peak rate only in its text output. `sameQdisc` compares with
 * the tolerance those conversions need, so an unchanged rate plans nothing.
 */
import type { Virt } from '../model/netmodel.js';
import type { FilterObject, KernelObject, LinkObject, QdiscObject } from '../core/objects.js';

/** Handle of lsdn's root qdiscs (hex: 0x15d). */
export const QDISC_HANDLE = '15d:';
/** Preference of lsdn's ingress redirect filter (0x15d). */
export const FILTER_PREF = 349;
/** The u32 handle of the first (only) filter of lsdn's preference. */
export const FILTER_HANDLE = '800::800';
/** Queue length of a tbf, as time at the average rate (what a burst beyond the bucket may wait). */
export const TBF_QUEUE_SECONDS = 0.05;
/** Ethernet header added to the MTU for the peak bucket. */
const ETH_HLEN = 14;

/** A rate in bit/s as the kernel keeps it: whole bytes per second, at least one (tc refuses 0). */
export function kernelRate(bitsPerSecond: number): number {
  return Math.max(1, Math.floor(bitsPerSecond / 8)) * 8;
}

/** The tbf of one direction of a virt (rates in bit/s, sizes in bytes). */
export function tbfQdisc(dev: string, spec: { avg: number; burst: number; peak?: number }, mtu: number): QdiscObject {
  const rate = kernelRate(spec.avg);
  const burst = Math.round(spec.burst);
  const q: QdiscObject = {
    kind: 'qdisc', dev, parent: 'root', type: 'tbf',
    rate, burst, limit: burst + Math.ceil((rate / 8) * TBF_QUEUE_SECONDS),
  };
  if (spec.peak !== undefined && kernelRate(spec.peak) > rate) {
    q.peakrate = kernelRate(spec.peak);
    q.mtu = mtu + ETH_HLEN;
  }
  return q;
}

export interface ShapingNames {
  /** Owned name of the virt's IFB. */
  ifb: string;
  /** Ownership alias of the IFB. */
  alias: string;
}

/** The kernel objects of a local virt's rate limits; [] when it has none. */
export function shapingObjects(v: Virt, port: string, mtu: number, names: ShapingNames): KernelObject[] {
  const out: KernelObject[] = [];
  const inRate = v.rates.in?.spec;
  if (inRate) out.push(tbfQdisc(port, inRate, mtu));
  const outRate = v.rates.out?.spec;
  if (outRate) {
    const ifb: LinkObject = { kind: 'link', name: names.ifb, type: 'ifb', alias: names.alias, up: true, attrs: {} };
    const ingress: QdiscObject = { kind: 'qdisc', dev: port, parent: 'ingress', type: 'ingress' };
    const filter: FilterObject = { kind: 'filter', dev: port, parent: 'ingress', pref: FILTER_PREF, redirect: names.ifb };
    out.push(ifb, ingress, filter, tbfQdisc(names.ifb, outRate, mtu));
  }
  return out;
}

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
