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
 * holds lsdn's redirect (src/kinds/qdisc.ts and filter.ts, which also say how tc reads them
 * back and how closely they compare).
 */
import type { Virt } from '../model/netmodel.js';
import type { FilterObject, KernelObject, LinkObject, QdiscObject } from '../core/objects.js';
import { FILTER_PREF } from '../kinds/filter.js';

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
