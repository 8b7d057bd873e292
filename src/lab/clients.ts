/**
 * The lab's VDE clients, the shell side (what they are: extension.ts). Each runs on a host
 * namespace of its own (`<prefix>-c-<name>`, built by lab.ts) as a detached process, so that
 * `lsdn lab up` can return and `lab check` / `lab down` find them again from files in the lab's
 * runtime dir, `<LSDN_RUN_DIR or /run/lsdn>/lab/<prefix>/`:
 *
 *   <name>.json      its processes (pid and start time, so a reused pid is never killed) and,
 *                    for vdens, the pid whose network namespace is vdens' (pings run there)
 *   <name>.log       what it printed
 *   <name>.sock      qemu: the guest's serial console (a shell: lsdn.shell=1); <name>.console its log
 *
 *   vde_plug  a tap `vde0` (MAC, MTU, addresses) made in the host namespace, then
 *             `vde_plug tap://vde0 URL`; up once its socket on the group port is bound
 *   vdens     `vdens URL sh -c SCRIPT`: vdens opens its sockets in the host namespace, then runs
 *             SCRIPT in a network (and user) namespace of its own, where SCRIPT configures vde0,
 *             writes its pid and becomes `sleep infinity`; both pids are killed at the end (vdens
 *             may hang after its command exits, and a SIGTERM to it leaves the command running)
 *   qemu      the project's test kernel and initramfs (scripts/vm-assets.sh), TCG unless KVM
 *             works, NIC `-netdev vde,sock=URL` with the cloud's MTU (`host_mtu`)
 *
 * The lab also turns checksum offload off on the simulated lsdn hosts' underlay interfaces:
 * across veths a TCP segment's checksum stays "partial" through the VXLAN encapsulation into a
 * VDE client's UDP socket, which then hands on a frame with a wrong checksum (real NICs fill it).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, closeSync, openSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Kernel } from '../kernel/exec.js';
import { LabError } from '../core/errors.js';
import { familyOf } from '../core/addr.js';
import { runDir } from '../services/dhcp.js';
import { CLIENT_IF, type LabClient } from './extension.js';
import type { LabLayout } from './layout.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/** The lab's runtime dir of client files. */
export function labStateDir(prefix: string): string {
  return join(runDir(), 'lab', prefix);
}

interface ProcRef {
  pid: number;
  /** Field 22 of /proc/PID/stat: the same pid with another start time is another process. */
  start: string;
}

interface ClientState {
  run: LabClient['run'];
  procs: ProcRef[];
  /** vdens: a process in its namespace. */
  inner?: number;
  /** qemu: the console socket. */
  console?: string;
}

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

function alive(p: ProcRef): boolean {
  return startTime(p.pid) === p.start;
}

function ref(pid: number): ProcRef {
  return { pid, start: startTime(pid) ?? '' };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n').trim();
  } catch {
    return '';
  }
}

/** Wait for `ready` (polled), failing when `gone` says the process ended or after `ms`. */
async function until(what: string, ms: number, ready: () => boolean, gone: () => boolean, log: string): Promise<void> {
  const t0 = Date.now();
  while (!ready()) {
    if (gone()) throw new LabError(`${what} exited before it was up`, tail(log).split('\n'));
    if (Date.now() - t0 > ms) throw new LabError(`${what} was not up after ${ms / 1000} s`, tail(log).split('\n'));
    await sleep(50);
  }
}

/** Is a UDP socket bound to `port` in the network namespace of `pid`? */
function udpBound(pid: number, port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  return ['udp', 'udp6'].some((f) => {
    try {
      return readFileSync(`/proc/${pid}/net/${f}`, 'utf8').split('\n').some((l) => l.includes(hex));
    } catch {
      return false;
    }
  });
}

// ---- qemu -----------------------------------------------------------------------------------------

/**
 * The accelerator: KVM when /dev/kvm opens and the CPU shows hardware virtualisation (a
 * /dev/kvm without vmx/svm, as in some nested VMs, hangs guests), else software emulation (TCG).
 * LSDN_VM_ACCEL=kvm|tcg overrides.
 */
export function vmAccel(): { args: string[]; name: string } {
  const forced = process.env.LSDN_VM_ACCEL;
  let kvm = forced === 'kvm';
  if (forced === undefined && existsSync('/dev/kvm')) {
    try {
      closeSync(openSync('/dev/kvm', 'r+'));
      kvm = /\b(vmx|svm)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
    } catch {
      kvm = false;
    }
  }
  return kvm ? { args: ['-accel', 'kvm', '-cpu', 'host'], name: 'kvm' } : { args: ['-accel', 'tcg', '-cpu', 'max'], name: 'tcg' };
}

/** Version of scripts/vm-assets.sh's initramfs that runs console commands (lsdn.shell). */
const SHELL_ASSETS = 5;

/** The guest's kernel and initramfs: `LSDN_VM_CACHE` or the checkout's .cache/vm (scripts/vm-assets.sh makes them). */
export function labVmAssets(): { kernel: string; initrd: string } {
  const dir = process.env.LSDN_VM_CACHE ?? join(ROOT, '.cache/vm');
  const kernel = join(dir, 'vmlinuz');
  const initrd = join(dir, 'initramfs.cpio');
  const stamp = Number((() => {
    try {
      return readFileSync(join(dir, 'stamp'), 'utf8').trim();
    } catch {
      return '0';
    }
  })());
  if (!existsSync(kernel) || !existsSync(initrd) || stamp < SHELL_ASSETS) {
    throw new LabError(`qemu clients need the test VM (kernel and initramfs, version ${SHELL_ASSETS}) in ${dir}: run scripts/vm-assets.sh`);
  }
  return { kernel, initrd };
}

/** qemu's arguments for a client (its console: a socket and a log). */
export function qemuClientArgs(c: LabClient, assets: { kernel: string; initrd: string }, sock: string, consoleLog: string): string[] {
  return [
    '-name', `lsdn-lab-${c.name}`, ...vmAccel().args, '-machine', 'q35', '-m', '256M', '-smp', '1',
    '-nographic', '-nodefaults', '-no-reboot', '-no-user-config',
    '-chardev', `socket,id=con,path=${sock},server=on,wait=off,logfile=${consoleLog}`, '-serial', 'chardev:con',
    '-kernel', assets.kernel, '-initrd', assets.initrd,
    '-append', `console=ttyS0 quiet panic=-1 lsdn.ip=${c.ips[0] as string} lsdn.shell=1`,
    '-netdev', `vde,id=n0,sock=${c.url}`,
    '-device', `virtio-net-pci,netdev=n0,mac=${c.mac},host_mtu=${c.mtu},romfile=`,
  ];
}

/** Run one line in a guest's console shell; resolves with what it printed up to the line's end marker. */
function consoleRun(sock: string, line: string, timeoutMs: number): Promise<string> {
  const n = Math.floor(Math.random() * 1e6);
  // The end marker is computed by the guest, so the echoed input never contains it.
  const marker = `LSDN-END-${n + 1}`;
  return new Promise((resolve, reject) => {
    const s = connect(sock);
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new LabError(`guest console ${sock}: no answer after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    s.on('connect', () => s.write(`${line}; echo LSDN-END-$((${n}+1))\n`));
    s.on('data', (d: Buffer) => {
      out += d.toString();
      const at = out.indexOf(marker);
      if (at >= 0) {
        clearTimeout(timer);
        s.end();
        resolve(out.slice(0, at));
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(new LabError(`guest console ${sock}: ${e.message}`));
    });
  });
}

// ---- starting and stopping -----------------------------------------------------------------------

function statePath(prefix: string, name: string, ext: string): string {
  return join(labStateDir(prefix), `${name}.${ext}`);
}

function writeState(prefix: string, name: string, s: ClientState): void {
  writeFileSync(statePath(prefix, name, 'json'), `${JSON.stringify(s)}\n`);
}

function readState(prefix: string, name: string): ClientState {
  try {
    return JSON.parse(readFileSync(statePath(prefix, name, 'json'), 'utf8')) as ClientState;
  } catch {
    throw new LabError(`lab "${prefix}" has no running client "${name}" (no ${statePath(prefix, name, 'json')}: is the lab up?)`);
  }
}

/** The interface lines of a client host: vde_plug's tap (vdens and qemu make their own). */
export function clientTapLines(c: LabClient): string[] {
  if (c.run !== 'vde_plug') return [];
  return [
    `tuntap add dev ${CLIENT_IF} mode tap`,
    `link set ${CLIENT_IF} address ${c.mac} mtu ${c.mtu}`,
    ...c.ips.map((a) => `address add ${a} dev ${CLIENT_IF}${familyOf(a) === 6 ? ' nodad' : ''}`),
    `link set ${CLIENT_IF} up`,
  ];
}

/** vdens' command: configure vde0 in its namespace, say its pid, stay. */
function vdensScript(c: LabClient, pidFile: string): string {
  return [
    'set -e',
    'ip link set lo up',
    `ip link set ${CLIENT_IF} address ${c.mac} mtu ${c.mtu}`,
    ...c.ips.map((a) => `ip addr add ${a} dev ${CLIENT_IF}${familyOf(a) === 6 ? ' nodad' : ''}`),
    `ip link set ${CLIENT_IF} up`,
    `echo $$ > ${pidFile}.tmp && mv ${pidFile}.tmp ${pidFile}`,
    'exec sleep infinity',
  ].join('\n');
}

export interface ClientStartOptions {
  /** How long a qemu guest may take to boot to its console shell (default 120 s; TCG boots in 8-22 s). */
  vmBootMs?: number;
  onProgress?: (msg: string) => void;
}

async function startClient(layout: LabLayout, c: LabClient, opts: ClientStartOptions): Promise<void> {
  const ns = layout.clientNs.get(c.name) as string;
  const log = statePath(layout.prefix, c.name, 'log');
  const k = new Kernel({ netns: ns });
  const t0 = Date.now();
  if (c.run === 'vde_plug') {
    const pid = await k.daemon('vde_plug', [`tap://${CLIENT_IF}`, c.url], log);
    const p = ref(pid);
    writeState(layout.prefix, c.name, { run: c.run, procs: [p] });
    await until(`vde_plug of client ${c.name}`, 5000, () => udpBound(pid, c.cloud.port), () => !alive(p), log);
  } else if (c.run === 'vdens') {
    const pidFile = statePath(layout.prefix, c.name, 'inner');
    const pid = await k.daemon('vdens', [c.url, '/bin/sh', '-c', vdensScript(c, pidFile)], log);
    const p = ref(pid);
    writeState(layout.prefix, c.name, { run: c.run, procs: [p] });
    await until(`vdens of client ${c.name}`, 5000, () => existsSync(pidFile), () => !alive(p), log);
    const inner = Number(readFileSync(pidFile, 'utf8').trim());
    writeState(layout.prefix, c.name, { run: c.run, procs: [p, ref(inner)], inner });
  } else {
    const assets = labVmAssets();
    const sock = statePath(layout.prefix, c.name, 'sock');
    if (sock.length > 100) throw new LabError(`the console socket path of client ${c.name} is too long for a unix socket: ${sock}`);
    const consoleLog = statePath(layout.prefix, c.name, 'console');
    const pid = await k.daemon('qemu-system-x86_64', qemuClientArgs(c, assets, sock, consoleLog), log);
    const p = ref(pid);
    writeState(layout.prefix, c.name, { run: c.run, procs: [p], console: sock });
    await until(`qemu guest of client ${c.name}`, opts.vmBootMs ?? 120_000, () => tail(consoleLog, 200).includes('LSDN-READY'), () => !alive(p), existsSync(consoleLog) ? consoleLog : log);
  }
  opts.onProgress?.(`client ${c.name} (${c.run}) up in ${Date.now() - t0} ms`);
}

/**
 * Start the lab's VDE clients (their hosts exist: lab.ts), after checksum offload is off on the
 * lsdn hosts' underlay interfaces. Fails (the caller removes the lab) when one does not come up.
 */
export async function labClientsUp(layout: LabLayout, physIfs: [ns: string, dev: string][], opts: ClientStartOptions = {}): Promise<void> {
  const clients = layout.lab?.clients ?? [];
  if (!clients.length) return;
  mkdirSync(labStateDir(layout.prefix), { recursive: true });
  await Promise.all(physIfs.map(([ns, dev]) => new Kernel({ netns: ns }).run('ethtool', ['-K', dev, 'tx', 'off'], { mutates: true })));
  await Promise.all(clients.map((c) => startClient(layout, c, opts)));
}

/** Kill the processes of a lab's clients (from its runtime dir; after a crash too) and remove the dir. */
export async function labClientsDown(prefix: string): Promise<number> {
  const dir = labStateDir(prefix);
  if (!existsSync(dir)) return 0;
  let killed = 0;
  for (const f of readdirSync(dir).filter((e) => e.endsWith('.json'))) {
    let s: ClientState;
    try {
      s = JSON.parse(readFileSync(join(dir, f), 'utf8')) as ClientState;
    } catch {
      continue;
    }
    // The command inside vdens first, then vdens; only processes that are still the ones started.
    for (const p of [...s.procs].reverse()) {
      if (!alive(p)) continue;
      try {
        process.kill(p.pid, 'SIGKILL');
        killed++;
      } catch {
        // gone meanwhile
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return killed;
}

/** Where a client's pings run: its script's output (the lab's ping matrix, check.ts). */
export async function clientShell(layout: LabLayout, c: LabClient, script: string, opts: { timeoutMs: number }): Promise<string> {
  const s = readState(layout.prefix, c.name);
  if (c.run === 'vde_plug') return (await new Kernel({ netns: layout.clientNs.get(c.name), timeoutMs: opts.timeoutMs }).run('sh', ['-c', script])).stdout;
  if (c.run === 'vdens') {
    if (s.inner === undefined || !alive(s.procs[1] ?? { pid: s.inner, start: '' })) throw new LabError(`vdens of client ${c.name} is not running`);
    return (await new Kernel({ timeoutMs: opts.timeoutMs }).run('nsenter', ['-t', String(s.inner), '-n', 'sh', '-c', script])).stdout;
  }
  // qemu: the script (one line) on the guest's console.
  if (script.includes('\n')) throw new Error('internal: a guest console takes one line');
  return consoleRun(s.console as string, script, opts.timeoutMs);
}
