/** What a VDE cloud lab needs on this machine: VDE's clients, qemu and the test VM. */
import { spawnSync } from 'node:child_process';
import { vmAssets } from './qemu.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Why a lab with vde_plug, vdens and qemu clients cannot run here; undefined when it can. */
export function vdeCloudMissing(): string | undefined {
  for (const [cmd, pkg] of [['vde_plug', 'vdeplug'], ['vdens', 'vdens'], ['ethtool', 'ethtool']]) {
    if (!has(cmd as string)) return `${cmd} is not installed (Debian package ${pkg}; scripts/setup.sh installs it)`;
  }
  const assets = vmAssets();
  return typeof assets === 'string' ? assets : undefined;
}

export function sh(ns: string, cmd: string): { ok: boolean; out: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'sh', '-c', cmd], { encoding: 'utf8', timeout: 60_000 });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

export function must(ns: string, cmd: string): string {
  const r = sh(ns, cmd);
  if (!r.ok) throw new Error(`${ns}: ${cmd}: ${r.out}`);
  return r.out;
}

/**
 * Wait (up to `ms`) until a socket in `ns` has joined `group` on `dev` (`ip maddr`): a VDE
 * client that was just started is not yet in its cloud, and a ping that fails then says nothing.
 */
export async function joined(ns: string, dev: string, group: string, ms = 20_000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (new RegExp(`\\binet\\s+${group.replace(/\./g, '\\.')}\\b`).test(sh(ns, `ip maddr show dev ${dev}`).out)) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function ping(ns: string, ip: string, tries = 3): boolean {
  for (let i = 0; i < tries; i++) if (sh(ns, `ping -c 1 -W 1 ${ip}`).ok) return true;
  return false;
}

function rxPackets(ns: string, dev = 'eth0'): number {
  const [l] = JSON.parse(must(ns, `ip -j -s link show ${dev}`)) as { stats64: { rx: { packets: number } } }[];
  return l!.stats64.rx.packets;
}

/** Frames the `watch` hosts receive (their eth0) while `from` sends `count` pings to `to` (twice as many frames on the overlay). */
export function flow(from: string, to: string, watch: string[], count = 200): number[] {
  const before = watch.map((ns) => rxPackets(ns));
  const out = must(from, `ping -q -c ${count} -i 0.005 -W 1 ${to}`);
  if (!/ 0% packet loss/.test(out)) throw new Error(`${from} -> ${to}: ${out}`);
  return watch.map((ns, i) => rxPackets(ns) - (before[i] as number));
}

/**
 * lsdn's vxvde datapath before unicast, rebuilt by hand on a host: its VXLAN devices without
 * learning and without per-MAC entries, no port-learning table: everything goes to the group.
 */
export function groupOnly(ns: string, table: string): void {
  const links = JSON.parse(must(ns, 'ip -j link show type vxlan')) as { ifname: string }[];
  for (const { ifname } of links) {
    must(ns, `ip link set dev ${ifname} type vxlan nolearning`);
    const fdb = JSON.parse(must(ns, `bridge -j fdb show dev ${ifname}`)) as { mac: string; dst?: string; flags?: string[] }[];
    for (const e of fdb) {
      if ((e.flags ?? []).includes('self') && e.dst && e.mac !== '00:00:00:00:00:00') must(ns, `bridge fdb del ${e.mac} dev ${ifname} dst ${e.dst} self`);
    }
  }
  must(ns, `nft delete table ip ${table}`);
}
