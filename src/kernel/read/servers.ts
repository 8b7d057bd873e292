/**
 * Reading address servers and sysctls back (decoded by src/kinds/dhcp.ts and sysctl.ts), without a process per server: the namespaces are
 * the entries of /run/netns, a server's options its runtime dir's files (dnsmasq.conf starts
 * with a header naming its veth, bridge and addresses), its veth host end a link the host's
 * `ip addr show` already listed, and "running" a pid file whose /proc/PID/cmdline is this
 * server's dnsmasq and whose network namespace is the server's. So `status` shows a dead
 * dnsmasq or a changed file as drift, and apply repairs it.
 */
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import type { Kernel } from '../exec.js';
import type { DhcpObject, SysctlObject } from '../../core/objects.js';
import { isServerNsName, parseAlias, serverHostTag, serverNsName } from '../../core/names.js';
import { parseHeader, serverFromKernel, type PortFact } from '../../kinds/dhcp.js';
import { sysctlsFromKernel } from '../../kinds/sysctl.js';
import { runDir, serverDir } from '../../services/dhcp.js';
import { serverPid } from '../services.js';

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function netnsInode(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

/** Is the process in the namespace mounted at /run/netns/NS? */
function inNamespace(pid: number, ns: string): boolean {
  const want = netnsInode(`/run/netns/${ns}`);
  try {
    const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`));
    return want !== undefined && m !== null && Number(m[1]) === want;
  } catch {
    return false;
  }
}

/**
 * The address servers of this host (of one context, when given). `ports`: owned links that are
 * server veth host ends (isServerPort), by name.
 */
export function readServers(kernel: Kernel, context: string | undefined, ports: Map<string, PortFact>): DhcpObject[] {
  let entries = new Set<string>();
  try {
    entries = new Set(readdirSync('/run/netns'));
  } catch {
    // no namespace at all
  }
  const tag = context !== undefined ? serverHostTag(kernel.netns, context) : kernel.netns;
  const candidates = new Set<string>();
  const isCandidate = (e: string) => (tag !== undefined ? isServerNsName(e, tag) : /^lsdn-.+-d[0-9a-f]{8}$/.test(e));
  for (const e of entries) if (isCandidate(e)) candidates.add(e);
  // A runtime dir whose namespace is gone (a crash between `netns del` and `clean`, or an
  // external `ip netns del`) is still a server to delete.
  let dirs: string[] = [];
  try {
    dirs = readdirSync(`${runDir()}/dhcp`);
  } catch {
    // no runtime dir
  }
  for (const d of dirs) if (isCandidate(d)) candidates.add(d);
  // A veth whose namespace is gone (or not yet listed) still names its server.
  const portByNs = new Map<string, PortFact>();
  for (const p of ports.values()) {
    const a = parseAlias(p.alias ?? '');
    if (!a?.net || (context !== undefined && a.context !== context)) continue;
    const ns = serverNsName(serverHostTag(kernel.netns, a.context), a.context, a.net);
    portByNs.set(ns, p);
    candidates.add(ns);
  }
  const out: DhcpObject[] = [];
  for (const ns of [...candidates].sort()) {
    const dir = serverDir(ns);
    const config = readText(`${dir}/dnsmasq.conf`) ?? '';
    const header = parseHeader(config);
    const byPort = portByNs.get(ns);
    const alias = byPort?.alias ?? header?.alias;
    // Not lsdn's (no header, no marked veth), or another context's: not read, never touched.
    if (alias === undefined) continue;
    const owner = parseAlias(alias);
    if (!owner || (context !== undefined && owner.context !== context)) continue;
    // The header names the host tag that named the namespace: a server of `apply --netns X`
    // (X-d...) is not the root namespace's, even when X looks like lsdn-<context>.
    if (!byPort && header?.host !== serverHostTag(kernel.netns, owner.context)) continue;
    const port = byPort ?? (header ? ports.get(header.port) : undefined);
    // A server whose namespace is gone is read as an empty shell, to be deleted or recreated.
    const present = entries.has(ns);
    const pid = present ? serverPid(ns) : undefined;
    out.push(serverFromKernel({
      ns, config, hosts: present ? (readText(`${dir}/hosts`) ?? '') : '', ...(port ? { port } : {}), present,
      running: pid !== undefined && inNamespace(pid, ns),
    }));
  }
  return out;
}

/** Current values of sysctls in the kernel's namespace (one process for all). */
export async function readSysctls(kernel: Kernel, keys: readonly string[]): Promise<SysctlObject[]> {
  if (!keys.length) return [];
  try {
    const { stdout } = await kernel.run('sysctl', ['-n', ...keys]);
    return sysctlsFromKernel(keys, stdout);
  } catch {
    return [];
  }
}
