/**
 * The lab and address serving: virts of nets with a served subnet ask for their addresses
 * (a real DHCP client, SLAAC) instead of getting static ones, and a model with a routed (public) net
 * gets an "outside" namespace on the underlay standing for the world beyond the hosts.
 */
import { Kernel } from '../kernel/exec.js';
import type { Netmodel, Virt } from '../model/netmodel.js';
import { isNetworkType, networkType } from '../types/registry.js';
import { assignAddresses } from '../ipam/ipam.js';
import { rmSync } from 'node:fs';
import { served, servesAddresses, serverDir } from '../services/dhcp.js';
import { dhcpLease } from '../services/client.js';
import { LabError } from '../core/errors.js';
import type { LabLayout } from './lab.js';

/** The outside world of a lab (documentation range, RFC 5737). */
export const OUTSIDE_ADDR = { addr: '203.0.113.1/24', ip: '203.0.113.1', net: '203.0.113.0/24' } as const;

export interface LabAddressing {
  /** virt id -> the addresses its net's server hands it ("ip/len"): these virts ask, they get no static address. */
  planned: Map<string, string[]>;
  /** Virts that ask for an IPv4 lease (DHCP) / use SLAAC. */
  dhcp: Set<string>;
  slaac: Set<string>;
  /** `<prefix>-outside`, when the model has a public net. */
  outsideNs?: string;
}

/** Which virts ask for their addresses (a served subnet, a MAC, no static address), and what they get (pure). */
export function labAddressing(model: Netmodel, virts: Virt[], prefix: string): LabAddressing {
  const out: LabAddressing = { planned: new Map(), dhcp: new Set(), slaac: new Set() };
  // Routed nets (public) reach the outside world: the lab stands it up.
  const routed = [...model.nets.values()].some((n) => {
    const s = n.effectiveSettings();
    return s !== undefined && isNetworkType(s.type) && networkType(s.type).routed !== undefined;
  });
  if (routed) out.outsideNs = `${prefix}-outside`;
  const asking = virts.filter((v) => v.ips.length === 0 && v.mac !== undefined && servesAddresses(v.net));
  if (!asking.length) return out;
  const assigned = assignAddresses(model);
  for (const v of asking) {
    const a = assigned.get(v.id);
    const addrs: string[] = [];
    if (served(v.net.ipv4) && a?.v4) {
      addrs.push(`${a.v4.ip}/${a.v4.len}`);
      out.dhcp.add(v.id);
    }
    const slaac = served(v.net.ipv6) ? a?.v6.find((x) => x.source === 'slaac') : undefined;
    if (slaac) {
      addrs.push(`${slaac.ip}/${slaac.len}`);
      out.slaac.add(v.id);
    }
    if (addrs.length) out.planned.set(v.id, addrs);
  }
  return out;
}

/** Underlay links of the outside namespace (run in the underlay namespace, next to br0). */
export function outsideLinks(ns: string): string[] {
  return [
    `link add uo-outside master br0 type veth peer name eth0 netns ${ns}`,
    'link set uo-outside addrgenmode none',
    'link set uo-outside up',
  ];
}

/** The IPv6 addresses of eth0 in a namespace that are usable (not tentative). */
async function v6Addresses(ns: string): Promise<string[]> {
  const links = await new Kernel({ netns: ns }).json<{ addr_info?: { family?: string; local?: string; tentative?: boolean }[] }[]>(
    'ip', ['-6', 'addr', 'show', 'dev', 'eth0'],
  );
  return links.flatMap((l) => l.addr_info ?? []).filter((a) => a.family === 'inet6' && !a.tentative && a.local).map((a) => a.local as string);
}

/**
 * Run the DHCP client of every virt that asks (in parallel) and wait (bounded) for SLAAC
 * addresses; a virt that does not get exactly its planned addresses fails the lab.
 */
export async function labDhcpClients(layout: LabLayout, a: LabAddressing, timeoutMs = 15_000): Promise<void> {
  const problems: string[] = [];
  await Promise.all([...a.planned].map(async ([id, addrs]) => {
    const ns = layout.virtNs.get(id) as string;
    if (a.dhcp.has(id)) {
      const want = addrs.find((x) => !x.includes(':')) as string;
      const lease = await dhcpLease(ns);
      if (!lease) problems.push(`virt "${id}": no DHCP lease (planned ${want})`);
      else if (`${lease.ip}/${lease.mask}` !== want) problems.push(`virt "${id}": leased ${lease.ip}/${lease.mask}, planned ${want}`);
    }
    if (a.slaac.has(id)) {
      const want = (addrs.find((x) => x.includes(':')) as string).split('/')[0] as string;
      const t0 = Date.now();
      let have: string[] = [];
      while (Date.now() - t0 < timeoutMs) {
        have = await v6Addresses(ns);
        if (have.includes(want)) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      if (!have.includes(want)) problems.push(`virt "${id}": no SLAAC address ${want} after ${timeoutMs / 1000} s (has ${have.join(', ') || 'none'})`);
    }
  }));
  if (problems.length) throw new LabError('virts did not get their addresses from their nets\' servers', problems);
}

/** Runtime dirs of address servers whose namespaces a lab removed (their dnsmasq was killed with them). */
export function removeServerDirs(namespaces: string[]): void {
  for (const ns of namespaces) rmSync(serverDir(ns), { recursive: true, force: true });
}
