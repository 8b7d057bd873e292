/**
 * The only place lsdn runs kernel tools. Every call goes through a `Kernel`, which knows the
 * network namespace to work in and counts processes and batch lines (kernel operations), and
 * every failure is a `KernelError` carrying the command, the failed batch line and stderr.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { Tool } from '../core/plan.js';
import { KernelError } from '../core/errors.js';
import { checkBatchLine } from '../kinds/escape.js';

export interface BatchFailure {
  /** 1-based line of the batch. */
  line: number;
  text: string;
  message: string;
}

/** Split `-force -batch` stderr ("msg... / Command failed -:N" groups) into failures. */
export function parseForceErrors(stderr: string, lines: string[]): BatchFailure[] {
  const out: BatchFailure[] = [];
  let msg: string[] = [];
  for (const l of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)/.exec(l.trim());
    if (m) {
      const line = Number(m[1]);
      out.push({ line, text: lines[line - 1] ?? '', message: msg.join('; ') || 'failed' });
      msg = [];
    } else if (l.trim() && !/^We have an error talking to the kernel/.test(l.trim())) {
      msg.push(l.trim());
    }
  }
  return out;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface ExecStats {
  /** Processes spawned. */
  processes: number;
  /** Mutating operations sent (batch lines and single commands that change state). */
  operations: number;
}

function spawnCollect(argv: string[], input: string | undefined, timeoutMs: number): Promise<RunResult & { code: number | null; error?: Error }> {
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd as string, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let spawnError: Error | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => (spawnError = e));
    child.stdin.on('error', () => undefined);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code, error: spawnError });
    });
    child.stdin.end(input ?? '');
  });
}

/** Find the failing line in iproute2 / nft batch error output. */
export function failedBatchLine(tool: Tool, stderr: string): number | undefined {
  if (tool === 'nft') {
    const m = /^(?:-|\/dev\/stdin):(\d+):/m.exec(stderr);
    return m ? Number(m[1]) : undefined;
  }
  const m = /Command failed -:(\d+)/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

export interface KernelOptions {
  /** Network namespace (by `ip netns` name) to work in. */
  netns?: string;
  /** Per-process timeout. */
  timeoutMs?: number;
}

export class Kernel {
  readonly netns: string | undefined;
  readonly stats: ExecStats = { processes: 0, operations: 0 };
  private readonly timeoutMs: number;

  constructor(opts: KernelOptions = {}) {
    this.netns = opts.netns;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
  }

  /** argv for a tool in this kernel's namespace. */
  argv(tool: Tool | 'sysctl' | string, args: string[]): string[] {
    if (!this.netns) return [tool, ...args];
    if (tool === 'ip' || tool === 'bridge' || tool === 'tc') return [tool, '-n', this.netns, ...args];
    return ['ip', 'netns', 'exec', this.netns, tool, ...args];
  }

  /** Run a tool and return its output; a non-zero exit throws KernelError. */
  async run(tool: Tool | string, args: string[], opts: { input?: string; mutates?: boolean } = {}): Promise<RunResult> {
    const argv = this.argv(tool, args);
    this.stats.processes++;
    if (opts.mutates) this.stats.operations++;
    const r = await spawnCollect(argv, opts.input, this.timeoutMs);
    if (r.error) {
      const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new KernelError(
        missing ? `${argv[0]} is not installed (run scripts/setup.sh, or install iproute2/nftables)` : `${argv.join(' ')}: ${r.error.message}`,
        argv, '', null,
      );
    }
    if (r.code !== 0) {
      const msg = r.stderr.trim() || `exit code ${r.code}`;
      throw new KernelError(`${argv.join(' ')}: ${msg}`, argv, r.stderr, r.code);
    }
    return { stdout: r.stdout, stderr: r.stderr };
  }

  /**
   * Start a long-running process of its own (a lab's VDE clients: vde_plug, vdens, qemu) in this
   * kernel's namespace, detached from lsdn (it outlives the command that started it), its
   * output appended to `log`; resolves with its pid once it runs (a missing tool throws).
   */
  daemon(tool: string, args: string[], log: string): Promise<number> {
    const argv = this.argv(tool, args);
    this.stats.processes++;
    const fd = openSync(log, 'a');
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0] as string, argv.slice(1), { detached: true, stdio: ['ignore', fd, fd] });
      child.on('error', (e) => {
        closeSync(fd);
        const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
        reject(new KernelError(missing ? `${argv[0]} is not installed (run scripts/setup.sh)` : `${argv.join(' ')}: ${e.message}`, argv, '', null));
      });
      child.on('spawn', () => {
        closeSync(fd);
        child.unref();
        resolve(child.pid as number);
      });
    });
  }

  /** Run a tool with `-j` output and parse it (empty output reads as []). */
  async json<T = unknown>(tool: Tool, args: string[]): Promise<T> {
    const jsonArgs = ['-j', ...args];
    const { stdout } = await this.run(tool, jsonArgs);
    const text = stdout.trim();
    if (!text) return [] as T;
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new KernelError(`${tool} ${args.join(' ')}: unparsable JSON output (${(e as Error).message})`, this.argv(tool, jsonArgs), '', 0);
    }
  }

  /**
   * Send iproute2 lines in one process with `-force`: every line is tried even after a
   * failure. Returns the failed lines (1-based) with the kernel's message; [] when all succeeded.
   */
  async batchForce(tool: Exclude<Tool, 'nft'>, lines: string[]): Promise<BatchFailure[]> {
    if (lines.length === 0) return [];
    for (const l of lines) checkBatchLine(tool, l);
    const argv = this.argv(tool, ['-force', '-batch', '-']);
    this.stats.processes++;
    this.stats.operations += lines.length;
    const r = await spawnCollect(argv, lines.join('\n') + '\n', this.timeoutMs);
    if (r.error) throw new KernelError(`${argv[0]}: ${r.error.message}`, argv, '', null);
    if (r.code === 0) return [];
    const failures = parseForceErrors(r.stderr, lines);
    if (failures.length === 0) {
      throw new KernelError(`${argv.join(' ')}: ${r.stderr.trim() || `exit code ${r.code}`}`, argv, r.stderr, r.code);
    }
    return failures;
  }

  /**
   * Send lines in one process: `ip|bridge|tc -batch -` (stops at the first failing line) or
   * `nft -f -` (one atomic transaction). On failure the KernelError says which line failed;
   * for iproute2 every earlier line has taken effect, for nft none has.
   */
  async batch(tool: Tool, lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    for (const l of lines) checkBatchLine(tool, l);
    const args = tool === 'nft' ? ['-f', '-'] : ['-batch', '-'];
    const argv = this.argv(tool, args);
    this.stats.processes++;
    this.stats.operations += lines.length;
    const r = await spawnCollect(argv, lines.join('\n') + '\n', this.timeoutMs);
    if (r.error) {
      throw new KernelError(`${argv[0]}: ${r.error.message}`, argv, '', null);
    }
    if (r.code !== 0) {
      const line = failedBatchLine(tool, r.stderr) ?? (tool === 'nft' ? undefined : lines.length);
      const batchLine = line !== undefined ? lines[line - 1] : undefined;
      const detail = r.stderr
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !/^Command failed/.test(l))
        .join('; ');
      throw new KernelError(
        `${tool}${batchLine !== undefined ? ` "${batchLine}"` : ''}: ${detail || `exit code ${r.code}`}`,
        argv, r.stderr, r.code, line, batchLine,
      );
    }
  }
}
