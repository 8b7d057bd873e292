/**
 * Address servers (DhcpObject, compiled by src/services/dhcp.ts): a network namespace, an owned
 * veth into the net's bridge, a dnsmasq with its files. Encoded as typed service steps (`svc`
 * lines: run by the shell's service runner, src/kernel/services.ts) and `ip` lines; decoded from
 * the runtime dir's files (dnsmasq.conf begins with a header naming veth, bridge and
 * addresses), the veth as `ip` lists it and whether dnsmasq runs.
 *
 *   create   netns add (refused when the name exists; writes the marked config first), veth (host end enslaved, marked), lo/lsdn0 up + addresses inside,
 *            write dnsmasq.conf and hosts, start dnsmasq
 *   hosts    only the dhcp-hostsfile changed (a virt came or went): write it, SIGHUP (dnsmasq
 *            rereads it; no restart, leases and RA timers are kept)
 *   restart  the options changed or dnsmasq is not running: stop, write, start
 *   recreate the namespace, veth, bridge, MTU or addresses differ: delete, then create
 *   delete   stop dnsmasq, delete the veth (both ends), delete the namespace and runtime dir
 */
import type { DhcpObject } from '../core/objects.js';
import { SERVER_IF } from '../core/names.js';
import { Phase, serviceCommand, type Command, type ServiceOp, type StepAction } from '../core/plan.js';
import type { ObjectKind } from './kind.js';
import { setAlias } from './link.js';
import { iprouteArg as a } from './escape.js';

const ip = (line: string): Command => ({ tool: 'ip', line });
const svc = (s: ServiceOp, input?: string): Command => serviceCommand(s, input);

// ---- encoding ---------------------------------------------------------------------------------

export function createServer(o: DhcpObject): Command[] {
  return [
    // The config (its header is the ownership mark) is written before the namespace exists, so
    // that a crash right after leaves a namespace the reader knows as lsdn's (run.ts).
    svc({ op: 'netns-add', ns: o.name }, o.config),
    ip(`link add name ${a(o.port)} mtu ${o.mtu} type veth peer name ${SERVER_IF} netns ${a(o.name)} mtu ${o.mtu}`),
    setAlias(o.port, o.alias),
    ip(`link set dev ${a(o.port)} master ${a(o.bridge)} ${o.up ? 'up' : 'down'}`),
    // The host takes no address from the server's router advertisements (only its virts do).
    ...(o.addresses.some((a) => a.includes(':')) ? [svc({ op: 'sysctl', key: `net.ipv6.conf.${o.bridge}.accept_ra`, value: '0' })] : []),
    svc({ op: 'ns', ns: o.name, line: 'link set dev lo up' }),
    svc({ op: 'ns', ns: o.name, line: `link set dev ${SERVER_IF} up` }),
    ...o.addresses.map((ad) => svc({ op: 'ns', ns: o.name, line: `address add ${a(ad)} dev ${SERVER_IF}${ad.includes(':') ? ' nodad' : ''}` })),
    ...writeFiles(o),
    svc({ op: 'start', ns: o.name }),
  ];
}

function writeFiles(o: DhcpObject): Command[] {
  return [svc({ op: 'write', ns: o.name, file: 'dnsmasq.conf' }, o.config), svc({ op: 'write', ns: o.name, file: 'hosts' }, o.hosts)];
}

export function deleteServer(o: DhcpObject): Command[] {
  return [
    svc({ op: 'stop', ns: o.name }),
    // Deleting one end of a veth deletes both; then the namespace is empty.
    ...(o.port ? [ip(`link del dev ${a(o.port)}`)] : []),
    svc({ op: 'netns-del', ns: o.name }),
    svc({ op: 'clean', ns: o.name }),
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
  { action: StepAction; commands: Command[]; changes: string[] } | undefined {
  if (!have) return { action: 'create', commands: createServer(want), changes: [] };
  const structural = structuralChanges(have, want);
  if (structural.length) return { action: 'recreate', commands: [...deleteServer(have), ...createServer(want)], changes: structural };
  if (have.config !== want.config || !have.running) {
    const changes = [
      ...(have.config !== want.config ? ['dnsmasq.conf changed'] : []),
      ...(have.hosts !== want.hosts ? ['hosts changed'] : []),
      ...(!have.running ? ['dnsmasq not running'] : []),
    ];
    return { action: 'update', commands: [svc({ op: 'stop', ns: want.name }), ...writeFiles(want), svc({ op: 'start', ns: want.name })], changes };
  }
  if (have.hosts !== want.hosts) {
    return { action: 'update', commands: [svc({ op: 'write', ns: want.name, file: 'hosts' }, want.hosts), svc({ op: 'reload', ns: want.name })], changes: hostsChanges(have.hosts, want.hosts) };
  }
  return undefined;
}

function hostsChanges(have: string, want: string): string[] {
  const h = new Set(have.split('\n').filter(Boolean));
  const w = new Set(want.split('\n').filter(Boolean));
  return [...[...w].filter((l) => !h.has(l)).map((l) => `host ${l} added`), ...[...h].filter((l) => !w.has(l)).map((l) => `host ${l} removed`)];
}

// ---- decoding ---------------------------------------------------------------------------------

/** Header lines of dnsmasq.conf: what the reader needs to rebuild the object without processes. */
const HEADER = '# lsdn address server';

export interface ServerHeader {
  /** The host tag that named the namespace (serverHostTag): who may read it back as its own. */
  host?: string;
  alias: string;
  port: string;
  bridge: string;
  addresses: string[];
}

export function formatHeader(h: ServerHeader): string[] {
  return [HEADER, ...(h.host !== undefined ? [`# host ${h.host}`] : []), `# alias ${h.alias}`, `# port ${h.port}`, `# bridge ${h.bridge}`, `# addresses ${h.addresses.join(' ')}`];
}

/** Parse the header back (undefined: not a file lsdn wrote). */
export function parseHeader(config: string): ServerHeader | undefined {
  const lines = config.split('\n');
  if (lines[0] !== HEADER) return undefined;
  const get = (k: string) => lines.find((l) => l.startsWith(`# ${k} `))?.slice(k.length + 3) ?? (lines.includes(`# ${k}`) ? '' : undefined);
  const alias = get('alias');
  const port = get('port');
  const bridge = get('bridge');
  const addresses = get('addresses');
  if (alias === undefined || port === undefined || bridge === undefined || addresses === undefined) return undefined;
  const host = get('host');
  return { ...(host !== undefined ? { host } : {}), alias, port, bridge, addresses: addresses.split(' ').filter(Boolean) };
}

/** What the reader knows of the host end of a server's veth (a link `ip addr show` listed). */
export interface PortFact {
  name: string;
  mtu: number;
  up: boolean;
  master?: string;
  alias?: string;
}

/**
 * A server as the reader found it: its runtime files, its veth's host end, whether its
 * namespace exists and its dnsmasq runs. A server whose namespace is gone is an empty shell, to
 * be deleted or recreated.
 */
export function serverFromKernel(r: { ns: string; config: string; hosts: string; port?: PortFact; present: boolean; running: boolean }): DhcpObject {
  const header = parseHeader(r.config);
  return {
    kind: 'dhcp',
    name: r.ns,
    port: r.port?.name ?? '',
    bridge: r.port?.master ?? '',
    alias: r.port?.alias ?? '',
    mtu: r.port?.mtu ?? 0,
    up: r.port?.up ?? false,
    addresses: r.present ? (header?.addresses ?? []) : [],
    config: r.present ? r.config : '',
    hosts: r.present ? r.hosts : '',
    running: r.running,
  };
}

export const DHCP: ObjectKind<DhcpObject> = {
  kind: 'dhcp',
  hangsOn: (o) => [o.bridge],
  // A new server's veth name taken by a link lsdn does not own (not even by a server it reads).
  blocked: (o, p) =>
    !p.actual.get(`dhcp ${o.name}`) && p.facts.links?.has(o.port)
      ? `interface ${o.port} exists but is not marked as lsdn's (alias "${o.alias}" missing); remove it`
      : p.dep(o.bridge, 'bridge'),
  remove(have, p) {
    p.add(Phase.DeleteLinks, 'delete', have, deleteServer(have));
  },
  converge(want, have, found, p) {
    // A server whose bridge is recreated lost its port: it is recreated too.
    const old = found?.kind === 'dhcp' ? (have ? found : { ...found, bridge: '' }) : undefined;
    const s = planServer(want, old);
    if (s) p.add(Phase.Services, s.action, want, s.commands, { changes: s.changes });
  },
};
