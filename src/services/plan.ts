/**
 * Plans of address servers and sysctls (pure): the commands that create, update and delete a
 * DhcpObject, and how an actual server differs from the desired one.
 *
 * `svc` lines are run by src/services/run.ts (namespaces, files, dnsmasq, sysctl); `ip` lines
 * go into the host's iproute2 batch like every other link change.
 *
 *   create   netns add (refused when the name exists; writes the marked config first), veth (host end enslaved, marked), lo/lsdn0 up + addresses inside,
 *            write dnsmasq.conf and hosts, start dnsmasq
 *   hosts    only the dhcp-hostsfile changed (a virt came or went): write it, SIGHUP (dnsmasq
 *            rereads it; no restart, leases and RA timers are kept)
 *   restart  the options changed or dnsmasq is not running: stop, write, start
 *   recreate the namespace, veth, bridge, MTU or addresses differ: delete, then create
 *   delete   stop dnsmasq, delete the veth (both ends), delete the namespace and runtime dir
 */
import { setAlias } from '../plan/render.js';
import type { Command } from '../core/command.js';
import type { DhcpObject, SysctlObject } from '../core/objects.js';
import { SERVER_IF } from './dhcp.js';

const ip = (line: string): Command => ({ tool: 'ip', line });
const svc = (line: string, input?: string): Command => (input === undefined ? { tool: 'svc', line } : { tool: 'svc', line, input });

export function createServer(o: DhcpObject): Command[] {
  return [
    // The config (its header is the ownership mark) is written before the namespace exists, so
    // that a crash right after leaves a namespace the reader knows as lsdn's (run.ts).
    svc(`netns add ${o.name}`, o.config),
    ip(`link add name ${o.port} mtu ${o.mtu} type veth peer name ${SERVER_IF} netns ${o.name} mtu ${o.mtu}`),
    setAlias(o.port, o.alias),
    ip(`link set dev ${o.port} master ${o.bridge} ${o.up ? 'up' : 'down'}`),
    // The host takes no address from the server's router advertisements (only its virts do).
    ...(o.addresses.some((a) => a.includes(':')) ? [svc(`sysctl net.ipv6.conf.${o.bridge}.accept_ra=0`)] : []),
    svc(`ns ${o.name} link set dev lo up`),
    svc(`ns ${o.name} link set dev ${SERVER_IF} up`),
    ...o.addresses.map((a) => svc(`ns ${o.name} address add ${a} dev ${SERVER_IF}${a.includes(':') ? ' nodad' : ''}`)),
    ...writeFiles(o),
    svc(`start ${o.name}`),
  ];
}

function writeFiles(o: DhcpObject): Command[] {
  return [svc(`write ${o.name} dnsmasq.conf`, o.config), svc(`write ${o.name} hosts`, o.hosts)];
}

export function deleteServer(o: DhcpObject): Command[] {
  return [
    svc(`stop ${o.name}`),
    // Deleting one end of a veth deletes both; then the namespace is empty.
    ...(o.port ? [ip(`link del dev ${o.port}`)] : []),
    svc(`netns del ${o.name}`),
    svc(`clean ${o.name}`),
  ];
}

function fmtList(a: string[]): string {
  return a.length ? a.join(',') : '(none)';
}

/** What differs in the namespace and its veth (a recreation). */
function structuralChanges(have: DhcpObject, want: DhcpObject): string[] {
  const out: string[] = [];
  if (have.port !== want.port) out.push(`port ${have.port || '(none)'} -> ${want.port}`);
  if (have.bridge !== want.bridge) out.push(`bridge ${have.bridge || '(none)'} -> ${want.bridge}`);
  if (have.alias !== want.alias) out.push(`alias ${have.alias || '(none)'} -> ${want.alias}`);
  if (have.mtu !== want.mtu) out.push(`mtu ${have.mtu} -> ${want.mtu}`);
  if (have.up !== want.up) out.push(`up ${have.up} -> ${want.up}`);
  if (fmtList(have.addresses) !== fmtList(want.addresses)) out.push(`addresses ${fmtList(have.addresses)} -> ${fmtList(want.addresses)}`);
  return out;
}

/** The step that turns `have` into `want` (undefined: nothing to do). */
export function planServer(want: DhcpObject, have: DhcpObject | undefined):
  { action: 'create' | 'update' | 'recreate'; commands: Command[]; changes: string[] } | undefined {
  if (!have) return { action: 'create', commands: createServer(want), changes: [] };
  const structural = structuralChanges(have, want);
  if (structural.length) return { action: 'recreate', commands: [...deleteServer(have), ...createServer(want)], changes: structural };
  if (have.config !== want.config || !have.running) {
    const changes = [
      ...(have.config !== want.config ? ['dnsmasq.conf changed'] : []),
      ...(have.hosts !== want.hosts ? ['hosts changed'] : []),
      ...(!have.running ? ['dnsmasq not running'] : []),
    ];
    return { action: 'update', commands: [svc(`stop ${want.name}`), ...writeFiles(want), svc(`start ${want.name}`)], changes };
  }
  if (have.hosts !== want.hosts) {
    return { action: 'update', commands: [svc(`write ${want.name} hosts`, want.hosts), svc(`reload ${want.name}`)], changes: hostsChanges(have.hosts, want.hosts) };
  }
  return undefined;
}

function hostsChanges(have: string, want: string): string[] {
  const h = new Set(have.split('\n').filter(Boolean));
  const w = new Set(want.split('\n').filter(Boolean));
  return [...[...w].filter((l) => !h.has(l)).map((l) => `host ${l} added`), ...[...h].filter((l) => !w.has(l)).map((l) => `host ${l} removed`)];
}

/** A sysctl is set when it differs; deleting the object leaves it (other things may rely on it). */
export function planSysctl(want: SysctlObject, have: SysctlObject | undefined):
  { action: 'create' | 'update'; commands: Command[]; changes: string[] } | undefined {
  if (have?.value === want.value) return undefined;
  return {
    action: have ? 'update' : 'create',
    commands: [svc(`sysctl ${want.key}=${want.value}`)],
    changes: have ? [`${want.key} ${have.value} -> ${want.value}`] : [],
  };
}
