/**
 * What a hypervisor hook checks before wiring a virt on a net with an address server
 * (src/services): the virt-scoped apply changes only the virt's own objects, so the server's
 * share in it, written by the last full apply, must already be there. Pure.
 *
 *   - the server's hosts file has the virt's `MAC,IP` line (else DHCP never answers it);
 *   - the bridge table's `forward` chain lets the server talk to the virt's port (the lines
 *     that name both the server's port and the virt's, as the full compiler writes them).
 *
 * A gap means the model changed since the last apply: the hook refuses and says so.
 */
import { normalizeMac } from '../core/addr.js';
import type { Virt } from '../model/netmodel.js';
import type { DhcpObject, HostState, NftTableObject } from '../core/objects.js';

/** The address server of the net whose bridge is `bridge`, in a host's desired state (undefined: none here). */
export function serverOfBridge(full: HostState, bridge: string): DhcpObject | undefined {
  for (const o of full.objects.values()) if (o.kind === 'dhcp' && o.bridge === bridge) return o;
  return undefined;
}

/** The path of a server's dhcp-hostsfile, from its dnsmasq.conf (undefined: it serves no DHCPv4). */
export function hostsFilePath(server: DhcpObject): string | undefined {
  return /^dhcp-hostsfile=(.+)$/m.exec(server.config)?.[1];
}

/** A forward-chain line with every interface name (and set of them) replaced by one placeholder. */
function shape(line: string): string {
  return line.replace(/"[^"]*"/g, '"*"').replace(/\{ (?:"\*", )*"\*" \}/g, '"*"');
}

/**
 * Why the host's address server of the virt's net cannot serve the virt yet, as it stands
 * (`forward`: the actual lines of the bridge table's forward chain; `hosts`: the actual hosts
 * file); [] when it can, or when the net has no server here.
 */
export function servingGaps(
  full: HostState, virt: Virt, bridge: string, table: string,
  actual: { forward: string[] | undefined; hosts: string | undefined },
): string[] {
  const server = serverOfBridge(full, bridge);
  if (!server || !virt.if) return [];
  const gaps: string[] = [];
  const mac = typeof virt.mac === 'string' ? normalizeMac(virt.mac) : undefined;
  const want = mac ? server.hosts.split('\n').filter((l) => l.startsWith(`${mac},`)) : [];
  const have = new Set((actual.hosts ?? '').split('\n').map((l) => l.trim()));
  for (const l of want) if (!have.has(l)) gaps.push(`the address server ${server.name} has no DHCP host entry ${l}`);
  const port = JSON.stringify(server.port);
  const ifname = JSON.stringify(virt.if);
  const nft = full.get(`nft bridge ${table}`) as NftTableObject | undefined;
  const lines = (nft?.chains.forward ?? []).filter((l) => l.includes(port) && l.includes(ifname));
  const actualLines = (actual.forward ?? []).filter((l) => l.includes(port) && l.includes(ifname));
  for (const l of lines) {
    if (!actualLines.some((a) => shape(a) === shape(l))) gaps.push(`the firewall does not let the address server's port ${server.port} talk to ${virt.if}`);
  }
  return [...new Set(gaps)];
}
