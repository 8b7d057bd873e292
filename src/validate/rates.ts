/**
 * Rate limits of a virt: positive rates and bursts, a peak above the average, a bucket tc can
 * hold, a burst of at least one packet.
 */
import { DIRECTIONS, type Virt } from '../model/netmodel.js';
import { MAX_BUCKET_SECONDS, q, type Checker } from './checker.js';

export function checkRates(c: Checker, v: Virt, virtText: string): void {
  for (const dir of DIRECTIONS) {
    const r = v.rates[dir];
    if (!r) continue;
    const label = `rate ${dir} of ${virtText}`;
    const { avg, burst, peak } = r.spec;
    const avgOk = typeof avg === 'number' && Number.isFinite(avg) && avg > 0;
    if (!avgOk) c.error('rate-avg-invalid', label, `avg ${q(avg)} bit/s is not a positive rate`, r, 'avg');
    const burstOk = typeof burst === 'number' && Number.isFinite(burst) && burst > 0;
    if (!burstOk) c.error('rate-burst-invalid', label, `burst ${q(burst)} bytes is not a positive size`, r, 'burst');
    if (peak !== undefined) {
      if (typeof peak !== 'number' || !Number.isFinite(peak) || peak < 0) {
        c.error('rate-peak-invalid', label, `peak ${q(peak)} bit/s is not a rate (it is negative or not a number)`, r, 'peak');
      } else if (avgOk && peak < avg) {
        c.error('rate-peak-invalid', label, `peak ${peak} bit/s is lower than avg ${avg} bit/s`, r, 'peak');
      }
    }
    // tc keeps a token bucket's size as the time it takes to fill at the average rate, in
    // 32-bit kernel ticks: past ~274.9 s it silently wraps (and the next apply sees drift).
    if (burstOk && avgOk && (burst * 8) / avg > MAX_BUCKET_SECONDS) {
      c.error('rate-burst-too-long', label,
        `burst ${burst} bytes takes ${Math.round((burst * 8) / avg)} s to earn at avg ${avg} bit/s; tc cannot hold a bucket of more than ${MAX_BUCKET_SECONDS} s (raise avg or lower burst)`,
        r, 'burst');
    }
    if (burstOk) {
      const mtu = v.mtu ?? v.net.mtu ?? 1500;
      if (burst < mtu) {
        c.warning('rate-burst-below-mtu', label,
          `burst ${burst} bytes is smaller than the MTU ${mtu}: larger packets can never pass`, r, 'burst');
      }
    }
  }
}