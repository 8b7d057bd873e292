/**
 * Runs `svc` plan lines (src/services/plan.ts): network namespaces of address servers, their
 * runtime files, dnsmasq processes and sysctls. Tools still run only through a Kernel (and so
 * are counted); consecutive `ns NS ...` lines become one `ip -n NS -force -batch` process.
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
import { Kernel } from '../kernel/exec.js';
import { KernelError } from '../core/errors.js';
import type { Command } from '../core/command.js';
import { serverDir } from './dhcp.js';

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

export async function runServiceLines(kernel: Kernel, cmds: Command[]): Promise<ServiceFailure[]> {
  const failures: ServiceFailure[] = [];
  const count = (k: Kernel) => {
    kernel.stats.processes += k.stats.processes;
    kernel.stats.operations += k.stats.operations;
  };
  let i = 0;
  while (i < cmds.length) {
    const line = cmds[i]!.line;
    const [verb, ns = '', ...rest] = line.split(' ');
    try {
      switch (verb) {
        case 'ns': {
          // One batch for the consecutive lines of one namespace.
          let end = i;
          while (end < cmds.length && cmds[end]!.line.startsWith(`ns ${ns} `)) end++;
          const lines = cmds.slice(i, end).map((c) => c.line.slice(`ns ${ns} `.length));
          const k = new Kernel({ netns: ns });
          try {
            for (const f of await k.batchForce('ip', lines)) failures.push({ index: i + f.line - 1, message: f.message });
          } catch (e) {
            for (let j = i; j < end; j++) failures.push({ index: j, message: (e as Error).message });
          }
          count(k);
          i = end;
          continue;
        }
        case 'netns': {
          const name = rest[0] ?? '';
          const k = new Kernel();
          try {
            if (ns === 'add') {
              // Never adopt a namespace lsdn did not create (the reader would take the marker as ownership).
              if (existsSync(`/run/netns/${name}`)) throw new Error(`network namespace ${name} exists but is not lsdn's; remove it (ip netns del ${name})`);
              if (cmds[i]!.input !== undefined) writeRuntimeFile(name, CONF, cmds[i]!.input ?? '');
              await k.run('ip', ['netns', 'add', name], { mutates: true });
            } else if (existsSync(`/run/netns/${name}`)) await k.run('ip', ['netns', 'del', name], { mutates: true });
          } finally {
            count(k);
          }
          break;
        }
        case 'write': {
          writeRuntimeFile(ns, rest[0] ?? '', cmds[i]!.input ?? '');
          kernel.stats.operations++;
          break;
        }
        case 'start': {
          rmSync(`${serverDir(ns)}/${PID}`, { force: true });
          const k = new Kernel({ netns: ns });
          try {
            await k.run('dnsmasq', [confArg(ns)], { mutates: true });
          } finally {
            count(k);
          }
          break;
        }
        case 'stop':
          await stop(kernel, ns, count);
          break;
        case 'reload': {
          const pid = serverPid(ns);
          if (pid === undefined) throw new Error(`dnsmasq of ${ns} is not running`);
          process.kill(pid, 'SIGHUP');
          kernel.stats.operations++;
          break;
        }
        case 'clean':
          rmSync(serverDir(ns), { recursive: true, force: true });
          kernel.stats.operations++;
          break;
        case 'sysctl':
          await kernel.run('sysctl', ['-q', '-w', ns], { mutates: true });
          break;
        default:
          throw new Error(`unknown service line "${line}"`);
      }
    } catch (e) {
      failures.push({ index: i, message: e instanceof KernelError ? e.message : (e as Error).message });
    }
    i++;
  }
  return failures;
}
