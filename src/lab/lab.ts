/**
 * The lab: a whole cluster simulated on one machine with network namespaces, the way LSDN's
 * own tests did it.
 *
 *   <prefix>-underlay            bridge br0 standing for the physical network
 *   <prefix>-p-<phys>            one per phys: its underlay interface (phys.if, carrying phys.ip)
 *                                is a veth whose other end is a port of br0
 *   <prefix>-v-<net>-<virt>      one per connected virt: "eth0" (virt.mac, virt.ips) is a veth
 *                                whose other end is virt.if in its phys's namespace
 *
 * Every name the lab creates lives inside a namespace whose name starts with `${prefix}-`, so
 * two labs with different prefixes never collide and `labDown(prefix)` can remove a lab from
 * the names alone (after a crash too). Links are created directly inside their namespaces from
 * one `ip -batch` process; each namespace is then configured by one `ip -n NS -batch` process.
 */
import { readdir, stat } from 'node:fs/promises';
import ipaddr from 'ipaddr.js';
import { overlayMtu } from '../compile/compile.js';
import { Kernel } from '../kernel/exec.js';
import { KernelError, LabError } from '../core/errors.js';
import { familyOf, normalizeMac, parsePrefix, type Prefix } from '../core/addr.js';
import type { Netmodel, Phys, Virt } from '../model/netmodel.js';
import {
  labLayout, labProblems, labVirts, OUTSIDE_ADDR, outsideLinks, PREFIX_RE, UNDERLAY_BRIDGE, VIRT_IF, type LabLayout, type LabOptions,
} from './layout.js';
import { labDhcpClients, removeServerDirs } from './serving.js';
import { CLIENT_UNDERLAY_IF, labSegments } from './extension.js';
import { clientTapLines, labClientsDown, labClientsUp } from './clients.js';

// The lab's layout (names, addresses, what keeps a model from being a lab) is layout.ts's.
export { labLayout, labLine, labPrefix, labProblems, labReport, labVirts, type LabLayout, type LabOptions } from './layout.js';

// ---------------------------------------------------------------------------------------------

const root = new Kernel();

/** Names of the namespaces that exist now (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await root.run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

/** Namespaces of a lab: names starting with `${prefix}-`. */
export async function labNamespaces(prefix: string): Promise<string[]> {
  return (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < items.length && failed === undefined) {
      const i = next++;
      try {
        out[i] = await fn(items[i] as T);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
  return out;
}

/** Kill the processes living in the given namespaces (a lab's daemons, a stray ping). */
async function killProcessesIn(names: string[]): Promise<number> {
  const ids = new Set<string>();
  for (const n of names) {
    try {
      const s = await stat(`/run/netns/${n}`);
      ids.add(`${s.dev}:${s.ino}`);
    } catch {
      // already gone
    }
  }
  if (ids.size === 0) return 0;
  let killed = 0;
  const pids = (await readdir('/proc')).filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid);
  await Promise.all(pids.map(async (pid) => {
    try {
      const s = await stat(`/proc/${pid}/ns/net`);
      if (ids.has(`${s.dev}:${s.ino}`)) {
        process.kill(Number(pid), 'SIGKILL');
        killed++;
      }
    } catch {
      // exited meanwhile, or not ours to see
    }
  }));
  return killed;
}

/**
 * Remove a lab: every namespace whose name starts with `${prefix}-` (their links go with
 * them), after killing the processes running inside them. Works from the names alone.
 * Returns the namespaces removed.
 */
export async function labDown(prefix: string, opts: { killProcesses?: boolean } = {}): Promise<string[]> {
  if (!PREFIX_RE.test(prefix)) throw new LabError(`invalid lab prefix "${prefix}"`);
  // VDE clients first: vdens runs in a namespace of its own, found only by its pid file.
  if (opts.killProcesses ?? true) await labClientsDown(prefix);
  const names = await labNamespaces(prefix);
  if (names.length === 0) return [];
  if (opts.killProcesses ?? true) await killProcessesIn(names);
  // One batch; `ip -batch` stops at a failing line (a namespace removed meanwhile), so go on
  // after it.
  let lines = names.map((n) => `netns del ${n}`);
  while (lines.length) {
    try {
      await root.batch('ip', lines);
      lines = [];
    } catch (e) {
      if (!(e instanceof KernelError) || e.line === undefined) throw e;
      lines = lines.slice(e.line);
    }
  }
  const left = new Set(await labNamespaces(prefix));
  const removed = names.filter((n) => !left.has(n));
  removeServerDirs(removed);
  if (left.size) throw new LabError(`lab "${prefix}": could not remove`, [...left]);
  return removed;
}

function addrLine(addr: string, dev: string): string {
  return `address add ${addr} dev ${dev}${familyOf(addr) === 6 ? ' nodad' : ''}`;
}

/**
 * Routes of a host on the underlay (`mine`: its address there): the multicast route on
 * `mcastDev` (none: "none"), and on-link host routes to the others' addresses its subnet does
 * not cover.
 */
function underlayRoutes(mine: string, others: string[], dev: string, mcastDev: string): string[] {
  const me = parsePrefix(mine) as Prefix;
  const lines: string[] = [];
  if (me.family === 4 && mcastDev !== 'none') lines.push(`route add 224.0.0.0/4 dev ${mcastDev}`);
  for (const a of others) {
    if (a === mine) continue;
    const p = parsePrefix(a) as Prefix;
    if (p.family !== me.family) continue;
    const inSubnet = ipaddr.parse(p.ip).match(ipaddr.parse(me.ip), me.len);
    if (!inSubnet) lines.push(`route add ${p.ip}/${p.family === 4 ? 32 : 128} dev ${dev}`);
  }
  return lines;
}

export interface LabUpOptions extends LabOptions {
  /** Configure one simulated phys: run lsdn (or test scaffolding) inside `netns`. */
  apply: (phys: Phys, netns: string) => Promise<void>;
  onProgress?: (msg: string) => void;
  /** How long a qemu client may take to boot (default 120 s). */
  vmBootMs?: number;
}

/**
 * Build the lab for `model`, then call `apply` for every phys (in parallel). On any failure
 * what was created is removed again and the error rethrown.
 */
/**
 * The lab's switches (the underlay bridge and the extra segments). A plain Linux bridge has one
 * FDB for all VLANs (shared learning), so with vlan nets, one MAC in two nets (LSDN's duplicate
 * MAC scenario) would flap between the ports of the two hosts and frames of one net would go to
 * the other's host. A real switch learns per VLAN, and so does a bridge with `vlan_filtering`:
 * with vlan nets in the model the lab's switches filter, carry every tag (1-4094) on every
 * port, and put untagged underlay traffic in the highest id no vlan net uses.
 */
function labSwitch(model: Netmodel): { bridgeOpts: string; trunk: string[] } {
  const tags = new Set<number>();
  for (const n of model.nets.values()) {
    if (n.effectiveSettings()?.type === 'vlan' && n.vid !== undefined) tags.add(n.vid);
  }
  if (tags.size === 0) return { bridgeOpts: '', trunk: [] };
  let untagged = 4094;
  while (tags.has(untagged)) untagged--;
  const ranges = ([[1, untagged - 1], [untagged + 1, 4094]] as const).filter(([a, b]) => a <= b).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`));
  return { bridgeOpts: ` vlan_filtering 1 vlan_default_pvid ${untagged}`, trunk: ranges };
}

export async function labUp(model: Netmodel, opts: LabUpOptions): Promise<LabLayout> {
  const progress = opts.onProgress ?? (() => undefined);
  const t0 = Date.now();
  const layout = labLayout(model, opts);
  const problems = labProblems(model, layout);
  if (problems.length) throw new LabError(`model "${model.name}" cannot be built as a lab`, problems);
  const existing = await labNamespaces(layout.prefix);
  if (existing.length) {
    throw new LabError(`lab "${layout.prefix}" already exists (${existing.length} namespaces); remove it with labDown("${layout.prefix}")`);
  }
  const physes = [...model.physes.values()];
  const virts = labVirts(model);
  const physNs = (p: Phys) => layout.physNs.get(p.name) as string;
  const virtNs = (v: Virt) => layout.virtNs.get(v.id) as string;
  const clients = layout.lab?.clients ?? [];
  const clientNs = (name: string) => layout.clientNs.get(name) as string;
  try {
    // 1. Namespaces, in one process.
    const outside = layout.serving?.outsideNs;
    const all = [layout.underlayNs, ...physes.map(physNs), ...virts.map(virtNs), ...(outside ? [outside] : []), ...clients.map((c) => clientNs(c.name))];
    progress(`creating ${all.length} namespaces`);
    await root.batch('ip', all.map((n) => `netns add ${n}`));

    // 2. Every link, created inside its namespace, from one process running in the underlay
    // namespace (so that `master br0` resolves there).
    progress(`creating ${physes.length + virts.length} veth pairs`);
    const u = new Kernel({ netns: layout.underlayNs });
    const sw = labSwitch(model);
    const links: string[] = [
      `link add ${UNDERLAY_BRIDGE} type bridge mcast_snooping 0${sw.bridgeOpts}`,
      `link set ${UNDERLAY_BRIDGE} addrgenmode none`,
      `link set ${UNDERLAY_BRIDGE} up`,
    ];
    const underlayPort = new Map<string, string>();
    physes.forEach((p, i) => {
      const port = `u${i}-${p.name.replace(/[^A-Za-z0-9_.-]/g, '_')}`.slice(0, 15);
      underlayPort.set(p.name, port);
      const mtu = p.mtu !== undefined ? ` mtu ${p.mtu}` : '';
      links.push(
        `link add ${port}${mtu} master ${UNDERLAY_BRIDGE} type veth peer name ${p.if} netns ${physNs(p)}${mtu}`,
        `link set ${port} addrgenmode none`,
        `link set ${port} up`,
      );
    });
    for (const v of virts) {
      const mac = v.mac !== undefined ? ` address ${normalizeMac(v.mac)}` : '';
      // The VM side gets the overlay MTU, as a well-configured VM would (DHCP option 26, virtio host_mtu).
      const m = v.mtu ?? overlayMtu(v.net, v.phys as Phys);
      const mtu = m !== undefined ? ` mtu ${m}` : '';
      links.push(`link add ${VIRT_IF} netns ${virtNs(v)}${mac}${mtu} type veth peer name ${v.if} netns ${physNs(v.phys as Phys)}`);
    }
    if (outside) links.push(...outsideLinks(outside));
    // The lab section: more segments (a bridge each), the clients' hosts, extra interfaces.
    for (const seg of labSegments(layout.lab)) {
      links.push(`link add br-${seg} type bridge mcast_snooping 0${sw.bridgeOpts}`, `link set br-${seg} addrgenmode none`, `link set br-${seg} up`);
    }
    clients.forEach((c, i) => {
      links.push(`link add uc${i} master ${UNDERLAY_BRIDGE} type veth peer name ${CLIENT_UNDERLAY_IF} netns ${clientNs(c.name)}`, `link set uc${i} addrgenmode none`, `link set uc${i} up`);
    });
    const extra: [ns: string, link: { name: string; segment: string }][] = [
      ...physes.flatMap((p) => (layout.lab?.physes.get(p.name)?.links ?? []).map((l) => [physNs(p), l] as [string, typeof l])),
      ...clients.flatMap((c) => c.host.links.map((l) => [clientNs(c.name), l] as [string, typeof l])),
    ];
    extra.forEach(([ns, l], j) => {
      links.push(`link add ul${j} master br-${l.segment} type veth peer name ${l.name} netns ${ns}`, `link set ul${j} addrgenmode none`, `link set ul${j} up`);
    });
    await u.batch('ip', links);
    // A VLAN-aware switch carries every tag on every port (see labSwitch).
    if (sw.trunk.length) {
      const ports = [
        ...underlayPort.values(),
        ...clients.map((_c, i) => `uc${i}`),
        ...extra.map((_e, j) => `ul${j}`),
      ];
      await u.batch('bridge', ports.flatMap((port) => sw.trunk.map((vids) => `vlan add vid ${vids} dev ${port}`)));
    }

    // 3. Addresses and links up, one process per namespace. No IPv6 link-local addresses
    // (addrgenmode none: no DAD, no router solicitations) and `nodad` on static IPv6 ones, so
    // everything is usable at once.
    progress('configuring namespaces');
    const jobs: [string, string[]][] = [];
    const underlayAddrs = [...layout.physAddrs.values(), ...clients.map((c) => c.host.ip)];
    const linkLines = (links: { name: string; ip: string }[]) =>
      links.flatMap((l) => [`link set ${l.name} addrgenmode none`, `link set ${l.name} up`, addrLine(l.ip, l.name)]);
    for (const p of physes) {
      const lines = ['link set lo up', `link set ${p.if} addrgenmode none`, `link set ${p.if} up`];
      const mine = layout.physAddrs.get(p.name) as string;
      const more = layout.lab?.physes.get(p.name);
      lines.push(addrLine(mine, p.if as string));
      lines.push(...linkLines(more?.links ?? []));
      lines.push(...underlayRoutes(mine, underlayAddrs, p.if as string, more?.multicast ?? (p.if as string)));
      if (outside) lines.push(`route add ${OUTSIDE_ADDR.net} dev ${p.if}`);
      for (const v of virts) {
        if (v.phys === p) lines.push(`link set ${v.if} addrgenmode none`, `link set ${v.if} up`);
      }
      jobs.push([physNs(p), lines]);
    }
    for (const v of virts) {
      // Virts that use SLAAC keep their EUI-64 addresses; the others get none (no DAD, no RS).
      const gen = layout.serving?.slaac.has(v.id) ? 'eui64' : 'none';
      const lines = ['link set lo up', `link set ${VIRT_IF} addrgenmode ${gen}`, `link set ${VIRT_IF} up`];
      const asks = layout.serving?.planned.has(v.id);
      // A virt that asks (DHCPv4, SLAAC) gets no static address here: the server hands it out.
      if (!asks) for (const a of layout.virtIps.get(v.id) ?? []) lines.push(addrLine(a, VIRT_IF));
      jobs.push([virtNs(v), lines]);
    }
    for (const c of clients) {
      const dev = CLIENT_UNDERLAY_IF;
      jobs.push([clientNs(c.name), [
        'link set lo up', `link set ${dev} addrgenmode none`, `link set ${dev} up`, addrLine(c.host.ip, dev),
        ...linkLines(c.host.links),
        ...underlayRoutes(c.host.ip, underlayAddrs, dev, c.host.multicast ?? dev),
        ...clientTapLines(c),
      ]]);
    }
    if (outside) {
      const lines = ['link set lo up', `link set ${VIRT_IF} addrgenmode none`, `link set ${VIRT_IF} up`, addrLine(OUTSIDE_ADDR.addr, VIRT_IF)];
      for (const a of layout.physAddrs.values()) if (!a.includes(':')) lines.push(`route add ${a.split('/')[0]}/32 dev ${VIRT_IF}`);
      jobs.push([outside, lines]);
    }
    await mapLimit(jobs, 8, ([ns, lines]) => new Kernel({ netns: ns }).batch('ip', lines));
    progress(`lab "${layout.prefix}" built in ${Date.now() - t0} ms`);

    // 4. The datapath of every phys.
    const t1 = Date.now();
    // Wait for every apply, even after one failed, before tearing the lab down.
    const results = await Promise.allSettled(physes.map(async (p) => {
      progress(`applying ${p.name} in ${physNs(p)}`);
      await opts.apply(p, physNs(p));
    }));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    progress(`applied ${physes.length} physes in ${Date.now() - t1} ms`);
    // 5. Virts that ask for their addresses do so now, with a real DHCP client (and SLAAC).
    if (layout.serving?.planned.size) {
      progress(`addresses from the nets' servers for ${layout.serving.planned.size} virts`);
      await labDhcpClients(layout, layout.serving);
    }
    // 6. The VDE clients (the lab section), on their hosts.
    if (clients.length) {
      const t2 = Date.now();
      progress(`starting ${clients.length} VDE clients (${clients.map((c) => `${c.name}: ${c.run}`).join(', ')})`);
      await labClientsUp(layout, physes.map((p) => [physNs(p), p.if as string]), { onProgress: progress, ...(opts.vmBootMs !== undefined ? { vmBootMs: opts.vmBootMs } : {}) });
      progress(`VDE clients up in ${Date.now() - t2} ms`);
    }
    return layout;
  } catch (e) {
    progress(`failed, removing lab "${layout.prefix}"`);
    try {
      await labDown(layout.prefix);
    } catch {
      // the original error matters more
    }
    throw e;
  }
}
