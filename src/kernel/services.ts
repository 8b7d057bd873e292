/**
 * Runs the service steps of a plan (typed ServiceOps, src/core/plan.ts; made by src/kinds/dhcp.ts
 * and sysctl.ts): network namespaces of address servers, their runtime files, dnsmasq processes
 * and sysctls. Tools still run only through a Kernel (and so are counted); consecutive `ns NS
 * ...` steps become one `ip -n NS -force -batch` process. As printed:
 *
 *   netns add NS            fails when /run/netns/NS exists; else writes the input (the marked
 *                           dnsmasq.conf) into the runtime dir, then ip netns add
 *   netns del NS            ip netns del (a missing namespace is fine)
 *   ns NS <ip batch line>   iproute2 inside the server's namespace
 *   write NS FILE           the command's input -> <run dir>/dhcp/NS/FILE (0644)
 *   start NS                ip netns exec NS dnsmasq --conf-file=... (dnsmasq daemonizes)
 *   stop NS                 SIGTERM the server's dnsmasq (checked by its command line), wait
 *   reload NS               SIGHUP it (rereads the dhcp-hostsfile)
 *   clean NS                remove the runtime dir
 *   sysctl KEY=VALUE        sysctl -w in the host's namespace
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { Kernel } from './exec.js';
import { KernelError } from '../core/errors.js';
import { isServiceCommand, type Command, type ServiceCommand } from '../core/plan.js';
import { serverDir } from '../services/dhcp.js';

export interface ServiceFailure {
  /** Index of the failed command in the list given. */
  index: number;
  message: string;
}

const CONF = 'dnsmasq.conf';
const PID = 'dnsmasq.pid';

/** argv fragment that identifies a server's dnsmasq in /proc/PID/cmdline. */
function confArg(ns: string): string {
  return `--conf-file=${serverDir(ns)}/${CONF}`;
}

/** The pid of the server's dnsmasq when it is alive and really that dnsmasq (pid file + command line). */
export function serverPid(ns: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(`${serverDir(ns)}/${PID}`, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (!/dnsmasq$/.test(argv[0] ?? '') || !argv.includes(confArg(ns))) return undefined;
  } catch {
    return undefined;
  }
  return pid;
}

function gone(pid: number): boolean {
  try {
    // A zombie (exited, not yet reaped) counts as gone.
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

function writeRuntimeFile(ns: string, name: string, text: string): void {
  const dir = serverDir(ns);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const file = `${dir}/${name}`;
  writeFileSync(file, text);
  // dnsmasq drops privileges: it must still read its hosts file on SIGHUP.
  chmodSync(file, 0o644);
  chmodSync(dir, 0o755);
}

function isDnsmasq(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'dnsmasq';
  } catch {
    return false;
  }
}

/**
 * Stop the server's dnsmasq: the one its pid file names, and, when that cannot be verified
 * (pid file lost or stale) and the namespace exists, every dnsmasq inside the namespace
 * (`ip netns pids`: by /proc/PID/ns/net), so that deleting the namespace leaves none running.
 */
async function stop(kernel: Kernel, ns: string, count: (k: Kernel) => void): Promise<void> {
  const pids: number[] = [];
  const own = serverPid(ns);
  if (own !== undefined) pids.push(own);
  else if (existsSync(`/run/netns/${ns}`)) {
    const k = new Kernel();
    try {
      const { stdout } = await k.run('ip', ['netns', 'pids', ns]);
      pids.push(...stdout.split('\n').map(Number).filter((p) => Number.isInteger(p) && p > 0 && isDnsmasq(p)));
    } finally {
      count(k);
    }
  }
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  for (const pid of pids) {
    for (let i = 0; i < 40 && !gone(pid); i++) await new Promise((r) => setTimeout(r, 50));
    if (!gone(pid)) process.kill(pid, 'SIGKILL');
  }
  kernel.stats.operations++;
}

/** A failed service step: the kernel-boundary error, with the step's line as its batch line. */
function stepError(c: Command, message: string, command: string[] = [], stderr = ''): KernelError {
  return new KernelError(message, command, stderr, null, undefined, c.line);
}

/**
 * Run service commands in order; returns the failed ones (by index) with the error's message.
 * Every failure is a KernelError (what ran, the step's line, what it answered).
 */
export async function runServiceCommands(kernel: Kernel, cmds: Command[]): Promise<ServiceFailure[]> {
  const failures: ServiceFailure[] = [];
  const count = (k: Kernel) => {
    kernel.stats.processes += k.stats.processes;
    kernel.stats.operations += k.stats.operations;
  };
  let i = 0;
  while (i < cmds.length) {
    const c = cmds[i]!;
    try {
      if (!isServiceCommand(c)) throw stepError(c, `not a service step: "${c.line}"`);
      const s = c.service;
      switch (s.op) {
        case 'ns': {
          // One batch for the consecutive lines of one namespace.
          let end = i;
          const inNs = (x: Command | undefined) => x !== undefined && isServiceCommand(x) && x.service.op === 'ns' && x.service.ns === s.ns;
          while (end < cmds.length && inNs(cmds[end])) end++;
          const lines = cmds.slice(i, end).map((x) => ((x as ServiceCommand).service as { line: string }).line);
          const k = new Kernel({ netns: s.ns });
          try {
            for (const f of await k.batchForce('ip', lines)) failures.push({ index: i + f.line - 1, message: f.message });
          } catch (e) {
            for (let j = i; j < end; j++) failures.push({ index: j, message: (e as Error).message });
          }
          count(k);
          i = end;
          continue;
        }
        case 'netns-add':
        case 'netns-del': {
          const k = new Kernel();
          try {
            if (s.op === 'netns-add') {
              // Never adopt a namespace lsdn did not create (the reader would take the marker as ownership).
              if (existsSync(`/run/netns/${s.ns}`)) throw stepError(c, `network namespace ${s.ns} exists but is not lsdn's; remove it (ip netns del ${s.ns})`);
              if (c.input !== undefined) writeRuntimeFile(s.ns, CONF, c.input ?? '');
              await k.run('ip', ['netns', 'add', s.ns], { mutates: true });
            } else if (existsSync(`/run/netns/${s.ns}`)) await k.run('ip', ['netns', 'del', s.ns], { mutates: true });
          } finally {
            count(k);
          }
          break;
        }
        case 'write': {
          writeRuntimeFile(s.ns, s.file, c.input ?? '');
          kernel.stats.operations++;
          break;
        }
        case 'start': {
          rmSync(`${serverDir(s.ns)}/${PID}`, { force: true });
          const k = new Kernel({ netns: s.ns });
          try {
            await k.run('dnsmasq', [confArg(s.ns)], { mutates: true });
          } finally {
            count(k);
          }
          break;
        }
        case 'stop':
          await stop(kernel, s.ns, count);
          break;
        case 'reload': {
          const pid = serverPid(s.ns);
          if (pid === undefined) throw stepError(c, `dnsmasq of ${s.ns} is not running`, ['kill', '-HUP']);
          process.kill(pid, 'SIGHUP');
          kernel.stats.operations++;
          break;
        }
        case 'clean':
          rmSync(serverDir(s.ns), { recursive: true, force: true });
          kernel.stats.operations++;
          break;
        case 'sysctl':
          await kernel.run('sysctl', ['-q', '-w', `${s.key}=${s.value}`], { mutates: true });
          break;
      }
    } catch (e) {
      // Files and signals fail with node's errors: they cross the same boundary.
      const err = e instanceof KernelError ? e : stepError(c, (e as Error).message);
      failures.push({ index: i, message: err.message });
    }
    i++;
  }
  return failures;
}
