/**
 * The lab and address serving, the shell side: the virts that ask for their addresses (which
 * ones, and what they should get: layout.ts) run a real DHCP client and wait for SLAAC; the
 * servers' runtime dirs of a removed lab are removed too.
 */
import { Kernel } from '../kernel/exec.js';
import { rmSync } from 'node:fs';
import { serverDir } from '../services/dhcp.js';
import { dhcpLease } from './dhcp-client.js';
import { LabError } from '../core/errors.js';
import type { LabAddressing, LabLayout } from './layout.js';

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
