/**
 * Address serving (pure): the per-(host, net) address server of a net with a served subnet.
 *
 * Like OpenStack Neutron's qdhcp-<net> namespaces, each server runs in a network namespace of
 * its own: an owned veth pair joins it to the net's bridge (host end `lsd-<hash>`, a port of
 * the bridge, alias `lsdn:<ctx>:net:<net>:dhcp`; the other end `lsdn0` inside, carrying the
 * server's addresses), and a dnsmasq inside answers DHCPv4 for the local virts of the net
 * (one `dhcp-host` line per virt: exactly its address, no dynamic pool) and sends IPv6 router
 * advertisements (SLAAC) for the net's IPv6 prefix. The host itself has no address in
 * tenants' subnets, and nets with overlapping subnets on one host just work.
 *
 * Files live in a runtime dir per server, `<LSDN_RUN_DIR or /run/lsdn>/dhcp/<netns>/`:
 * dnsmasq.conf (options, with a header the reader parses back), hosts (the dhcp-hostsfile,
 * which dnsmasq rereads on SIGHUP, so that adding or removing a virt needs no restart),
 * dnsmasq.pid, leases and log.
 */
import ipaddr from 'ipaddr.js';
import type { Net, Netmodel, Phys, Subnet, Virt } from '../model/netmodel.js';
import { normalizeMac, parsePrefix } from '../core/addr.js';
import type { DhcpObject } from '../core/objects.js';
import { netAlias, ownedIfname } from '../core/names.js';
import { assignAddresses, serverAddress, type VirtAddressing } from '../ipam/ipam.js';
import { serverNsName, SERVER_PORT_KIND, SERVER_ALIAS_PART } from '../core/names.js';
import { formatHeader } from '../kinds/dhcp.js';
import { SERVER_IF } from '../core/names.js';

/** DHCPv4 lease time. */
export const LEASE_TIME = '1h';
/** Router advertisement interval in seconds. */
export const RA_INTERVAL = 60;

/** The runtime dir of all servers (`LSDN_RUN_DIR` overrides it, like LSDN_LOCK_DIR). */
export function runDir(): string {
  return process.env.LSDN_RUN_DIR ?? '/run/lsdn';
}

/** The runtime dir of one server (under `root`, default: runDir()). */
export function serverDir(ns: string, root: string = runDir()): string {
  return `${root}/dhcp/${ns}`;
}

/** The run dir the compiler writes into configs when the host facts name none. */
export const DEFAULT_RUN_DIR = '/run/lsdn';

/** Is the subnet served (DHCPv4 / router advertisements)? */
export function served(s: Subnet | undefined): s is Subnet {
  return s !== undefined && s.spec.serve !== false && parsePrefix(s.spec.prefix) !== undefined;
}

/** Does the net serve addresses at all (DHCPv4 or router advertisements)? */
export function servesAddresses(net: Net): boolean {
  return served(net.ipv4) || served(net.ipv6);
}

function subnetParts(s: Subnet): { net: string; len: number; mask: string } {
  const p = parsePrefix(s.spec.prefix)!;
  const cidr = `${p.ip}/${p.len}`;
  if (p.family === 4) {
    return { net: ipaddr.IPv4.networkAddressFromCIDR(cidr).toString(), len: p.len, mask: ipaddr.IPv4.subnetMaskFromPrefixLength(p.len).toString() };
  }
  return { net: ipaddr.IPv6.networkAddressFromCIDR(cidr).toString(), len: p.len, mask: '' };
}

export interface ServerInputs {
  context: string;
  net: Net;
  ns: string;
  /** The host tag of the namespace's name (recorded in the header). */
  hostTag: string;
  port: string;
  bridge: string;
  alias: string;
  mtu: number;
  /** Local virts of the net (sorted by id) with their addresses. */
  virts: { virt: Virt; addressing: VirtAddressing | undefined }[];
  /** Runtime dir root (a host fact, so that compilation stays pure). */
  runDir: string;
}

/** The server's addresses on `lsdn0` ("ip/len"), v4 first. */
export function serverAddresses(net: Net): string[] {
  const out: string[] = [];
  for (const s of [net.ipv4, net.ipv6]) {
    if (!served(s)) continue;
    const { len } = subnetParts(s);
    out.push(`${serverAddress(s)}/${len}`);
  }
  return out;
}

/** dnsmasq.conf of one server (pure; deterministic). */
export function dnsmasqConfig(i: ServerInputs, addresses: string[]): string {
  const dir = serverDir(i.ns, i.runDir);
  const lines = [
    ...formatHeader({ host: i.hostTag, alias: i.alias, port: i.port, bridge: i.bridge, addresses }),
    'port=0',
    'bind-interfaces',
    `interface=${SERVER_IF}`,
    'no-resolv',
    'no-hosts',
    `pid-file=${dir}/dnsmasq.pid`,
    `log-facility=${dir}/log`,
  ];
  const v4 = i.net.ipv4;
  if (served(v4)) {
    const { net, mask } = subnetParts(v4);
    lines.push(
      `dhcp-range=${net},static,${mask},${LEASE_TIME}`,
      `dhcp-hostsfile=${dir}/hosts`,
      `dhcp-leasefile=${dir}/leases`,
      'dhcp-authoritative',
      'log-dhcp',
      // Without a gateway, no router at all (dnsmasq would announce itself).
      `dhcp-option=option:router${v4.spec.gateway ? `,${v4.spec.gateway}` : ''}`,
      `dhcp-option=option:dns-server${v4.spec.dns?.length ? `,${v4.spec.dns.filter((d) => !d.includes(':')).join(',')}` : ''}`,
      `dhcp-option=option:mtu,${i.mtu}`,
    );
  }
  const v6 = i.net.ipv6;
  if (served(v6)) {
    const { net, len } = subnetParts(v6);
    lines.push(
      'enable-ra',
      `dhcp-range=${net},ra-stateless,${len}`,
      // Router lifetime 0: the RAs come from the server namespace, which routes nothing, and no
      // host routes IPv6 for its virts (public nets route IPv4 only): no dead default route.
      `ra-param=${SERVER_IF},mtu:${i.mtu},${RA_INTERVAL},0`,
    );
    const dns6 = v6.spec.dns?.filter((d) => d.includes(':')) ?? [];
    if (dns6.length) lines.push(`dhcp-option=option6:dns-server,${dns6.map((d) => `[${d}]`).join(',')}`);
  }
  return lines.join('\n') + '\n';
}

/** The dhcp-hostsfile: one `MAC,IP` line per local virt with a MAC and an IPv4 address, sorted. */
export function dnsmasqHosts(i: ServerInputs): string {
  const lines: string[] = [];
  for (const { virt, addressing } of i.virts) {
    const mac = typeof virt.mac === 'string' ? normalizeMac(virt.mac) : undefined;
    const v4 = addressing?.v4;
    if (!mac || !v4) continue;
    lines.push(`${mac},${v4.ip}`);
  }
  return lines.sort().join('\n') + (lines.length ? '\n' : '');
}

/** Does a net get a server on `local`: a served subnet and a local virt. */
export function needsServer(net: Net, local: Phys): boolean {
  if (!servesAddresses(net)) return false;
  return [...net.virts.values()].some((v) => v.phys === local && v.if);
}

/** The server object of `net` on `local` (undefined when it needs none). */
export function compileServer(
  model: Netmodel, net: Net, local: Phys,
  opts: { hostTag: string; bridge: string; mtu: number; addresses?: Map<string, VirtAddressing>; runDir?: string },
): DhcpObject | undefined {
  if (!needsServer(net, local)) return undefined;
  const addressing = opts.addresses ?? assignAddresses(model);
  const byId = (a: Virt, b: Virt) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const inputs: ServerInputs = {
    context: model.name,
    net,
    ns: serverNsName(opts.hostTag, model.name, net.name),
    hostTag: opts.hostTag,
    port: ownedIfname(model.name, SERVER_PORT_KIND, net.name),
    bridge: opts.bridge,
    alias: netAlias(model.name, net.name, SERVER_ALIAS_PART),
    mtu: opts.mtu,
    virts: [...net.virts.values()].filter((v) => v.phys === local && v.if).sort(byId).map((virt) => ({ virt, addressing: addressing.get(virt.id) })),
    runDir: opts.runDir ?? DEFAULT_RUN_DIR,
  };
  const addresses = serverAddresses(net);
  return {
    kind: 'dhcp',
    name: inputs.ns,
    port: inputs.port,
    bridge: inputs.bridge,
    alias: inputs.alias,
    mtu: inputs.mtu,
    up: true,
    addresses,
    config: dnsmasqConfig(inputs, addresses),
    hosts: dnsmasqHosts(inputs),
    running: true,
  };
}

/** The address servers of the local nets (one per net with a served subnet and a local virt). */
export function compileServers(
  model: Netmodel, local: Phys, hostTag: string, nets: readonly { net: Net; bridge: string; mtu: number }[], addresses: Map<string, VirtAddressing>, runDir: string = DEFAULT_RUN_DIR,
): DhcpObject[] {
  const out: DhcpObject[] = [];
  for (const n of nets) {
    const s = compileServer(model, n.net, local, { hostTag, bridge: n.bridge, mtu: n.mtu, addresses, runDir });
    if (s) out.push(s);
  }
  return out;
}
