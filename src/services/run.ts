/**
 * Runs `svc` plan lines (src/services/plan.ts): network namespaces of address servers, their
 * runtime files, dnsmasq processes and sysctls. Tools still run only through a Kernel (and so
 * are counted); consecutive `ns NS ...` lines become one `ip -n NS -force -batch` process.
 *
 *   netns add|del NS        ip netns add|del (del: a missing namespace is fine)
 *   ns NS <ip batch line>   iproute2 inside the server's namespace
 *   write NS FILE           the command's input -> <run dir>/dhcp/NS/FILE (0644)
 *   start NS                ip netns exec NS dnsmasq --conf-file=... (dnsmasq daemonizes)
 *   stop NS                 SIGTERM the server's dnsmasq (checked by its command line), wait
 *   reload NS               SIGHUP it (rereads the dhcp-hostsfile)
 *   clean NS                remove the runtime dir
 *   sysctl KEY=VALUE        sysctl -w in the host's namespace
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { Kernel, KernelError } from '../kernel/exec.js';
import type { Command } from '../plan/render.js';
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

async function stop(ns: string): Promise<void> {
  const pid = serverPid(ns);
  if (pid === undefined) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 40 && !gone(pid); i++) await new Promise((r) => setTimeout(r, 50));
  if (!gone(pid)) process.kill(pid, 'SIGKILL');
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
            if (ns === 'add') await k.run('ip', ['netns', 'add', name], { mutates: true });
            else if (existsSync(`/run/netns/${name}`)) await k.run('ip', ['netns', 'del', name], { mutates: true });
          } finally {
            count(k);
          }
          break;
        }
        case 'write': {
          const dir = serverDir(ns);
          mkdirSync(dir, { recursive: true, mode: 0o755 });
          const file = `${dir}/${rest[0] ?? ''}`;
          writeFileSync(file, cmds[i]!.input ?? '');
          // dnsmasq drops privileges: it must still read its hosts file on SIGHUP.
          chmodSync(file, 0o644);
          chmodSync(dir, 0o755);
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
          await stop(ns);
          kernel.stats.operations++;
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
