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
import { overlayMtu } from '../compile/compile.js';
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import ipaddr from 'ipaddr.js';
import { Kernel } from '../kernel/exec.js';
import { KernelError } from '../core/errors.js';
import { familyOf, interfaceNameProblem, normalizeMac, parsePrefix, type Prefix } from '../core/addr.js';
import type { Netmodel, Phys, Virt } from '../model/netmodel.js';
import { labAddressing, labDhcpClients, OUTSIDE_ADDR, outsideLinks, removeServerDirs, type LabAddressing } from './serving.js';
import { LabError } from '../core/errors.js';

export interface LabOptions {
  /** Namespace name prefix; default derived from the model's name ("lsl-<name>"). */
  prefix?: string;
}

export interface LabLayout {
  prefix: string;
  underlayNs: string;
  /** phys name -> netns */
  physNs: Map<string, string>;
  /** virt.id -> netns (connected virts only) */
  virtNs: Map<string, string>;
  /** virt.id -> ["ip/len"]: the virt's own addresses, else generated ones */
  virtIps: Map<string, string[]>;
  /** phys name -> "ip/len" put on its underlay interface (absent when phys.ip is unusable) */
  physAddrs: Map<string, string>;
  /** Virts that get their addresses from the net's server (DHCPv4, SLAAC), and the outside namespace (src/lab/serving.ts). */
  serving?: LabAddressing;
}

/** Name of the underlay bridge inside `${prefix}-underlay`. */
export const UNDERLAY_BRIDGE = 'br0';
/** Name of each virt's interface inside its own namespace. */
export const VIRT_IF = 'eth0';
/** Prefix length of phys underlay addresses given without one. */
export const UNDERLAY_PREFIX_LEN = { 4: 16, 6: 64 } as const;
/** Generated virt addresses: net i, virt j -> 10.100.i.(j+1)/16 (one shared subnet, see below). */
const GEN_V4 = { first: 10, second: 100, len: 16 };

function shortHash(s: string, n = 6): string {
  return createHash('sha256').update(s).digest('hex').slice(0, n);
}

/** Characters kept in namespace-name parts: letters, digits, '_', '.', and '-' when allowed. */
function sanitize(s: string, allowDash: boolean, max: number): string {
  let t = s.replace(allowDash ? /[^A-Za-z0-9_.-]/g : /[^A-Za-z0-9_.]/g, '_');
  if (t === '' || t === '.' || t === '..') t = `_${shortHash(s, 4)}`;
  if (t.length > max) t = `${t.slice(0, max - 7)}_${shortHash(s)}`;
  return t;
}

const PREFIX_RE = /^[A-Za-z0-9_.][A-Za-z0-9_.-]*$/;

export function labPrefix(model: Netmodel, opts: LabOptions = {}): string {
  if (opts.prefix !== undefined) {
    if (!PREFIX_RE.test(opts.prefix) || opts.prefix.length > 64) {
      throw new LabError(`invalid lab prefix "${opts.prefix}" (letters, digits, "_", ".", "-"; at most 64 characters)`);
    }
    return opts.prefix;
  }
  // No '-' in the derived part: then no derived prefix is `${other derived prefix}-...`, and
  // labDown of one lab can never take another lab's namespaces.
  return `lsl-${sanitize(model.name, false, 16)}`;
}

/**
 * Connected virts (their phys exists in the model), in model order. Virts with `tap` are a
 * hypervisor's: apply creates their tap in the phys namespace and a VM (qemu) attaches to
 * it, so the lab makes neither a namespace nor a veth for them.
 */
export function labVirts(model: Netmodel): Virt[] {
  return model.virts().filter((v) => v.phys !== undefined && model.physes.get(v.phys.name) === v.phys && !v.tap);
}

/** Give every key a distinct name: colliding candidates get a hash of their key appended. */
function uniqueNames(cands: [key: string, name: string][]): Map<string, string> {
  const count = new Map<string, number>();
  for (const [, n] of cands) count.set(n, (count.get(n) ?? 0) + 1);
  const out = new Map<string, string>();
  const used = new Set<string>();
  for (const [k, n] of cands) {
    let name = (count.get(n) ?? 0) > 1 ? `${n}-${shortHash(k)}` : n;
    for (let i = 2; used.has(name); i++) name = `${n}-${shortHash(k)}${i}`;
    used.add(name);
    out.set(k, name);
  }
  return out;
}

function generatedIp(netIndex: number, virtIndex: number): string {
  if (netIndex > 255 || virtIndex > 253) {
    throw new LabError(`cannot generate an address for virt #${virtIndex + 1} of net #${netIndex + 1}: give the virt "ips"`);
  }
  return `${GEN_V4.first}.${GEN_V4.second}.${netIndex}.${virtIndex + 1}/${GEN_V4.len}`;
}

function physAddr(phys: Phys): string | undefined {
  if (!phys.ip) return undefined;
  const p = parsePrefix(phys.ip);
  if (!p) return undefined;
  const len = phys.ip.includes('/') ? p.len : UNDERLAY_PREFIX_LEN[p.family];
  return `${p.ip}/${len}`;
}

/**
 * The lab's names and addresses (pure). Virts without addresses get generated IPv4 ones: all
 * nets share 10.100.0.0/16 (net i, virt j -> 10.100.i.(j+1)), so a ping across nets is on-link
 * and tests the nets' isolation rather than routing.
 */
export function labLayout(model: Netmodel, opts: LabOptions = {}): LabLayout {
  const prefix = labPrefix(model, opts);
  const physNames = uniqueNames([...model.physes.keys()].map((n) => [n, `${prefix}-p-${sanitize(n, true, 40)}`]));
  const virts = labVirts(model);
  const virtNames = uniqueNames(virts.map((v) => [v.id, `${prefix}-v-${sanitize(v.net.name, true, 40)}-${sanitize(v.name, true, 40)}`]));
  const virtIps = new Map<string, string[]>();
  const nets = [...model.nets.values()];
  const serving = labAddressing(model, virts, prefix);
  for (const v of virts) {
    const planned = serving.planned.get(v.id);
    if (planned) {
      virtIps.set(v.id, planned);
    } else if (v.ips.length) {
      virtIps.set(v.id, v.ips.map((s) => {
        const p = parsePrefix(s);
        return p ? `${p.ip}/${p.len}` : s;
      }));
    } else {
      virtIps.set(v.id, [generatedIp(nets.indexOf(v.net), [...v.net.virts.values()].indexOf(v))]);
    }
  }
  const physAddrs = new Map<string, string>();
  for (const p of model.physes.values()) {
    const a = physAddr(p);
    if (a) physAddrs.set(p.name, a);
  }
  return {
    prefix,
    underlayNs: `${prefix}-underlay`,
    physNs: physNames,
    virtNs: new Map(virts.map((v) => [v.id, virtNames.get(v.id) as string])),
    virtIps,
    physAddrs,
    serving,
  };
}

/** What keeps the model from being built as a lab (empty when nothing). */
export function labProblems(model: Netmodel, layout: LabLayout): string[] {
  const problems: string[] = [];
  const physIps = new Map<string, string>();
  for (const p of model.physes.values()) {
    if (!p.if) problems.push(`phys "${p.name}": no underlay interface ("if")`);
    else {
      const why = interfaceNameProblem(p.if);
      if (why) problems.push(`phys "${p.name}": interface name "${p.if}" ${why}`);
    }
    if (!p.ip) problems.push(`phys "${p.name}": no underlay address ("ip")`);
    else if (!layout.physAddrs.has(p.name)) problems.push(`phys "${p.name}": "${p.ip}" is not an IP address`);
    else {
      const ip = (layout.physAddrs.get(p.name) as string).split('/')[0] as string;
      const other = physIps.get(ip);
      if (other) problems.push(`phys "${p.name}": address ${ip} is also phys "${other}"'s`);
      else physIps.set(ip, p.name);
    }
    if (p.mtu !== undefined && (!Number.isInteger(p.mtu) || p.mtu < 68)) problems.push(`phys "${p.name}": bad mtu ${p.mtu}`);
  }
  const ifs = new Map<string, string>(); // "phys\0if" -> owner
  for (const p of model.physes.values()) if (p.if) ifs.set(`${p.name}\0${p.if}`, `phys "${p.name}"'s underlay interface`);
  for (const v of labVirts(model)) {
    const phys = v.phys as Phys;
    if (!v.if) problems.push(`virt "${v.id}": connected to "${phys.name}" without an interface name ("if")`);
    else {
      const why = interfaceNameProblem(v.if);
      if (why) problems.push(`virt "${v.id}": interface name "${v.if}" ${why}`);
      const key = `${phys.name}\0${v.if}`;
      const owner = ifs.get(key);
      if (owner) problems.push(`virt "${v.id}": interface "${v.if}" on "${phys.name}" is also ${owner}`);
      else ifs.set(key, `virt "${v.id}"'s`);
    }
    if (v.mac !== undefined && !normalizeMac(v.mac)) problems.push(`virt "${v.id}": bad MAC "${v.mac}"`);
    for (const ip of v.ips) if (!parsePrefix(ip)) problems.push(`virt "${v.id}": bad address "${ip}"`);
  }
  return problems;
}

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

/** The underlay address of each phys covers the others (same subnet), else on-link host routes. */
function underlayRoutes(layout: LabLayout, physName: string, dev: string): string[] {
  const mine = parsePrefix(layout.physAddrs.get(physName) as string) as Prefix;
  const lines: string[] = [];
  if (mine.family === 4) lines.push(`route add 224.0.0.0/4 dev ${dev}`);
  for (const [other, a] of layout.physAddrs) {
    if (other === physName) continue;
    const p = parsePrefix(a) as Prefix;
    if (p.family !== mine.family) continue;
    const inSubnet = ipaddr.parse(p.ip).match(ipaddr.parse(mine.ip), mine.len);
    if (!inSubnet) lines.push(`route add ${p.ip}/${p.family === 4 ? 32 : 128} dev ${dev}`);
  }
  return lines;
}

export interface LabUpOptions extends LabOptions {
  /** Configure one simulated phys: run lsdn (or test scaffolding) inside `netns`. */
  apply: (phys: Phys, netns: string) => Promise<void>;
  onProgress?: (msg: string) => void;
}

/**
 * Build the lab for `model`, then call `apply` for every phys (in parallel). On any failure
 * what was created is removed again and the error rethrown.
 */
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
  try {
    // 1. Namespaces, in one process.
    const outside = layout.serving?.outsideNs;
    const all = [layout.underlayNs, ...physes.map(physNs), ...virts.map(virtNs), ...(outside ? [outside] : [])];
    progress(`creating ${all.length} namespaces`);
    await root.batch('ip', all.map((n) => `netns add ${n}`));

    // 2. Every link, created inside its namespace, from one process running in the underlay
    // namespace (so that `master br0` resolves there).
    progress(`creating ${physes.length + virts.length} veth pairs`);
    const u = new Kernel({ netns: layout.underlayNs });
    const links: string[] = [
      `link add ${UNDERLAY_BRIDGE} type bridge mcast_snooping 0`,
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
    await u.batch('ip', links);

    // 3. Addresses and links up, one process per namespace. No IPv6 link-local addresses
    // (addrgenmode none: no DAD, no router solicitations) and `nodad` on static IPv6 ones, so
    // everything is usable at once.
    progress('configuring namespaces');
    const jobs: [string, string[]][] = [];
    for (const p of physes) {
      const lines = ['link set lo up', `link set ${p.if} addrgenmode none`, `link set ${p.if} up`];
      lines.push(addrLine(layout.physAddrs.get(p.name) as string, p.if as string));
      lines.push(...underlayRoutes(layout, p.name, p.if as string));
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
