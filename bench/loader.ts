/**
 * The loader's growth: `loadModelText` of one net with N virts (each with phys, if and MAC, in
 * flow mappings) for N = 10,000, 20,000 and 40,000, median of R, in one process; the ratio of
 * 40,000 to 10,000 (linear: 4). Before the loader located fields by one walk of the AST (and
 * found duplicate keys by lookup, not by the parser's pairwise check) it was quadratic.
 *
 *   npx tsx bench/loader.ts [--repeat R] [--sizes 10000,20000,40000]
 */
import { loadModelText } from '../src/file/load.js';

const argv = process.argv.slice(2);
const repeat = Number(argv[argv.indexOf('--repeat') + 1]) || 3;
const sizes = argv.includes('--sizes') ? argv[argv.indexOf('--sizes') + 1]!.split(',').map(Number) : [10_000, 20_000, 40_000];
const hex = (n: number) => (n & 255).toString(16).padStart(2, '0');

function model(n: number): string {
  const lines = ['name: big', 'physes:', '  a: { if: eth0, ip: 192.168.0.1 }', 'nets:', '  x:', '    virts:'];
  for (let i = 0; i < n; i++) lines.push(`      v${i}: { phys: a, if: t${i}, mac: "02:00:00:${hex(i >> 16)}:${hex(i >> 8)}:${hex(i)}" }`);
  return `${lines.join('\n')}\n`;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const result = new Map<number, number>();
loadModelText(model(1000), 'warm.yaml');
for (const n of sizes) {
  const text = model(n);
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t = performance.now();
    const r = loadModelText(text, 'big.yaml');
    times.push(performance.now() - t);
    if (r.problems.length || [...r.model!.virts()].length !== n) throw new Error(`loading ${n} virts: ${JSON.stringify(r.problems.slice(0, 3))}`);
  }
  result.set(n, median(times));
  process.stdout.write(`${String(n).padStart(6)} virts, ${(text.length / 1e6).toFixed(1)} MB: ${median(times).toFixed(0)} ms (median of ${repeat})\n`);
}
const [lo, hi] = [Math.min(...sizes), Math.max(...sizes)];
process.stdout.write(`${hi} / ${lo}: ${(result.get(hi)! / result.get(lo)!).toFixed(2)}x for ${(hi / lo).toFixed(0)}x the virts; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB\n`);
