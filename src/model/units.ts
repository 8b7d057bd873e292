/**
 * Rates and sizes with LSDN's (and tc's historical) units, 1024-based.
 * Rates are returned in bits per second, sizes in bytes.
 */
const K = 1024;
const RATE_UNITS: Record<string, number> = {
  '': 1, bit: 1, kbit: K, mbit: K ** 2, gbit: K ** 3, tbit: K ** 4,
  // bytes per second (tc's "bps"), and LSDN's byte units used as rates
  bps: 8, kbps: 8 * K, mbps: 8 * K ** 2, gbps: 8 * K ** 3,
  b: 8, kb: 8 * K, mb: 8 * K ** 2, gb: 8 * K ** 3,
};
const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1, kb: K, mb: K ** 2, gb: K ** 3,
  bit: 1 / 8, kbit: K / 8, mbit: K ** 2 / 8, gbit: K ** 3 / 8,
};

function parseWithUnits(text: string | number, units: Record<string, number>, what: string): number {
  if (typeof text === 'number') {
    if (!Number.isFinite(text)) throw new Error(`invalid ${what} ${text}`);
    return text;
  }
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) throw new Error(`invalid ${what} "${text}": expected a number with an optional unit (${Object.keys(units).filter(Boolean).join(', ')})`);
  const unit = (m[2] ?? '').toLowerCase();
  const factor = units[unit];
  if (factor === undefined) throw new Error(`invalid ${what} "${text}": unknown unit "${m[2]}" (use ${Object.keys(units).filter(Boolean).join(', ')})`);
  return Number(m[1]) * factor;
}

/** Parse a rate ("10mbit", "500kbit", "1000" = bits/s, "2kbps" = bytes/s) into bits per second. */
export function parseRate(text: string | number): number {
  return parseWithUnits(text, RATE_UNITS, 'rate');
}

/** Parse a size ("32kb", "1500", "64kbit") into bytes. */
export function parseSize(text: string | number): number {
  return parseWithUnits(text, SIZE_UNITS, 'size');
}

