/**
 * Wall-clock limits of the tests, scaled for slow machines: LSDN_TIME_FACTOR (a number >= 1,
 * default 1) multiplies every limit a test sets (node:test timeouts, a spawned command's
 * timeout, a wait's deadline). The test guest (test/vm/run.ts) sets it: under TCG the guest
 * runs 20-30 times slower than the host. A limit is scaled, never removed.
 */
function factor(): number {
  const raw = process.env.LSDN_TIME_FACTOR;
  if (raw === undefined || raw === '') return 1;
  const f = Number(raw);
  if (!Number.isFinite(f) || f < 1) throw new Error(`LSDN_TIME_FACTOR must be a number >= 1, got ${JSON.stringify(raw)}`);
  return f;
}

/** The factor every test limit is multiplied by. */
export const TIME_FACTOR = factor();

/** `ms` scaled by LSDN_TIME_FACTOR (whole milliseconds). */
export function limit(ms: number): number {
  return Math.round(ms * TIME_FACTOR);
}
