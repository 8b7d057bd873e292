/**
 * Test VMs: the distribution kernel and busybox initramfs that scripts/vm-assets.sh assembles
 * (cached in .cache/vm), booted with qemu inside a simulated host's namespace. The guest's
 * /init configures eth0 from the kernel command line, pings, prints LSDN-* markers and powers
 * off (see scripts/vm-assets.sh).
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { vmAccel } from '../../src/lab/clients.js';

const ROOT = new URL('../..', import.meta.url).pathname;

export interface VmAssets {
  kernel: string;
  initrd: string;
}

/** Build (or find cached) the VM assets; a string says why they cannot be had here. */
export function vmAssets(): VmAssets | string {
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).status !== 0) {
    return 'qemu-system-x86_64 is not installed (scripts/setup.sh installs qemu-system-x86)';
  }
  const r = spawnSync(join(ROOT, 'scripts/vm-assets.sh'), { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`scripts/vm-assets.sh failed (${r.status}):\n${r.stderr}${r.stdout}`);
  const dir = r.stdout.trim().split('\n').at(-1) as string;
  return { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initramfs.cpio') };
}

/** The accelerator (KVM when it works, else TCG): the lab's, src/lab/clients.ts. */
export { vmAccel } from '../../src/lab/clients.js';

export interface VmRun {
  /** Everything the guest printed on its serial console. */
  output: string;
  exitCode: number | null;
  timedOut: boolean;
  ms: number;
}

/**
 * Boot the test VM in `netns` with the given NIC arguments (lsdn's qemuNetArgs) and guest
 * command line; resolves when qemu exits (the guest powers off) or after `timeoutMs` (then the
 * VM is killed). The VM is always killed when `signal` aborts too.
 */
export function runTestVm(opts: {
  netns: string;
  assets: VmAssets;
  nicArgs: string[];
  cmdline: string;
  timeoutMs: number;
  extraArgs?: string[];
  /**
   * Called once the guest prints LSDN-DONE (give it `lsdn.wait=SECONDS` to stay up); the VM is
   * killed when it resolves. Its error, if any, is the run's.
   */
  whileUp?: () => Promise<void>;
}): Promise<VmRun> {
  const accel = vmAccel();
  const args = [
    'netns', 'exec', opts.netns, 'qemu-system-x86_64',
    ...accel.args, '-machine', 'q35', '-m', '256M', '-smp', '1',
    '-nographic', '-nodefaults', '-no-reboot', '-no-user-config', '-serial', 'stdio',
    '-kernel', opts.assets.kernel, '-initrd', opts.assets.initrd,
    '-append', `console=ttyS0 quiet panic=-1 ${opts.cmdline}`,
    ...opts.nicArgs.map((a) => (a.startsWith('virtio-net-pci') ? `${a},romfile=` : a)),
    ...(opts.extraArgs ?? []),
  ];
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let timedOut = false;
    let called = false;
    let upError: unknown;
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      if (opts.whileUp && !called && output.includes('LSDN-DONE')) {
        called = true;
        opts.whileUp().catch((e: unknown) => (upError = e)).finally(() => child.kill('SIGKILL'));
      }
    });
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (upError !== undefined) return reject(upError instanceof Error ? Object.assign(upError, { message: `${upError.message}\nguest console:\n${output}` }) : upError);
      resolve({ output: `[accel ${accel.name}]\n${output}`, exitCode: code, timedOut, ms: Date.now() - t0 });
    });
  });
}

/** The guest's LSDN-* marker lines. */
export function markers(output: string): string[] {
  // (the firmware's terminal escapes may precede the first one on its line)
  return output.split(/\r?\n/).filter((l) => l.includes('LSDN-')).map((l) => l.slice(l.indexOf('LSDN-')).trim());
}
