/**
 * Shared pieces of the benchmark: the namespace prefix every bench object lives under (so one
 * `labDown(prefix)` removes everything, processes inside included, also after a crash or
 * Ctrl-C), processes, child-process phases, statistics and markdown tables.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { labDown, listNamespaces } from '../src/lab/lab.js';

/** Every namespace the bench creates starts with `${BENCH_PREFIX}-`. */
export const BENCH_PREFIX = `lsb${process.pid.toString(36)}`;

export function nsName(tag: string): string {
  return `${BENCH_PREFIX}-${tag}`;
}

/** Remove every namespace of this run (killing what runs inside them). */
export async function cleanupAll(): Promise<string[]> {
  try {
    return await labDown(BENCH_PREFIX);
  } catch (e) {
    console.error(`cleanup: ${(e as Error).message}`);
    return [];
  }
}

/** Namespaces of this run that still exist. */
export async function leftovers(): Promise<string[]> {
  return (await listNamespaces()).filter((n) => n.startsWith(`${BENCH_PREFIX}-`));
}

export interface ProcResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run a process to its end (killed after `timeoutMs`); never throws for a non-zero exit. */
export function runProc(argv: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ProcResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const [cmd, ...args] = argv;
    const child = spawn(cmd as string, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.stdin.on('error', () => undefined);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: performance.now() - t0 });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Run a process; throw with its stderr when it fails. */
export async function mustRun(argv: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<ProcResult> {
  const r = await runProc(argv, opts);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} (exit ${r.code}): ${r.stderr.trim().split('\n').slice(0, 5).join('; ')}`);
  return r;
}

/** `ip [-n NS] -batch -` (stops at the first failing line, which the error names). */
export async function ipBatch(ns: string | undefined, lines: string[]): Promise<number> {
  const argv = ns ? ['ip', '-n', ns, '-batch', '-'] : ['ip', '-batch', '-'];
  const r = await mustRun(argv, { input: lines.join('\n') + '\n' });
  return r.ms;
}

/** Create namespaces (one process) with `lo` up in each. */
export async function addNamespaces(names: string[]): Promise<void> {
  await ipBatch(undefined, names.map((n) => `netns add ${n}`));
  for (const n of names) await ipBatch(n, ['link set lo up']);
}

/**
 * Run `bench/<script>` in a fresh Node process with the same loader (tsx), and return the JSON
 * object it prints as its last stdout line. A fresh process per phase gives each phase its
 * own peak RSS and the cold start of a real `lsdn apply`.
 */
export async function runPhase<T>(script: string, args: string[], timeoutMs = 300_000): Promise<T> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const r = await runProc([process.execPath, ...process.execArgv, path, ...args], { timeoutMs });
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.code !== 0 || !last.startsWith('{')) {
    throw new Error(`${script} ${args.join(' ')} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-8).join('\n')}`);
  }
  return JSON.parse(last) as T;
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export function ms(x: number): string {
  if (!Number.isFinite(x)) return '-';
  return x >= 100 ? `${x.toFixed(0)} ms` : x >= 10 ? `${x.toFixed(1)} ms` : `${x.toFixed(2)} ms`;
}

export function mib(kb: number): string {
  return `${(kb / 1024).toFixed(0)} MiB`;
}

export function verdict(ok: boolean): string {
  return ok ? 'met' : '**missed**';
}

/** A message fit for a table cell: one line, no pipes, at most `max` characters. */
export function cell(msg: string, max = 160): string {
  const one = msg.replace(/\s+/g, ' ').replace(/\|/g, '/').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** A markdown table. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(w[i] ?? 0)).join(' | ')} |`;
  return [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

/** Where the run's progress goes (stderr, so stdout is the report). */
export function progress(msg: string): void {
  process.stderr.write(`# ${msg}\n`);
}
