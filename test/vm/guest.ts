/**
 * The test guest (issue 17): the distribution kernel of scripts/vm-assets.sh (the one the qemu
 * lab test boots) with this machine's own / as its root, read-only over virtio-9p under a
 * tmpfs overlay (test/vm/guest-init.sh), so that the kernel tests this host's kernel cannot run
 * (vlan, geneve, tc flower, ...) run there with the same node, iproute2, nft and checkout.
 *
 * `runGuest` boots it with a job (a shell script, run in `cwd` inside the guest), streams the
 * console, and resolves with the job's exit status and whatever the job left in its out
 * directory (a second, writable 9p share, /run/lsdn-guest in the guest). qemu never outlives
 * the run: it is killed at the time limit, when `signal` aborts, and when this process exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vmAccel } from '../../src/lab/clients.js';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

export interface GuestAssets {
  kernel: string;
  initrd: string;
  /** Host path of the kernel's modules (…/lib/modules; the guest binds <kver> of it). */
  modules: string;
  /** The guest kernel's release (uname -r). */
  kver: string;
}

/** Build (or find cached) the guest's kernel, initramfs and modules; a string says why they cannot be had. */
export function guestAssets(): GuestAssets | string {
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).status !== 0) {
    return 'qemu-system-x86_64 is not installed (scripts/setup.sh installs qemu-system-x86)';
  }
  const r = spawnSync(join(ROOT, 'scripts/vm-assets.sh'), { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) return `scripts/vm-assets.sh failed (status ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ')}`;
  const dir = r.stdout.trim().split('\n').at(-1) as string;
  return {
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'guest-initramfs.cpio'),
    modules: join(dir, 'lib/modules'),
    kver: readFileSync(join(dir, 'kernel-version'), 'utf8').trim(),
  };
}

export interface GuestRun {
  /** The job's exit status; null when the guest never reported one (crash, time limit). */
  rc: number | null;
  /** Everything the guest printed on its serial console (firmware escapes included). */
  console: string;
  timedOut: boolean;
  ms: number;
  accel: string;
  /** Files the job wrote into its out directory (/run/lsdn-guest), by name. */
  files: Map<string, string>;
  /** A reason the guest failed before or around the job (LSDN-GUEST-FAIL, qemu's own error). */
  failure?: string;
}

const live = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.on('close', () => live.delete(child));
  if (exitHook) return;
  exitHook = true;
  // 'exit' handlers run synchronously: a kill() here is all that can still be done.
  process.on('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

/** Kill every guest this process started (the CLI's signal handlers call it). */
export function killGuests(): void {
  for (const c of live) c.kill('SIGKILL');
}

export interface GuestOptions {
  assets: GuestAssets;
  /** The job: a POSIX shell script, run as root in `cwd` inside the guest. */
  job: string;
  /** Working directory in the guest (a path of this machine: the guest's root is this machine's). */
  cwd?: string;
  timeoutMs: number;
  memMiB?: number;
  cpus?: number;
  /** Modules loaded before the job (as a host's boot would: br_netfilter is never loaded on demand). */
  modprobe?: string[];
  /** Console output as it comes. */
  onOutput?: (chunk: string) => void;
  signal?: AbortSignal;
}

export function runGuest(opts: GuestOptions): Promise<GuestRun> {
  const accel = vmAccel();
  const out = mkdtempSync(join(tmpdir(), 'lsdn-guest-'));
  writeFileSync(join(out, 'job.sh'), opts.job);
  const tcg = accel.name === 'tcg';
  const args = [
    ...(tcg ? ['-accel', 'tcg,thread=multi', '-cpu', 'max'] : accel.args),
    '-machine', 'q35', '-m', `${opts.memMiB ?? 2048}M`, '-smp', String(opts.cpus ?? 2),
    '-nographic', '-nodefaults', '-no-reboot', '-no-user-config', '-serial', 'stdio', '-nic', 'none',
    '-kernel', opts.assets.kernel, '-initrd', opts.assets.initrd,
    '-fsdev', 'local,id=root,path=/,security_model=none,readonly=on,multidevs=remap',
    '-device', 'virtio-9p-pci,fsdev=root,mount_tag=root,romfile=',
    '-fsdev', `local,id=out,path=${out},security_model=none`,
    '-device', 'virtio-9p-pci,fsdev=out,mount_tag=out,romfile=',
    '-append', `console=ttyS0 quiet panic=-1 lsdn.modules=${opts.assets.modules} lsdn.cwd=${opts.cwd ?? ROOT}${opts.modprobe?.length ? ` lsdn.modprobe=${opts.modprobe.join(',')}` : ''}`,
  ];
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let output = '';
    let timedOut = false;
    const kill = () => child.kill('SIGKILL');
    const onData = (d: Buffer) => {
      const s = d.toString();
      output += s;
      opts.onOutput?.(s);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, opts.timeoutMs);
    opts.signal?.addEventListener('abort', kill, { once: true });
    const done = () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', kill);
    };
    child.on('error', (e) => {
      done();
      rmSync(out, { recursive: true, force: true });
      reject(e);
    });
    child.on('close', () => {
      done();
      const files = new Map<string, string>();
      for (const f of readdirSync(out)) files.set(f, readFileSync(join(out, f), 'utf8'));
      rmSync(out, { recursive: true, force: true });
      const rcText = files.get('rc')?.trim();
      const rc = rcText !== undefined && /^\d+$/.test(rcText) ? Number(rcText) : null;
      const fail = /LSDN-GUEST-FAIL ([^\r\n]*)/.exec(output)?.[1];
      const failure = fail ?? (rc === null && !timedOut ? `the guest stopped without the job's status:\n${output.split('\n').slice(-15).join('\n')}` : undefined);
      resolve({ rc, console: output, timedOut, ms: Date.now() - t0, accel: accel.name, files, ...(failure !== undefined ? { failure } : {}) });
    });
  });
}
