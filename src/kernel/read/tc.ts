/**
 * lsdn's qdiscs and redirect filters on the interfaces it manages, from the `tc -j qdisc show`
 * already read (decoded by src/kinds/qdisc.ts and filter.ts): at most two more processes, only
 * when there is something to look at: `tc -j -batch -` with `filter show dev X ingress` for the
 * managed interfaces that have an ingress qdisc, and `tc qdisc show` (text: the only place tc
 * prints a tbf's peak rate) when one of lsdn's tbfs has one.
 */
import type { Kernel } from '../exec.js';
import type { KernelObject, QdiscObject } from '../../core/objects.js';
import { redirectFromKernel } from '../../kinds/filter.js';
import { splitJsonValues, type TcFilter, type TcQdisc } from '../../kinds/iproute.js';
import { QDISC_HANDLE, isOwnedTbf, tbfFromKernel, tbfPeakRates, withPeakRate } from '../../kinds/qdisc.js';

/** lsdn's root tbfs and its ingress redirects on the interfaces `devs`. */
export async function readTc(kernel: Kernel, qdiscs: TcQdisc[], devs: ReadonlySet<string>): Promise<KernelObject[]> {
  const out: KernelObject[] = [];
  const tbfs: QdiscObject[] = [];
  const ingress: string[] = [];
  let withPeak = false;
  for (const q of qdiscs) {
    if (!q.dev || !devs.has(q.dev)) continue;
    if (q.kind === 'ingress') {
      ingress.push(q.dev);
    } else if (isOwnedTbf(q)) {
      const t = tbfFromKernel(q as TcQdisc & { dev: string });
      if (t.mtu !== undefined) withPeak = true;
      tbfs.push(t);
    }
  }
  ingress.sort();
  const [filters, text] = await Promise.all([
    ingress.length
      ? kernel.run('tc', ['-j', '-batch', '-'], { input: ingress.map((d) => `filter show dev ${d} ingress`).join('\n') + '\n' }).catch(() => ({ stdout: '' }))
      : undefined,
    withPeak ? kernel.run('tc', ['qdisc', 'show']) : undefined,
  ]);
  if (filters) {
    let lists = splitJsonValues(filters.stdout) as TcFilter[][];
    // A device gone between the reads prints no list: then ask again one device at a time.
    if (lists.length !== ingress.length) {
      lists = await Promise.all(ingress.map((d) => kernel.json<TcFilter[]>('tc', ['filter', 'show', 'dev', d, 'ingress']).catch(() => [])));
    }
    ingress.forEach((dev, i) => out.push(...(redirectFromKernel(dev, lists[i] ?? []) ?? [])));
  }
  const peaks = text ? tbfPeakRates(text.stdout) : new Map<string, number>();
  for (const q of tbfs) {
    const peak = peaks.get(q.dev);
    if (peak !== undefined) {
      const src = qdiscs.find((x) => x.dev === q.dev && x.root && x.handle === QDISC_HANDLE);
      withPeakRate(q, peak, src?.options?.lat);
    }
    out.push(q);
  }
  return out;
}
