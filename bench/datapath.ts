/**
 * Datapath benchmark: iperf3 TCP throughput and ping RTT between two virts of a lab (same
 * host, and across two hosts) for every network type this kernel runs, next to the limits
 * measured in the same run on the same kind of namespaces:
 *
 *   same-host limit   a bare veth pair between two namespaces
 *   cross-host limit  a hand-made VXLAN link between two "hosts" whose eth0 are veths to a
 *                     bridge in an underlay namespace (exactly the lab's underlay)
 *   underlay limit    the same two hosts talking over their eth0 without encapsulation (the
 *                     limit of `direct`, which bridges the underlay itself)
 *
 * and two hand-made references of the shape every bridge-based design has (not limits: they
 * tell the cost of that shape from the cost of lsdn's settings): two namespaces on a bridge;
 * a bridge + VXLAN device on each host with a veth to a "VM" namespace.
 *
 * Each virt's eth0 must use the overlay MTU (net `mtu`): the lab leaves eth0 at 1500 unless the
 * model says otherwise, while lsdn gives the host side of a VXLAN net 1450, so frames over 1450
 * bytes that TCP segmentation offload does not cover (ping -s 1472, UDP) would be dropped at
 * the host-side port. Every path is checked with full-size DF pings.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { applyInLab } from '../src/lab/apply.js';
import { labDown, labUp } from '../src/lab/lab.js';
import { probeFeatures, typeSupport } from '../src/kernel/probe.js';
import { Netmodel, type NetworkTypeName } from '../src/model/netmodel.js';
import { networkType } from '../src/types/registry.js';
import { addNamespaces, cell, ipBatch, nsName, progress, runProc, table, verdict } from './lib.js';

export interface DatapathOptions {
  /** Rounds over every path; each path keeps its best (the machine is shared and noisy). */
  runs: number;
  /** iperf3 duration. */
  seconds: number;
}

export interface PathResult {
  gbps: number;
  rttMs: number;
  /** Segments TCP retransmitted (iperf3's sender sum). */
  retransmits: number;
  error?: string;
}

const TARGET = 0.9;
const UNDERLAY_MTU = 1500;
let iperfPort = 5301;

function waitListening(child: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`iperf3 server not listening after ${timeoutMs} ms: ${buf.trim()}`)), timeoutMs);
    const onData = (d: Buffer) => {
      buf += d.toString();
      if (/Server listening/.test(buf)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`iperf3 server exited (${code}): ${buf.trim()}`));
    });
  });
}

/** One iperf3 TCP run from `clientNs` to `ip` served in `serverNs`. */
async function iperf(clientNs: string, serverNs: string, ip: string, seconds: number): Promise<{ gbps: number; retransmits: number }> {
  const port = iperfPort++;
  // `ip netns exec` execs iperf3 itself: killing this pid kills the server.
  const server = spawn('ip', ['netns', 'exec', serverNs, 'iperf3', '-s', '-1', '--forceflush', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await waitListening(server, 5000);
    const r = await runProc(['ip', 'netns', 'exec', clientNs, 'iperf3', '-c', ip, '-p', String(port), '-t', String(seconds), '-J'], {
      timeoutMs: (seconds + 15) * 1000,
    });
    let j: { error?: string; end?: { sum_received?: { bits_per_second?: number }; sum_sent?: { retransmits?: number } } };
    try {
      j = JSON.parse(r.stdout) as typeof j;
    } catch {
      throw new Error(`iperf3 to ${ip}: exit ${r.code}, unparsable output: ${(r.stderr || r.stdout).trim().slice(0, 200)}`);
    }
    if (j.error) throw new Error(`iperf3 to ${ip}: ${j.error}`);
    const bps = j.end?.sum_received?.bits_per_second;
    if (bps === undefined) throw new Error(`iperf3 to ${ip}: no result`);
    return { gbps: bps / 1e9, retransmits: j.end?.sum_sent?.retransmits ?? 0 };
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
  }
}

/** Average RTT of `count` pings 10 ms apart; fails on any loss. */
async function ping(ns: string, ip: string, count = 20): Promise<number> {
  const r = await runProc(['ip', 'netns', 'exec', ns, 'ping', '-n', '-q', '-c', String(count), '-i', '0.01', '-W', '1', ip], { timeoutMs: 30_000 });
  const loss = /(\d+(?:\.\d+)?)% packet loss/.exec(r.stdout);
  const rtt = /= [\d.]+\/([\d.]+)\/[\d.]+\/[\d.]+ ms/.exec(r.stdout);
  if (!loss || Number(loss[1]) > 0 || !rtt) throw new Error(`ping ${ip} from ${ns}: ${(r.stdout + r.stderr).trim().split('\n').slice(-2).join('; ')}`);
  return Number(rtt[1]);
}

/** A measured path: from a namespace to an address served in another one. */
interface Path {
  from: string;
  to: string;
  ip: string;
  result: PathResult;
}

function newPath(from: string, to: string, ip: string): Path {
  return { from, to, ip, result: { gbps: NaN, rttMs: NaN, retransmits: 0 } };
}

/** Warm-up (ARP, learning, FDB entries) and connectivity check. */
async function warm(p: Path): Promise<void> {
  const r = await runProc(['ip', 'netns', 'exec', p.from, 'ping', '-n', '-q', '-c', '3', '-i', '0.05', '-W', '1', p.ip], { timeoutMs: 10_000 });
  if (r.code !== 0) p.result.error = `no connectivity from ${p.from} to ${p.ip}: ${r.stdout.trim().split('\n').slice(-2).join('; ')}`;
}

/** One ping set and one iperf3 run; the path keeps the best throughput and the best RTT seen. */
async function measureOnce(p: Path, seconds: number): Promise<void> {
  if (p.result.error) return;
  try {
    const rtt = await ping(p.from, p.ip);
    const t = await iperf(p.from, p.to, p.ip, seconds);
    const r = p.result;
    if (!(t.gbps <= r.gbps)) Object.assign(r, { gbps: t.gbps, retransmits: t.retransmits });
    if (!(rtt >= r.rttMs)) r.rttMs = rtt;
  } catch (e) {
    // A failed round only counts when no round succeeded.
    if (!Number.isFinite(p.result.gbps)) p.result = { gbps: NaN, rttMs: NaN, retransmits: 0, error: (e as Error).message };
  }
}

interface Limits {
  /** Same-host limit: a bare veth pair. */
  veth: PathResult;
  /** Limit of `direct` across hosts: eth0 -> underlay bridge -> eth0. */
  underlay: PathResult;
  /** Cross-host limit: a VXLAN link between the two hosts. */
  vxlan: PathResult;
  /** Reference (not a limit): two namespaces on a hand-made bridge (what any bridge design costs). */
  bridge: PathResult;
  /** Reference: hand-made bridge + VXLAN per host with a veth to a "VM" namespace on each side. */
  bridgeVxlan: PathResult;
}

const LIMIT_NS = ['lim-a', 'lim-b', 'lim-s', 'lim-x', 'lim-y', 'lim-u', 'lim-h1', 'lim-h2', 'lim-r1', 'lim-r2'];

/** The physical limits and the hand-made references, in namespaces built by hand. */
async function buildLimits(): Promise<void> {
  const [a, b, s, x, y, u, h1, h2, r1, r2] = LIMIT_NS.map(nsName) as [string, string, string, string, string, string, string, string, string, string];
  await addNamespaces([a, b, s, x, y, u, h1, h2, r1, r2]);
  // Same host: a bare veth pair.
  await ipBatch(a, [`link add eth0 type veth peer name eth0 netns ${b}`, 'address add 10.91.0.1/24 dev eth0', 'link set eth0 up']);
  await ipBatch(b, ['address add 10.91.0.2/24 dev eth0', 'link set eth0 up']);
  // Same host through a hand-made bridge.
  await ipBatch(s, [
    'link add br0 type bridge', 'link set br0 up',
    `link add px master br0 type veth peer name eth0 netns ${x}`, 'link set px up',
    `link add py master br0 type veth peer name eth0 netns ${y}`, 'link set py up',
  ]);
  await ipBatch(x, ['address add 10.93.0.1/24 dev eth0', 'link set eth0 up']);
  await ipBatch(y, ['address add 10.93.0.2/24 dev eth0', 'link set eth0 up']);
  // Two hosts on an underlay bridge, as in the lab; a VXLAN link between them, and a
  // hand-made bridge + VXLAN on each with a veth to a "VM" namespace.
  await ipBatch(u, [
    'link add br0 type bridge mcast_snooping 0', 'link set br0 addrgenmode none', 'link set br0 up',
    `link add u1 master br0 type veth peer name eth0 netns ${h1}`, 'link set u1 addrgenmode none', 'link set u1 up',
    `link add u2 master br0 type veth peer name eth0 netns ${h2}`, 'link set u2 addrgenmode none', 'link set u2 up',
  ]);
  for (const [ns, vm, me, peer] of [[h1, r1, 1, 2], [h2, r2, 2, 1]] as const) {
    await ipBatch(ns, [
      'link set eth0 addrgenmode none', `address add 192.168.91.${me}/24 dev eth0`, 'link set eth0 up',
      `link add vx0 type vxlan id 42 local 192.168.91.${me} remote 192.168.91.${peer} dev eth0 dstport 4789`,
      `address add 10.92.0.${me}/24 dev vx0`, 'link set vx0 up',
      'link add br1 type bridge', 'link set br1 up',
      `link add vx1 master br1 type vxlan id 43 local 192.168.91.${me} remote 192.168.91.${peer} dev eth0 dstport 4790`, 'link set vx1 up',
      `link add vm mtu 1450 master br1 type veth peer name eth0 netns ${vm} mtu 1450`, 'link set vm up',
    ]);
    await ipBatch(vm, [`address add 10.94.0.${me}/24 dev eth0`, 'link set eth0 up']);
  }
}

/** The limit and reference paths (see buildLimits). */
function limitPaths(): Record<keyof Limits, Path> {
  const n = nsName;
  return {
    veth: newPath(n('lim-a'), n('lim-b'), '10.91.0.2'),
    bridge: newPath(n('lim-x'), n('lim-y'), '10.93.0.2'),
    underlay: newPath(n('lim-h1'), n('lim-h2'), '192.168.91.2'),
    vxlan: newPath(n('lim-h1'), n('lim-h2'), '10.92.0.2'),
    bridgeVxlan: newPath(n('lim-r1'), n('lim-r2'), '10.94.0.2'),
  };
}

/** Can the path carry a full-size frame (payload MTU-28 with DF set)? */
async function fullSize(ns: string, ip: string, mtu: number): Promise<boolean> {
  const r = await runProc(['ip', 'netns', 'exec', ns, 'ping', '-n', '-q', '-c', '3', '-i', '0.05', '-W', '1', '-M', 'do', '-s', String(mtu - 28), ip], { timeoutMs: 10_000 });
  return r.code === 0;
}

/**
 * Two hosts, one net of `type`: virts a and b on hv1, c on hv2. `bare`: the virts' firewall
 * switched off (no anti-spoofing chains), when the model has that switch.
 */
function labModel(type: NetworkTypeName, i: number, bare = false): { model: Netmodel; mtu: number } {
  const model = new Netmodel(`dp${i}`);
  if (type === 'vxlan/mcast') model.addSettings(type, { mcastIp: '239.1.1.1' });
  else model.addSettings(type);
  const hv1 = model.addPhys('hv1', { if: 'eth0', ip: '192.168.50.1' });
  const hv2 = model.addPhys('hv2', { if: 'eth0', ip: '192.168.50.2' });
  const mtu = UNDERLAY_MTU - networkType(type).overhead(4);
  // The virts' own interface (the lab's eth0) gets the overlay MTU through the net's mtu.
  const net = model.addNet('n', { vid: 100, mtu }).attach(hv1).attach(hv2);
  const virts = [
    net.virt('a', { mac: '02:00:00:00:00:0a', phys: hv1, if: 'va', ips: ['10.0.0.1/24'] }),
    net.virt('b', { mac: '02:00:00:00:00:0b', phys: hv1, if: 'vb', ips: ['10.0.0.2/24'] }),
    net.virt('c', { mac: '02:00:00:00:00:0c', phys: hv2, if: 'vc', ips: ['10.0.0.3/24'] }),
  ];
  if (bare) for (const v of virts) v.configure({ antiSpoof: false });
  return { model, mtu };
}

interface TypeRow {
  type: NetworkTypeName;
  /** Label of the row (the type, and how it differs from the defaults). */
  label: string;
  mtu: number;
  same: PathResult;
  cross: PathResult;
  /** Full-size frames (virt MTU, DF) pass: same host, across hosts. */
  fullSame?: boolean;
  fullCross?: boolean;
  error?: string;
}

interface TypeLab {
  row: TypeRow;
  prefix: string;
  same?: Path;
  cross?: Path;
}

/** Build the lab of one type (lsdn apply on both simulated hosts); its paths are measured later. */
async function typeUp(type: NetworkTypeName, i: number, bare = false): Promise<TypeLab> {
  const { model, mtu } = labModel(type, i, bare);
  const label = bare ? `${type}, anti-spoofing off` : type;
  const prefix = nsName(`dp${i}`);
  const err = () => ({ gbps: NaN, rttMs: NaN, retransmits: 0 });
  const row: TypeRow = { type, label, mtu, same: err(), cross: err() };
  progress(`datapath ${label}: lab ${prefix}`);
  try {
    const layout = await labUp(model, { prefix, apply: (phys, netns) => applyInLab(model, phys, netns) });
    const ns = (id: string) => layout.virtNs.get(`n/${id}`) as string;
    const same = newPath(ns('a'), ns('b'), '10.0.0.2');
    const cross = newPath(ns('a'), ns('c'), '10.0.0.3');
    row.same = same.result;
    row.cross = cross.result;
    return { row, prefix, same, cross };
  } catch (e) {
    row.error = (e as Error).message;
    return { row, prefix };
  }
}

const gb = (r: PathResult) => (Number.isFinite(r.gbps) ? r.gbps.toFixed(2) : '-');
const rt = (r: PathResult) => (Number.isFinite(r.rttMs) ? r.rttMs.toFixed(3) : '-');
const fx = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');

/** The limit, its name and the hand-made reference of the same shape, for a row's path. */
function baseOf(row: TypeRow, where: 'same' | 'cross', lim: Limits): { limit: PathResult; limitName: string; ref?: PathResult; refName: string } {
  if (where === 'same') return { limit: lim.veth, limitName: 'veth', ref: lim.bridge, refName: 'hand-made bridge' };
  // No hand-made reference of direct's shape across hosts (a bridge on each host holding eth0).
  if (row.type === 'direct') return { limit: lim.underlay, limitName: 'underlay', refName: '' };
  return { limit: lim.vxlan, limitName: 'VXLAN', ref: lim.bridgeVxlan, refName: 'hand-made bridge + VXLAN' };
}

/**
 * Why a row misses, as far as this run tells: the hand-made reference of the same shape (a
 * bridge; a bridge + VXLAN per host) against the limit says what the shape costs; lsdn
 * against the reference says what lsdn's own configuration costs; the anti-spoofing-off row
 * says what the default firewall costs.
 */
function cause(row: TypeRow, where: 'same' | 'cross', lim: Limits, tputOk: boolean, rttOk: boolean, bare?: TypeRow): string {
  const r = row[where];
  if (r.error) return r.error;
  const notes: string[] = [];
  const full = where === 'same' ? row.fullSame : row.fullCross;
  if (full === false) notes.push(`full-size frames (${row.mtu} bytes, DF) are dropped`);
  if (tputOk && rttOk) return notes.join('; ');
  const { limit, ref, refName } = baseOf(row, where, lim);
  if (!ref) {
    notes.push('a bridge on each host between the virts and the underlay (no hand-made reference of this shape)');
    return notes.join('; ');
  }
  const shapeT = ref.gbps / limit.gbps;
  const shapeR = limit.rttMs / ref.rttMs;
  if ((!tputOk && shapeT < TARGET) || (!rttOk && shapeR < TARGET)) {
    notes.push(`the shape: a ${refName} gets ${fx(shapeT)} / ${fx(shapeR)} of the limit`);
  }
  const vsT = r.gbps / ref.gbps;
  const vsR = ref.rttMs / r.rttMs;
  if ((!tputOk && vsT < TARGET) || (!rttOk && vsR < TARGET)) {
    const fw = bare && bare !== row ? bare[where] : undefined;
    const fwNote = fw && Number.isFinite(fw.gbps) ? ` (firewall off: ${fx(fw.gbps / ref.gbps)} / ${fx(ref.rttMs / fw.rttMs)})` : '';
    notes.push(`lsdn's path: ${fx(vsT)} / ${fx(vsR)} of the ${refName}${fwNote}`);
  }
  if (notes.length === 0) notes.push('within noise of the hand-made shape, which is at the target');
  return notes.join('; ');
}

export async function runDatapath(o: DatapathOptions): Promise<string> {
  const out: string[] = [];
  progress('datapath: probing the kernel');
  const support = typeSupport(await probeFeatures());
  const wanted: NetworkTypeName[] = ['vxlan/mcast', 'vxlan/e2e', 'vxlan/static', 'vxvde', 'direct'];
  const runnable = support.filter((s) => s.ok).map((s) => s.type);
  const types = wanted.filter((t) => runnable.includes(t));
  const skipped = support.filter((s) => !s.ok).map((s) => `${s.type} (missing ${s.missing.join(', ')})`);

  const labs: TypeLab[] = [];
  const lp = limitPaths();
  let lim: Limits;
  try {
    await buildLimits();
    for (const [i, t] of types.entries()) labs.push(await typeUp(t, i));
    // The same vxlan/static lab without the virts' firewall: what anti-spoofing costs.
    if (types.includes('vxlan/static')) labs.push(await typeUp('vxlan/static', types.length, true));
    // Every path once per round, the order reversed every other round: a shared machine's load
    // falls on every path alike. Each path keeps its best throughput and its best RTT.
    const paths: Path[] = [...Object.values(lp), ...labs.flatMap((l) => [l.same, l.cross].filter((p): p is Path => p !== undefined))];
    for (const p of paths) await warm(p);
    for (let round = 0; round < o.runs; round++) {
      progress(`datapath: round ${round + 1} of ${o.runs} over ${paths.length} paths`);
      const order = round % 2 ? [...paths].reverse() : paths;
      for (const p of order) await measureOnce(p, o.seconds);
    }
    for (const l of labs) {
      if (l.same) l.row.same = l.same.result;
      if (l.cross) l.row.cross = l.cross.result;
      if (l.same) l.row.fullSame = await fullSize(l.same.from, l.same.ip, l.row.mtu);
      if (l.cross) l.row.fullCross = await fullSize(l.cross.from, l.cross.ip, l.row.mtu);
    }
    lim = { veth: lp.veth.result, bridge: lp.bridge.result, underlay: lp.underlay.result, vxlan: lp.vxlan.result, bridgeVxlan: lp.bridgeVxlan.result };
  } finally {
    for (const l of labs) await labDown(l.prefix).catch(() => undefined);
    await labDown(nsName('lim')).catch(() => undefined);
  }
  const rows = labs.map((l) => l.row);

  out.push(
    `iperf3 TCP, one stream, ${o.seconds} s; ping: 20 x 10 ms interval, average RTT. Every lab is built first, then every path (limits, ` +
    `references, types) is measured once per round over ${o.runs} rounds, in reverse order every other round, so a shared machine's load falls on all ` +
    'alike; each path keeps its best throughput and its best RTT. ' +
    `Throughput ratio = type / limit (target >= ${TARGET}); RTT ratio = limit RTT / type RTT (>= ${TARGET}: at most ${((1 / TARGET - 1) * 100).toFixed(0)}% slower). ` +
    "The virts' eth0 get the overlay MTU (the net's `mtu`), like the host side lsdn configures; full-size frames with DF are checked on every path.",
    '',
  );
  out.push('### Limits and hand-made references (same run)', '');
  const limRow = (name: string, mtu: number, r: PathResult) => [name, mtu, gb(r), rt(r), r.retransmits];
  out.push(table(['path', 'MTU', 'TCP Gbit/s', 'RTT ms', 'retransmits'], [
    limRow('**limit, same host**: bare veth pair between two namespaces', 1500, lim.veth),
    limRow('**limit, across hosts (direct)**: host eth0 -> underlay bridge -> host eth0', 1500, lim.underlay),
    limRow('**limit, across hosts (VXLAN)**: a VXLAN link between the two hosts over that underlay', 1450, lim.vxlan),
    limRow('reference, same host: two namespaces on a hand-made bridge', 1500, lim.bridge),
    limRow('reference, across hosts: hand-made bridge + VXLAN on each host, a veth to a VM namespace', 1450, lim.bridgeVxlan),
  ]));
  for (const [name, r] of Object.entries(lim) as [string, PathResult][]) if (r.error) out.push('', `${name}: ${cell(r.error, 300)}`);
  out.push('');

  const body: string[][] = [];
  const bareRow = rows.find((r) => r.label !== r.type && r.type === 'vxlan/static');
  for (const row of rows) {
    for (const where of ['same', 'cross'] as const) {
      const r = row[where];
      const { limit, limitName, ref } = baseOf(row, where, lim);
      const tr = r.gbps / limit.gbps;
      const rr = limit.rttMs / r.rttMs;
      const tOk = tr >= TARGET;
      const rOk = rr >= TARGET;
      const full = where === 'same' ? row.fullSame : row.fullCross;
      body.push([
        row.label, where === 'same' ? 'same host' : 'across hosts', `${row.mtu}${full === undefined ? '' : full ? ' ok' : ' **dropped**'}`,
        gb(r), `${fx(tr)} (${limitName})`, Number.isFinite(tr) ? verdict(tOk) : '**failed**',
        rt(r), fx(rr), Number.isFinite(rr) ? verdict(rOk) : '-', ref ? `${fx(r.gbps / ref.gbps)} / ${fx(ref.rttMs / r.rttMs)}` : '-', String(r.retransmits),
        cell(row.error ?? cause(row, where, lim, tOk, rOk, row.type === 'vxlan/static' ? bareRow : undefined), 300),
      ]);
    }
  }
  out.push('### Network types in the lab (lsdn apply in each simulated host)', '');
  out.push(table(['type', 'path', 'virt MTU, full-size frame', 'TCP Gbit/s', 'ratio (limit)', 'throughput >= 0.9', 'RTT ms', 'RTT ratio', 'RTT >= 0.9', 'vs hand-made shape (tput / RTT)', 'retransmits', 'cause when missed (tput / RTT ratios)'], body));
  out.push('');
  const withFw = rows.find((r) => r.label === 'vxlan/static');
  const bare = rows.find((r) => r.label !== r.type && r.type === 'vxlan/static');
  if (withFw && bare) {
    const cmp = (w: 'same' | 'cross') => `${gb(withFw[w])} vs ${gb(bare[w])} Gbit/s (${fx(withFw[w].gbps / bare[w].gbps)}), RTT ${rt(withFw[w])} vs ${rt(bare[w])} ms`;
    out.push(`Anti-spoofing on vs off (vxlan/static): same host ${cmp('same')}; across hosts ${cmp('cross')}.`, '');
  }
  out.push('Every virt has lsdn\'s default firewall (anti-spoofing: an nftables bridge chain per VM port checking source MAC and IPs), ' +
    'as a user gets it; the "anti-spoofing off" row is the same vxlan/static lab without it.', '');
  if (skipped.length) out.push(`Not runnable on this kernel (lsdn doctor), not measured: ${skipped.join('; ')}.`, '');
  return out.join('\n');
}
