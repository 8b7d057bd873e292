/**
 * Running an lsctl script: a real tclsh executes it, with the lsdn commands of prelude.tcl;
 * each command is one request to this process, which holds the netmodel (session.ts).
 *
 * The requests and answers go through two named pipes (FIFOs) in a private temporary
 * directory, so that tclsh keeps its own stdin, stdout and stderr for the script: Tcl cannot
 * open an inherited descriptor by number, and the ones Node passes to children are sockets,
 * which /dev/fd/N cannot reopen.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Netmodel } from '../model/netmodel.js';
import { loadModelText } from '../file/load.js';
import { applyHost, destroyHost } from '../apply/host.js';
import { ModelInvalidError, UsageError } from '../core/errors.js';
import { KernelError } from '../core/errors.js';
import { LockBusyError } from '../core/errors.js';
import { formatReport } from '../apply/format.js';
import { formatProblem } from '../core/problem.js';
import { LsctlError } from '../core/errors.js';
import { LsctlSession, type LsctlAnswer, type LsctlHost, type LsctlRequest } from './session.js';
import { TclshMissingError } from '../core/errors.js';

/** The prelude: next to this module when run from the sources, under src/lsctl/ of the package when run from dist/. */
export function preludePath(): string {
  const candidates = [new URL('./prelude.tcl', import.meta.url), new URL('../../src/lsctl/prelude.tcl', import.meta.url)];
  for (const c of candidates) {
    const p = fileURLToPath(c);
    if (existsSync(p)) return p;
  }
  throw new Error(`lsctl: the Tcl prelude is missing (looked for ${candidates.map((c) => fileURLToPath(c)).join(', ')}); reinstall lsdn`);
}

function executable(p: string): boolean {
  try {
    accessSync(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The Tcl interpreter: $LSDN_TCLSH, else tclsh (or a versioned tclsh) on the PATH. */
export function findTclsh(env: NodeJS.ProcessEnv = process.env): string {
  const wanted = env.LSDN_TCLSH;
  if (wanted) {
    if (wanted.includes('/') ? executable(wanted) : findOnPath([wanted], env)) return wanted;
    throw new TclshMissingError(` (LSDN_TCLSH is "${wanted}")`);
  }
  const found = findOnPath(['tclsh', 'tclsh8.6', 'tclsh9.0', 'tclsh8.7'], env);
  if (!found) throw new TclshMissingError();
  return found;
}

function findOnPath(names: string[], env: NodeJS.ProcessEnv): string | undefined {
  for (const name of names) {
    for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
      if (dir && executable(join(dir, name))) return join(dir, name);
    }
  }
  return undefined;
}

/** commit and cleanup on this host: the reconciler, in the current network namespace. */
export const kernelHost: LsctlHost = {
  async commit(model, phys, print) {
    if (process.getuid && process.getuid() !== 0) {
      throw new LsctlError(`commit: configuring phys ${phys.name} changes network interfaces and needs root (without claimLocal, commit only validates)`);
    }
    try {
      const r = await applyHost(model, { phys: phys.name });
      for (const w of r.warnings) print(`warning: ${w}`);
      // LSDN's commit makes every object or fails: a virt whose interface is absent is an error
      // here, though `lsdn apply` lets it wait for its VM (status 'waiting', exit 0).
      if (r.report.results.some((x) => x.status !== 'done')) {
        for (const p of r.problems) if (p.severity === 'error') print(formatProblem(p));
        print(formatReport(r.report, `commit on phys ${phys.name}`));
        throw new LsctlError(`commit: not every change could be made on phys ${phys.name}`);
      }
    } catch (e) {
      if (e instanceof ModelInvalidError) {
        for (const p of e.problems) print(formatProblem(p));
        throw new LsctlError(`commit: ${e.message}`);
      }
      if (e instanceof UsageError || e instanceof KernelError || e instanceof LockBusyError) throw new LsctlError(`commit: ${e.message}`);
      throw e;
    }
  },
  async cleanup(model, print) {
    if (process.getuid && process.getuid() !== 0) throw new LsctlError('cleanup: removing network interfaces needs root');
    try {
      const r = await destroyHost({ context: model.name });
      if (!r.report.ok) {
        print(formatReport(r.report, 'cleanup'));
        throw new LsctlError('cleanup: not everything could be removed');
      }
    } catch (e) {
      if (e instanceof KernelError || e instanceof LockBusyError) throw new LsctlError(`cleanup: ${e.message}`);
      throw e;
    }
  },
};

/** commit and cleanup that touch nothing (converting a script to a model). */
export const noHost: LsctlHost = {
  async commit() {},
  async cleanup() {},
};

type Stdio = 'inherit' | 'pipe' | 'ignore' | number;

export interface RunLsctlOptions {
  /** What commit and cleanup do (default: configure this host). */
  host?: LsctlHost;
  /** Keep the model (as YAML) at each commit in `session.commits`. */
  keepCommits?: boolean;
  /** commit validates the model first (default true). */
  validateOnCommit?: boolean;
  /** The script's stdin, stdout, stderr (default: inherited). 'pipe' collects the output. */
  stdin?: Stdio;
  stdout?: Stdio;
  stderr?: Stdio;
  /** Send the script's stdout where its stderr goes (ignores `stdout`). */
  stdoutToStderr?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run the script in a safe Tcl interpreter (lsdn import) for at most this many seconds. */
  safeTimeLimitS?: number;
}

export interface RunLsctlResult {
  /** tclsh's exit code (0: the script ran to its end, or exited with 0). */
  code: number;
  session: LsctlSession;
  /** Collected output (when 'pipe'). */
  stdout: string;
  stderr: string;
}

function frame(kind: string, text: string): Buffer {
  const data = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from(`${kind} ${data.length}\n`), data]);
}

function encodeAnswer(a: LsctlAnswer): Buffer {
  return Buffer.concat([
    ...a.out.map((s) => frame('out', s)),
    ...a.err.map((s) => frame('err', s)),
    a.error !== undefined ? frame('error', a.error) : frame('ok', a.result ?? ''),
  ]);
}

/** Run an lsctl script with arguments; resolves when tclsh has exited. */
export async function runLsctl(script: string, args: string[] = [], opts: RunLsctlOptions = {}): Promise<RunLsctlResult> {
  const env = opts.env ?? process.env;
  const tclsh = findTclsh(env);
  const prelude = preludePath();
  const session = new LsctlSession(opts.host ?? kernelHost, { keepCommits: opts.keepCommits, validateOnCommit: opts.validateOnCommit });

  const dir = await mkdtemp(join(tmpdir(), 'lsctl-'));
  const reqPath = join(dir, 'req');
  const respPath = join(dir, 'resp');
  const sockets: Socket[] = [];
  try {
    const mk = spawnSync('mkfifo', ['-m', '600', reqPath, respPath], { encoding: 'utf8' });
    if (mk.status !== 0) throw new Error(`lsctl: cannot create the pipes to tclsh: ${mk.error?.message ?? mk.stderr.trim()}`);
    // Read-write opens never block, and keep the pipes open however tclsh ends.
    const flags = fsConstants.O_RDWR | fsConstants.O_NONBLOCK;
    const requests = new Socket({ fd: openSync(reqPath, flags), readable: true, writable: false });
    const answers = new Socket({ fd: openSync(respPath, flags), readable: false, writable: true });
    sockets.push(requests, answers);

    let queue = Promise.resolve();
    let pending = Buffer.alloc(0);
    let protocolError: unknown;
    let opened = false;
    requests.on('data', (chunk: Buffer) => {
      // tclsh has both pipes open before its first request: their names are not needed any
      // more (nothing is left behind in /tmp if this process is killed).
      if (!opened) {
        opened = true;
        void rm(dir, { recursive: true, force: true });
      }
      pending = Buffer.concat([pending, chunk]);
      for (let nl = pending.indexOf(10); nl >= 0; nl = pending.indexOf(10)) {
        const line = pending.subarray(0, nl).toString('utf8');
        pending = pending.subarray(nl + 1);
        queue = queue.then(async () => {
          let answer: LsctlAnswer;
          try {
            answer = await session.handle(JSON.parse(line) as LsctlRequest);
          } catch (e) {
            protocolError ??= e;
            answer = { out: [], err: [], error: `lsctl: internal error: ${e instanceof Error ? e.message : String(e)}` };
          }
          answers.write(encodeAnswer(answer));
        });
      }
    });

    const safe = opts.safeTimeLimitS !== undefined ? ['-safe', String(opts.safeTimeLimitS)] : [];
    const child = spawn(tclsh, [prelude, ...safe, reqPath, respPath, script, ...args], {
      stdio: [opts.stdin ?? 'inherit', opts.stdoutToStderr ? 'pipe' : (opts.stdout ?? 'inherit'), opts.stderr ?? 'inherit'],
      env,
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      if (!opts.stdoutToStderr) stdout += s;
      else if (opts.stderr === 'pipe') stderr += s;
      else if (opts.stderr !== 'ignore') process.stderr.write(s);
    });
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    // The safe interpreter's own limit counts Tcl's time; this watchdog also ends a tclsh
    // blocked outside it (reading its stdin), 2 s later.
    let killed = false;
    const watchdog =
      opts.safeTimeLimitS !== undefined
        ? setTimeout(() => {
            killed = true;
            child.kill('SIGKILL');
          }, (opts.safeTimeLimitS + 2) * 1000)
        : undefined;
    let code = await new Promise<number>((resolve, reject) => {
      child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new TclshMissingError(` (${tclsh})`) : e));
      child.on('close', (c, signal) => resolve(c ?? (signal ? 128 + (signalNumber(signal) ?? 1) : 1)));
    }).finally(() => clearTimeout(watchdog));
    if (killed) {
      const msg = `import: the script ran longer than ${opts.safeTimeLimitS} s\n`;
      if (opts.stderr === 'pipe') stderr += msg;
      else process.stderr.write(msg);
      code = 1;
    }
    await queue;
    if (protocolError) throw protocolError;
    return { code, session, stdout, stderr };
  } finally {
    for (const s of sockets) s.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  const n: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 };
  return n[signal];
}

function isEmpty(m: Netmodel): boolean {
  return m.settings.size === 0 && m.nets.size === 0 && m.physes.size === 0;
}

export interface ImportResult {
  code: number;
  /** The model the script built (at its end; when it ended freed, as at its last commit). */
  model: Netmodel;
  /** The model (YAML) at each commit. */
  commits: string[];
  stdout: string;
  stderr: string;
}

/** The time limit of `lsdn import`: $LSDN_IMPORT_TIME_LIMIT seconds, else 30. */
export function importTimeLimit(env: NodeJS.ProcessEnv): number {
  const v = env.LSDN_IMPORT_TIME_LIMIT;
  if (v === undefined || v === '') return 30;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`LSDN_IMPORT_TIME_LIMIT must be a positive number of seconds, not "${v}"`);
  return n;
}

/**
 * Run a script in a safe Tcl interpreter (no exec, open, file, socket; source only next to the
 * script; a time limit) without touching the host (commit and cleanup do nothing; commit does not
 * even validate, so an invalid model converts too) and return the model it built. The script's own output goes to stderr unless `stdout` says otherwise.
 */
export async function importLsctl(script: string, args: string[] = [], opts: Omit<RunLsctlOptions, 'host' | 'keepCommits' | 'validateOnCommit'> = {}): Promise<ImportResult> {
  const r = await runLsctl(script, args, {
    stdoutToStderr: opts.stdout === undefined,
    ...opts,
    host: noHost,
    keepCommits: true,
    validateOnCommit: false,
    safeTimeLimitS: opts.safeTimeLimitS ?? importTimeLimit(opts.env ?? process.env),
  });
  const commits = r.session.commits;
  let model = r.session.model;
  const last = commits[commits.length - 1];
  if (isEmpty(model) && last !== undefined) {
    const loaded = loadModelText(last, `${script} (at its last commit)`).model;
    if (loaded) model = loaded;
  }
  return { code: r.code, model, commits, stdout: r.stdout, stderr: r.stderr };
}

const USAGE = `usage: lsctl SCRIPT [ARGS...]

Runs an lsctl script (Tcl with the lsdn commands; start it with \`namespace import lsdn::*\`).
ARGS are the script's $argv; by convention the first names the phys of this host:
    lsctl cluster.lsctl hv1
commit configures this host as the phys claimed local (as root); without claimLocal it only
validates. The exit code is 0 when the script ran to its end, 1 when it failed.`;

/** `lsctl SCRIPT ARGS...`; returns the exit code. */
export async function lsctlMain(argv: string[]): Promise<number> {
  const [script, ...args] = argv;
  if (script === undefined || script === '-h' || script === '--help') {
    (script === undefined ? process.stderr : process.stdout).write(`${USAGE}\n`);
    return script === undefined ? 1 : 0;
  }
  if (!existsSync(script)) {
    process.stderr.write(`lsctl: cannot read script "${script}": no such file\n`);
    return 1;
  }
  try {
    return (await runLsctl(script, args)).code;
  } catch (e) {
    if (e instanceof TclshMissingError) {
      process.stderr.write(`lsctl: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
