/**
 * `lsdn trace`: the path and verdict of one frame from a virt, computed from the model alone by
 * walking what the compiler produced for each host (src/compile: the same HostState apply
 * converges the kernel on), not from a second model of the datapath. Pure.
 *
 * The walk: the source virt's port on its net's bridge, its rate shaper, the bridge family's
 * hooks of lsdn's nft table (prerouting: the virt's `out` chain; forward: address-server
 * isolation; postrouting: the receiver's `in` chain), the bridge's forwarding (static FDB
 * entries, or learning and flooding), the uplink (a tunnel device with its VNI, outer source,
 * destination and port, a VLAN, the underlay itself), the remote host's device of the same
 * VNI, its bridge, the receiver's chain, shaper and port. On a routed (public) net a frame to
 * the gateway is routed by the host: the host guard, the forward chains and NAT.
 *
 * The trace follows the first packet of a connection (conntrack state new, no mark). Each hop
 * names the compiled objects it relies on (their keys), which `lsdn trace --live` checks
 * against the kernel. A firewall verdict names the line and where it comes from (rule N of
 * virt X, its default, anti-spoofing and why: src/policy/firewall.ts LineOrigin).
 */
import ipaddr from 'ipaddr.js';
import type { Net, Netmodel, Phys, Virt } from '../model/netmodel.js';
import { normalizeMac, parsePrefix } from '../core/addr.js';
import { UsageError } from '../core/errors.js';
import type { FdbObject, HostState, KernelObject, NftTableObject } from '../core/objects.js';
import { nftTableName, ownedIfname, virtChainName } from '../core/names.js';
import { compileHost } from '../compile/compile.js';
import { assignAddresses, type VirtAddressing } from '../ipam/ipam.js';
import { inChainEntries, outChainEntries, virtAddresses, type LineOrigin } from '../policy/firewall.js';
import { networkType } from '../types/registry.js';
import { ZERO_MAC } from '../types/common.js';
import { icmpTypeNumber } from '../core/rules.js';
import { BROADCAST, describeFrame, evalLine, isGroupMac, UnknownLineError, type Frame, type HookContext, type L4 } from './packet.js';

export type TraceProto = 'tcp' | 'udp' | 'icmp' | 'arp';

export interface TraceRequest {
  /** The sending virt, "NET/VIRT". */
  from: string;
  /** A virt ("NET/VIRT"), an IP address or a MAC (ff:ff:ff:ff:ff:ff: broadcast). */
  to: string;
  /** Default icmp (an echo request). */
  proto?: TraceProto;
  sport?: number;
  dport?: number;
  /** icmp: the ICMP type, a number or nft's name (default echo-request; echo-reply traces a ping's answer). */
  icmpType?: number | string;
  /** Trace a frame the VM sends with another source than the model's (what anti-spoofing judges). */
  srcIp?: string;
  srcMac?: string;
}

export type HopStep = 'port' | 'shaper' | 'firewall' | 'bridge' | 'tunnel' | 'underlay' | 'route' | 'nat' | 'host' | 'deliver' | 'drop';

/** One thing that happens to the frame on one host. */
export interface Hop {
  /** The phys (host) where it happens; "underlay" between hosts, "outside" beyond an uplink. */
  host: string;
  step: HopStep;
  text: string;
  /** Keys of the compiled objects (on `host`) this hop relies on: what `--live` checks. */
  objects?: string[];
  /** Firewall hops: the table, chain and line that decided, and where the line comes from. */
  table?: string;
  chain?: string;
  line?: string;
  origin?: LineOrigin;
  /** Tunnel hops: the encapsulation. */
  encap?: { type: string; vni?: number; src?: string; dst: string[]; port?: number; dev: string };
}

export interface TracePath {
  /** Who the path ends at (a virt id, "outside", a host). */
  to: string;
  verdict: 'delivered' | 'dropped';
  reason: string;
  hops: Hop[];
}

export interface TraceResult {
  from: string;
  to: string;
  /** What is sent, in words, and the frame. */
  packet: string;
  frame: Frame;
  verdict: 'delivered' | 'dropped';
  reason: string;
  hops: Hop[];
  /** Broadcast: the path to each receiver after the source's bridge (`hops` is the shared part). */
  branches?: TracePath[];
}

// ---- the request -------------------------------------------------------------------------------

type Target = { kind: 'virt'; virt: Virt } | { kind: 'ip'; ip: string; family: 4 | 6 } | { kind: 'mac'; mac: string };

function isIp(s: string): boolean {
  return ipaddr.isValid(s) && (s.includes(':') || /^\d+\.\d+\.\d+\.\d+$/.test(s));
}

function parseTarget(model: Netmodel, to: string): Target {
  const v = model.virt(to);
  if (v) return { kind: 'virt', virt: v };
  if (isIp(to)) {
    const a = ipaddr.parse(to);
    return { kind: 'ip', ip: a.toString(), family: a.kind() === 'ipv4' ? 4 : 6 };
  }
  const mac = normalizeMac(to);
  if (mac) return { kind: 'mac', mac };
  if (to.includes('/')) throw new UsageError(`trace: no virt "${to}" in the model (NET/VIRT)`);
  throw new UsageError(`trace: "${to}" is neither a virt (NET/VIRT), an IP address nor a MAC`);
}

function addrs(v: Virt, addressing: Map<string, VirtAddressing>): { v4: string[]; v6: string[] } {
  return virtAddresses(v, addressing.get(v.id));
}

function sameIp(a: string, b: string): boolean {
  try {
    return ipaddr.parse(a).toNormalizedString() === ipaddr.parse(b).toNormalizedString();
  } catch {
    return false;
  }
}

/** The virt of `net` that has address `ip`. */
function virtByIp(net: Net, ip: string, addressing: Map<string, VirtAddressing>): Virt | undefined {
  for (const v of net.virts.values()) {
    const a = addrs(v, addressing);
    if ([...a.v4, ...a.v6].some((x) => sameIp(x, ip))) return v;
  }
  return undefined;
}

function virtByMac(net: Net, mac: string): Virt | undefined {
  return [...net.virts.values()].find((v) => v.mac !== undefined && normalizeMac(v.mac) === mac);
}

function inSubnet(net: Net, ip: string): boolean {
  const sub = isIp(ip) && ipaddr.parse(ip).kind() === 'ipv4' ? net.ipv4 : net.ipv6;
  const p = sub ? parsePrefix(sub.spec.prefix) : undefined;
  if (!p) return false;
  try {
    return ipaddr.parse(ip).match(ipaddr.parseCIDR(`${p.ip}/${p.len}`));
  } catch {
    return false;
  }
}

// ---- the walk ---------------------------------------------------------------------------------

/** One host's compiled state, computed once per trace. */
class Hosts {
  private readonly states = new Map<string, HostState>();
  constructor(readonly model: Netmodel, readonly addressing: Map<string, VirtAddressing>) {}
  state(p: Phys): HostState {
    let s = this.states.get(p.name);
    if (!s) {
      s = compileHost(this.model, p.name, { addressing: this.addressing });
      this.states.set(p.name, s);
    }
    return s;
  }
}

class Stop extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** The devices enslaved to `bridge` in a state: virt ports, tunnels/uplinks, address servers. */
function bridgePorts(state: HostState, bridge: string): { dev: string; key: string; obj: KernelObject; flood: boolean; bcast: boolean; isolated: boolean }[] {
  const out: { dev: string; key: string; obj: KernelObject; flood: boolean; bcast: boolean; isolated: boolean }[] = [];
  for (const [key, o] of state.objects) {
    if ((o.kind === 'link' || o.kind === 'port') && o.master === bridge) {
      out.push({ dev: o.name, key, obj: o, flood: o.brport?.flood !== false, bcast: o.brport?.bcast_flood !== false, isolated: o.brport?.isolated === true });
    }
    if (o.kind === 'dhcp' && o.bridge === bridge) out.push({ dev: o.port, key, obj: o, flood: true, bcast: true, isolated: false });
  }
  return out.sort((a, b) => (a.dev < b.dev ? -1 : a.dev > b.dev ? 1 : 0));
}

function masterEntry(state: HostState, ports: readonly { dev: string }[], mac: string): FdbObject | undefined {
  const devs = new Set(ports.map((p) => p.dev));
  for (const o of state.objects.values()) {
    if (o.kind === 'fdb' && o.table === 'master' && devs.has(o.dev) && normalizeMac(o.mac) === mac) return o;
  }
  return undefined;
}

function fmtRate(bits: number): string {
  if (bits >= 1e9 && bits % 1e6 === 0) return `${bits / 1e9} Gbit/s`;
  if (bits >= 1e6) return `${Math.round(bits / 1e4) / 100} Mbit/s`;
  if (bits >= 1e3) return `${Math.round(bits / 10) / 100} kbit/s`;
  return `${bits} bit/s`;
}

interface Walk {
  model: Netmodel;
  hosts: Hosts;
  frame: Frame;
  ctx: string;
  hops: Hop[];
}

interface FirewallDecision {
  verdict: 'accept' | 'drop' | 'none';
  hop?: Hop;
}

/** The origin of line `index` of chain `chain` on host `phys`, when it is a virt's chain there. */
function lineOrigin(w: Walk, phys: Phys, chain: string, lines: readonly string[], index: number): LineOrigin | undefined {
  for (const v of phys.virts()) {
    for (const dir of ['out', 'in'] as const) {
      if (virtChainName(w.model.name, v.net.name, v.name, dir) !== chain) continue;
      const entries = dir === 'out' ? outChainEntries(v, w.hosts.addressing.get(v.id)) : inChainEntries(v);
      // The compiled chain is these entries' lines: an origin only where they agree.
      if (entries.length === lines.length && entries.every((e, k) => e.line === lines[k])) return entries[index]?.origin;
    }
  }
  return undefined;
}

/**
 * Run one hook of one nft table of a host: the base chain's lines, jumps into regular chains
 * (accept and drop end the hook, a regular chain that decides nothing returns). The policy of
 * lsdn's base chains is accept.
 */
interface HookResult {
  verdict: 'accept' | 'drop' | 'masquerade' | 'none';
  chain?: string;
  line?: string;
  index?: number;
  origin?: LineOrigin;
  /** The regular chains the frame was sent to (a virt's chain). */
  visited?: string[];
}

function runHook(w: Walk, phys: Phys, table: NftTableObject | undefined, chain: string, h: HookContext): HookResult {
  const lines = table?.chains[chain];
  if (!table || !lines) return { verdict: 'none' };
  const visited: string[] = [];
  const run = (name: string, depth: number): HookResult | undefined => {
    const body = table.chains[name];
    if (depth > 0) visited.push(name);
    if (!body) throw new Stop(`chain ${name} of nft ${table.family} ${table.name} on ${phys.name} is jumped to but not compiled`);
    if (depth > 16) throw new Stop(`too many jumps in nft ${table.family} ${table.name}`);
    for (let k = 0; k < body.length; k++) {
      let r;
      try {
        r = evalLine(body[k] as string, w.frame, h);
      } catch (e) {
        if (e instanceof UnknownLineError) throw new Stop(`${e.message} (chain ${name} of nft ${table.family} ${table.name} on ${phys.name})`);
        throw e;
      }
      if (!r.matched || !r.verdict) continue;
      const v = r.verdict;
      if (v.kind === 'continue') continue;
      if (v.kind === 'jump') {
        const sub = run(v.chain, depth + 1);
        if (sub) return sub;
        continue;
      }
      return { verdict: v.kind, chain: name, line: body[k], index: k, origin: lineOrigin(w, phys, name, body, k) };
    }
    return undefined;
  };
  return run(chain, 0) ?? { verdict: 'none', visited };
}

function originText(o: LineOrigin | undefined, line: string): string {
  if (!o) return `line "${line}"`;
  switch (o.kind) {
    case 'rule':
      return `${o.why}: "${line}"`;
    case 'default':
      return o.why;
    case 'anti-spoof':
      return `anti-spoofing of virt ${o.virt}: ${o.why}`;
    case 'stateful':
      return `stateful filtering of virt ${o.virt}: ${o.why} ("${line}")`;
    case 'allowance':
      return `an allowance of virt ${o.virt}: ${o.why} ("${line}")`;
    default:
      return `${o.why} ("${line}")`;
  }
}

/** The bridge family's hook `chain` (prerouting, forward, postrouting) of lsdn's table on `phys`. */
function bridgeHook(w: Walk, phys: Phys, chain: 'prerouting' | 'forward' | 'postrouting', h: HookContext, what: string): FirewallDecision {
  const state = w.hosts.state(phys);
  const key = `nft bridge ${nftTableName(w.ctx)}`;
  const table = state.get(key) as NftTableObject | undefined;
  const r = runHook(w, phys, table, chain, h);
  if (r.verdict === 'none' || r.verdict === 'masquerade') {
    // Nothing decided: only worth a hop where the virt has a chain at all (prerouting/postrouting) or servers are guarded.
    const seen = r.visited ?? [];
    // The forward hook matters only where a line of it decides (address-server isolation).
    if (!table?.chains[chain] || (chain === 'forward' && !seen.length)) return { verdict: 'none' };
    if (!seen.length) return { verdict: 'none' };
    const hop: Hop = { host: phys.name, step: 'firewall', text: `${what}: passes chain ${seen.join(', ')} (no line drops it; policy accept)`, objects: [key], table: key, chain: seen[seen.length - 1] as string };
    return { verdict: 'none', hop };
  }
  const decided = `${r.verdict === 'drop' ? 'dropped' : 'accepted'} by ${originText(r.origin, r.line ?? '')}`;
  const hop: Hop = { host: phys.name, step: 'firewall', text: `${what}: ${decided} (chain ${r.chain})`, objects: [key], table: key, chain: r.chain, ...(r.line !== undefined ? { line: r.line } : {}), ...(r.origin ? { origin: r.origin } : {}) };
  return { verdict: r.verdict, hop };
}

function dropReason(hop: Hop): string {
  const o = hop.origin;
  if (!o) return `dropped on ${hop.host} by chain ${hop.chain}: "${hop.line}"`;
  if (o.kind === 'rule') return `dropped by rule ${o.rule} of virt ${o.virt} (${o.direction})`;
  if (o.kind === 'default') return `dropped by the default of virt ${o.virt} (policy ${o.direction}: drop)`;
  if (o.kind === 'anti-spoof') return `dropped by anti-spoofing of virt ${o.virt} because ${o.why}`;
  if (o.kind === 'stateful') return `dropped by stateful filtering of virt ${o.virt}: ${o.why}`;
  return `dropped on ${hop.host}: ${o.why}`;
}

/** Apply a firewall decision: record its hop; a drop ends the path. */
function firewall(w: Walk, d: FirewallDecision): void {
  if (d.hop) w.hops.push(d.hop);
  if (d.verdict === 'drop' && d.hop) throw new Stop(dropReason(d.hop));
}

/** The uplinks of a net's bridge: the ports that lead to other hosts. */
function isUplink(o: KernelObject, phys: Phys): boolean {
  if (o.kind === 'link') return o.type === 'vxlan' || o.type === 'geneve' || o.type === 'vlan' || o.type === 'macvlan';
  return o.kind === 'port' && o.name === phys.if && !phys.virts().some((v) => v.if === o.name);
}

/** Where a frame arrives after leaving `phys` by uplink `dev` toward `remote`: the remote's device and bridge. */
interface Arrival {
  phys: Phys;
  dev: string;
  key: string;
  bridge: string;
}

function arrivalOn(w: Walk, remote: Phys, from: Phys, up: KernelObject): Arrival | undefined {
  const state = w.hosts.state(remote);
  for (const [key, o] of state.objects) {
    if (up.kind === 'port' && o.kind === 'port' && o.name === remote.if && !remote.virts().some((v) => v.if === o.name)) {
      return { phys: remote, dev: o.name, key, bridge: o.master };
    }
    if (up.kind !== 'link' || o.kind !== 'link' || o.type !== up.type || !o.master) continue;
    if (o.type === 'vxlan' && o.attrs.id === up.attrs.id && o.attrs.dstport === up.attrs.dstport) return { phys: remote, dev: o.name, key, bridge: o.master };
    if (o.type === 'geneve' && o.attrs.id === up.attrs.id && o.attrs.dstport === up.attrs.dstport && from.ip !== undefined && sameIp(String(o.attrs.remote), from.ip)) {
      return { phys: remote, dev: o.name, key, bridge: o.master };
    }
    if (o.type === 'vlan' && o.attrs.id === up.attrs.id) return { phys: remote, dev: o.name, key, bridge: o.master };
  }
  return undefined;
}

function physByIp(model: Netmodel, ip: string): Phys | undefined {
  return [...model.physes.values()].find((p) => p.ip !== undefined && sameIp(p.ip, ip));
}

/** The net a bridge of a host belongs to (by the bridge's alias). */
function netOfBridge(w: Walk, phys: Phys, bridge: string): Net | undefined {
  for (const n of phys.nets) if (ownedIfname(w.model.name, 'b', n.name) === bridge) return n;
  return undefined;
}

interface Receiver {
  /** The virt the frame should reach (unicast), or every virt of the net (broadcast). */
  virt?: Virt;
}

/**
 * The frame inside a bridge on `phys`, having come in by `ingress`: forward it (FDB or flood)
 * toward the receiver, and on toward its port or another host. Returns the paths' ends.
 */
function inBridge(w: Walk, phys: Phys, net: Net, bridge: string, ingress: string, fromTunnel: boolean, rx: Receiver, paths: (p: TracePath) => void): void {
  const state = w.hosts.state(phys);
  const ports = bridgePorts(state, bridge).filter((p) => p.dev !== ingress);
  const inPort = bridgePorts(state, bridge).find((p) => p.dev === ingress);
  const learning = networkType(net.effectiveSettings()!.type).learning;
  const mac = w.frame.dstMac;
  const group = isGroupMac(mac);
  const brKey = `link ${bridge}`;
  // Isolated ports (point-to-point tunnels) never forward to each other.
  const reachable = ports.filter((p) => !(inPort?.isolated && p.isolated));
  let out: typeof ports;
  if (group) {
    out = reachable.filter((p) => p.bcast);
    w.hops.push({ host: phys.name, step: 'bridge', text: `bridge ${bridge} of net ${net.name}: ${mac === BROADCAST ? 'broadcast' : 'multicast'}, flooded to ${out.map((p) => p.dev).join(', ') || 'no port'}`, objects: [brKey, ...out.map((p) => p.key)] });
  } else {
    const entry = masterEntry(state, ports, mac);
    if (entry) {
      const p = ports.find((x) => x.dev === entry.dev)!;
      w.hops.push({ host: phys.name, step: 'bridge', text: `bridge ${bridge} of net ${net.name}: static entry ${mac} -> ${entry.dev}`, objects: [brKey, `fdb ${entry.dev} ${entry.mac} master`, p.key] });
      out = [p];
    } else if (!learning || !reachable.some((p) => p.flood)) {
      w.hops.push({ host: phys.name, step: 'bridge', text: `bridge ${bridge} of net ${net.name}: no entry for ${mac}, and its ports take no unknown unicast (static net)`, objects: [brKey] });
      throw new Stop(`no such MAC in a static net: net ${net.name} has no entry for ${mac} on ${phys.name}${rx.virt ? ` (virt ${rx.virt.id} ${rx.virt.mac ? 'is not where the model programs it' : 'has no MAC in the model'})` : ''}`);
    } else {
      // A learning bridge: flooded until learned; the frame that matters takes the port toward the receiver.
      const toward = rx.virt ? towardPort(w, phys, reachable, rx.virt) : undefined;
      const flooded = reachable.filter((p) => p.flood).map((p) => p.dev);
      if (!toward) {
        w.hops.push({ host: phys.name, step: 'bridge', text: `bridge ${bridge} of net ${net.name}: ${mac} unknown, flooded to ${flooded.join(', ') || 'no port'}`, objects: [brKey] });
        if (!rx.virt) throw new Stop(`no virt of net ${net.name} has MAC ${mac}: flooded, nobody in the model receives it`);
        throw new Stop(`net ${net.name} has no way from ${phys.name} to virt ${rx.virt.id} on ${rx.virt.phys?.name ?? '(not connected)'}${networkType(net.effectiveSettings()!.type).routed ? ' (a public net is one segment per host: nothing crosses hosts at L2)' : ''}`);
      }
      w.hops.push({ host: phys.name, step: 'bridge', text: `bridge ${bridge} of net ${net.name}: ${mac} learned on ${toward.dev} (flooded to ${flooded.join(', ')} until learned)`, objects: [brKey, toward.key] });
      out = [toward];
    }
  }
  // Frames from a tunnel never go back into the mesh (split horizon: isolated ports, or the
  // receiving host's devices that lead nowhere else): only local ports matter then.
  for (const p of out) {
    const save = w.hops.length;
    const hops = [...w.hops];
    try {
      if (p.obj.kind === 'dhcp') {
        if (group && !rx.virt) continue;
        continue;
      }
      if (isUplink(p.obj, phys)) {
        if (fromTunnel) continue;
        leaveHost(w, phys, net, bridge, ingress, p.obj, rx, paths);
      } else {
        const v = phys.virts().find((x) => x.if === p.dev && x.net === net);
        if (!v) continue;
        if (rx.virt && v !== rx.virt && !group) {
          paths({ to: v.id, verdict: 'dropped', reason: `isolated: the frame reaches virt ${v.id} (same MAC ${mac}), not ${rx.virt.id}`, hops: [...w.hops] });
          continue;
        }
        if (rx.virt && group && v !== rx.virt) continue;
        deliverLocal(w, phys, v, ingress, paths);
      }
    } catch (e) {
      if (!(e instanceof Stop)) throw e;
      paths({ to: rx.virt?.id ?? p.dev, verdict: 'dropped', reason: e.reason, hops: [...w.hops] });
    } finally {
      w.hops.length = 0;
      w.hops.push(...hops.slice(0, save));
    }
  }
}

/** On a learning bridge: the port toward the receiver (its own port here, else the uplink toward its host). */
function towardPort<T extends { dev: string; obj: KernelObject }>(w: Walk, phys: Phys, ports: T[], v: Virt): T | undefined {
  if (v.phys === phys) return ports.find((p) => p.dev === v.if);
  const remote = v.phys;
  if (!remote) return undefined;
  for (const p of ports) {
    const o = p.obj;
    if (o.kind === 'link' && o.type === 'geneve' && remote.ip && sameIp(String(o.attrs.remote), remote.ip)) return p;
    if (o.kind === 'link' && (o.type === 'vxlan' || o.type === 'vlan') && arrivalOn(w, remote, phys, o)) return p;
    if (o.kind === 'port' && isUplink(o, phys) && arrivalOn(w, remote, phys, o)) return p;
  }
  return undefined;
}

/** The receiving port on this host: the `in` chain, the shaper, the port. */
function deliverLocal(w: Walk, phys: Phys, v: Virt, ingress: string, paths: (p: TracePath) => void): void {
  firewall(w, bridgeHook(w, phys, 'forward', { iif: ingress, oif: v.if }, `firewall (forward) ${ingress} -> ${v.if}`));
  const post = bridgeHook(w, phys, 'postrouting', { iif: ingress, oif: v.if }, `firewall (in) of virt ${v.id}`);
  if (!post.hop) w.hops.push({ host: phys.name, step: 'firewall', text: `firewall (in) of virt ${v.id}: not filtered` });
  firewall(w, post);
  const state = w.hosts.state(phys);
  const q = state.get(`qdisc ${v.if} root`);
  if (q?.kind === 'qdisc' && q.type === 'tbf') {
    w.hops.push({ host: phys.name, step: 'shaper', text: `rate shaper (in) on ${v.if}: tbf ${fmtRate(q.rate ?? 0)}, burst ${q.burst} bytes (queued, not dropped, up to the limit)`, objects: [`qdisc ${v.if} root`] });
  }
  const portKey = `port ${v.if}`;
  w.hops.push({ host: phys.name, step: 'deliver', text: `delivered to virt ${v.id} on port ${v.if}${v.tap ? ' (a tap lsdn made)' : ''}`, objects: [portKey, ...(v.tap ? [`tap ${v.if}`] : [])] });
  paths({ to: v.id, verdict: 'delivered', reason: `delivered to virt ${v.id} on ${phys.name}`, hops: [...w.hops] });
}

/** Out of `phys` by uplink `up`: the encapsulation, the underlay, the remote host's device. */
function leaveHost(w: Walk, phys: Phys, net: Net, bridge: string, ingress: string, up: KernelObject, rx: Receiver, paths: (p: TracePath) => void): void {
  const state = w.hosts.state(phys);
  const upKey = up.kind === 'link' ? `link ${up.name}` : `port ${(up as { name: string }).name}`;
  firewall(w, bridgeHook(w, phys, 'forward', { iif: ingress, oif: (up as { name: string }).name }, `firewall (forward) ${ingress} -> ${(up as { name: string }).name}`));
  const mac = w.frame.dstMac;
  const group = isGroupMac(mac);
  let remotes: Phys[] = [];
  if (up.kind === 'link' && up.type === 'vxlan') {
    const self = [...state.objects.values()].filter((o): o is FdbObject => o.kind === 'fdb' && o.table === 'self' && o.dev === up.name);
    const exact = group ? undefined : self.find((o) => normalizeMac(o.mac) === mac);
    const zeros = self.filter((o) => o.mac === ZERO_MAC).map((o) => o.dst as string);
    const vni = Number(up.attrs.id);
    const port = Number(up.attrs.dstport);
    const src = up.attrs.local !== undefined ? String(up.attrs.local) : phys.ip;
    const keys = [upKey];
    let dst: string[];
    let how: string;
    if (exact?.dst) {
      dst = [exact.dst];
      how = `entry ${mac} -> ${exact.dst}`;
      keys.push(`fdb ${up.name} ${exact.mac} dst ${exact.dst}`);
    } else if (up.attrs.learning === false && !zeros.length) {
      throw new Stop(`VXLAN device ${up.name} on ${phys.name} has no entry for ${mac} and learns nothing`);
    } else if (group || !rx.virt?.phys?.ip) {
      dst = zeros.length ? zeros : up.attrs.group !== undefined ? [String(up.attrs.group)] : [];
      how = zeros.length ? 'head-end replication to every host of the net (all-zeros entries)' : `the multicast group ${String(up.attrs.group)}`;
      for (const z of zeros) keys.push(`fdb ${up.name} ${ZERO_MAC} dst ${z}`);
    } else {
      const target = rx.virt.phys.ip;
      const via = zeros.length ? `head-end replication to ${zeros.join(', ')}` : up.attrs.group !== undefined ? `multicast group ${String(up.attrs.group)}` : 'nothing';
      if (up.attrs.learning === false) {
        if (!zeros.includes(target)) throw new Stop(`VXLAN device ${up.name} on ${phys.name} has no entry for ${mac} (static: it learns nothing)`);
        dst = [target];
        how = `unknown ${mac}: sent by head-end replication to ${zeros.join(', ')}`;
      } else {
        dst = [target];
        how = `learned ${mac} -> ${target} (sent by ${via} until learned)`;
      }
      for (const z of zeros) keys.push(`fdb ${up.name} ${ZERO_MAC} dst ${z}`);
    }
    w.hops.push({ host: phys.name, step: 'tunnel', text: `VXLAN ${up.name}: VNI ${vni}, ${how}; outer ${src ?? '?'} -> ${dst.join(', ') || '(nobody)'} UDP port ${port}`, objects: keys, encap: { type: 'vxlan', vni, ...(src ? { src } : {}), dst, port, dev: up.name } });
    remotes = dst.map((d) => physByIp(w.model, d)).filter((p): p is Phys => p !== undefined && p !== phys);
    if (!group && rx.virt?.phys) remotes = remotes.filter((p) => p === rx.virt!.phys);
  } else if (up.kind === 'link' && up.type === 'geneve') {
    const remote = String(up.attrs.remote);
    const vni = Number(up.attrs.id);
    const port = Number(up.attrs.dstport);
    w.hops.push({ host: phys.name, step: 'tunnel', text: `Geneve ${up.name}: VNI ${vni}, outer ${phys.ip ?? '?'} -> ${remote} UDP port ${port}`, objects: [upKey], encap: { type: 'geneve', vni, ...(phys.ip ? { src: phys.ip } : {}), dst: [remote], port, dev: up.name } });
    const p = physByIp(w.model, remote);
    remotes = p ? [p] : [];
  } else if (up.kind === 'link' && up.type === 'vlan') {
    w.hops.push({ host: phys.name, step: 'tunnel', text: `VLAN ${up.name}: tagged ${String(up.attrs.id)} on ${up.lower ?? '?'}`, objects: [upKey], encap: { type: 'vlan', vni: Number(up.attrs.id), dst: [], dev: up.name } });
    remotes = [...net.physes].filter((p) => p !== phys);
  } else {
    w.hops.push({ host: phys.name, step: 'tunnel', text: `underlay ${(up as { name: string }).name}: the frame leaves untagged (direct)`, objects: [upKey], encap: { type: 'direct', dst: [], dev: (up as { name: string }).name } });
    remotes = [...net.physes].filter((p) => p !== phys);
  }
  if (!group && rx.virt) remotes = remotes.filter((p) => p === rx.virt!.phys);
  if (!remotes.length) throw new Stop(rx.virt ? `the frame leaves ${phys.name} but never reaches ${rx.virt.phys?.name ?? 'the host of ' + rx.virt.id}` : `no host of the model is behind ${(up as { name: string }).name}`);
  for (const remote of remotes.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const save = [...w.hops];
    try {
      const arr = arrivalOn(w, remote, phys, up);
      if (!arr) throw new Stop(`host ${remote.name} has no device for this ${up.kind === 'link' ? `${up.type}${up.attrs.id !== undefined ? ` id ${String(up.attrs.id)}` : ''}` : 'underlay'}: net ${net.name} is not attached there`);
      const rnet = netOfBridge(w, remote, arr.bridge);
      w.hops.push({ host: remote.name, step: 'underlay', text: `received on ${arr.dev}${up.kind === 'link' && up.type !== 'vlan' ? ' (decapsulated)' : ''}, a port of bridge ${arr.bridge} (net ${rnet?.name ?? '?'})`, objects: [arr.key] });
      if (!rnet || rnet !== net) throw new Stop(`host ${remote.name} puts this traffic into ${rnet ? `net ${rnet.name}` : `bridge ${arr.bridge}`}, not net ${net.name}`);
      inBridge(w, remote, net, arr.bridge, arr.dev, true, rx, paths);
    } catch (e) {
      if (!(e instanceof Stop)) throw e;
      paths({ to: rx.virt?.id ?? remote.name, verdict: 'dropped', reason: e.reason, hops: [...w.hops] });
    } finally {
      w.hops.length = 0;
      w.hops.push(...save);
    }
  }
}

/** A frame to the gateway of a routed (public) net: the host routes it (or answers it). */
function routed(w: Walk, phys: Phys, net: Net, bridge: string, gateway: string, paths: (p: TracePath) => void): void {
  const state = w.hosts.state(phys);
  const ip = w.frame.ip;
  const inet = state.get(`nft inet ${nftTableName(w.ctx)}`) as NftTableObject | undefined;
  const ipt = state.get(`nft ip ${nftTableName(w.ctx)}`) as NftTableObject | undefined;
  if (!ip) throw new Stop('internal: a routed frame without IP');
  const guard = (chain: 'input' | 'forward', h: HookContext, what: string, table: NftTableObject | undefined): void => {
    const r = runHook(w, phys, table, chain, h);
    const key = table ? `nft ${table.family} ${table.name}` : undefined;
    if (r.verdict === 'drop') {
      w.hops.push({ host: phys.name, step: 'firewall', text: `${what}: dropped by "${r.line}" (chain ${r.chain})`, ...(key ? { objects: [key], table: key } : {}), chain: r.chain ?? chain, line: r.line ?? '' });
      throw new Stop(`dropped by the ${what} of host ${phys.name}: "${r.line}"`);
    }
    if (table?.chains[chain]) w.hops.push({ host: phys.name, step: 'firewall', text: `${what}: ${r.verdict === 'accept' ? `accepted by "${r.line}"` : 'no line decides, accepted'} (chain ${r.chain ?? chain})`, objects: [key as string], table: key as string, chain: r.chain ?? chain, ...(r.line ? { line: r.line } : {}) });
  };
  if (sameIp(ip.dst, gateway)) {
    w.hops.push({ host: phys.name, step: 'host', text: `to the gateway ${gateway} on bridge ${bridge}: the host itself`, objects: [`addr ${bridge} ${net.ipv4 ? gatewayOf(state, bridge) : ''}`] });
    guard('input', { iif: bridge }, 'host guard (input)', inet);
    w.hops.push({ host: phys.name, step: 'deliver', text: `delivered to host ${phys.name} (the gateway of net ${net.name})` });
    paths({ to: `host ${phys.name}`, verdict: 'delivered', reason: `delivered to host ${phys.name}, the gateway ${gateway} of net ${net.name}`, hops: [...w.hops] });
    return;
  }
  const o = net.effectiveSettings()?.options as { uplink?: string; mode?: string } | undefined;
  const uplink = o?.uplink ?? phys.if;
  if (!uplink) throw new Stop(`host ${phys.name} has no uplink for net ${net.name}`);
  w.hops.push({ host: phys.name, step: 'route', text: `routed by host ${phys.name} (gateway ${gateway}) out of uplink ${uplink}`, objects: ['sysctl net.ipv4.ip_forward'] });
  guard('forward', { iif: bridge, oif: uplink }, 'host guard (forward)', inet);
  guard('forward', { iif: bridge, oif: uplink }, 'public forwarding', ipt);
  const nat = runHook(w, phys, ipt, 'postrouting', { iif: bridge, oif: uplink });
  if (nat.verdict === 'masquerade') {
    w.hops.push({ host: phys.name, step: 'nat', text: `source ${ip.src} masqueraded to ${uplink}'s address ("${nat.line}")`, objects: [`nft ip ${nftTableName(w.ctx)}`], table: `nft ip ${nftTableName(w.ctx)}`, chain: 'postrouting', line: nat.line ?? '' });
  } else {
    w.hops.push({ host: phys.name, step: 'nat', text: `not translated: source ${ip.src} leaves as it is (mode routed: the outside routes the subnet to the hosts)` });
  }
  w.hops.push({ host: 'outside', step: 'deliver', text: `leaves ${phys.name} by ${uplink} toward ${ip.dst}` });
  paths({ to: 'outside', verdict: 'delivered', reason: `routed out of uplink ${uplink} of ${phys.name}${nat.verdict === 'masquerade' ? ' (NAT)' : ''} toward ${ip.dst}`, hops: [...w.hops] });
}

function gatewayOf(state: HostState, bridge: string): string {
  for (const o of state.objects.values()) if (o.kind === 'addr' && o.dev === bridge) return o.prefix;
  return '';
}

// ---- the entry point --------------------------------------------------------------------------

function pickFamily(a: { v4: string[]; v6: string[] }, b?: { v4: string[]; v6: string[] }): 4 | 6 | undefined {
  if (a.v4.length && (!b || b.v4.length)) return 4;
  if (a.v6.length && (!b || b.v6.length)) return 6;
  return undefined;
}

function globalFirst(list: string[]): string | undefined {
  return list.find((x) => !/^fe[89ab]/i.test(x)) ?? list[0];
}

/** The ICMP type of an icmp trace: echo-request unless the request names another. */
function icmpTypeOf(l4: 'icmp' | 'icmpv6', t: number | string | undefined): number {
  if (t === undefined) return l4 === 'icmp' ? 8 : 128;
  const n = icmpTypeNumber(l4, t);
  if (n === undefined) throw new UsageError(`trace: "${t}" is no ${l4 === 'icmp' ? 'ICMP' : 'ICMPv6'} type (a number 0..255 or a name nft knows, e.g. echo-request, echo-reply)`);
  return n;
}

/** Trace one frame through the model. Throws UsageError for a request that names nothing traceable. */
export function trace(model: Netmodel, req: TraceRequest, addressing: Map<string, VirtAddressing> = assignAddresses(model)): TraceResult {
  const from = model.virt(req.from);
  if (!from) throw new UsageError(`trace: no virt "${req.from}" in the model (FROM is NET/VIRT)`);
  if (!from.phys || !from.if) throw new UsageError(`trace: virt ${from.id} is not connected to a phys (no phys/if): it sends nothing`);
  const net = from.net;
  const settings = net.effectiveSettings();
  if (!settings) throw new UsageError(`trace: net ${net.name} has no settings`);
  const target = parseTarget(model, req.to);
  const proto = req.proto ?? 'icmp';
  if (req.icmpType !== undefined && proto !== 'icmp') throw new UsageError(`trace: an ICMP type is for --proto icmp, not ${proto}`);
  const srcAddrs = addrs(from, addressing);
  // The receiver and the frame's destination.
  let rxVirt: Virt | undefined;
  let dstIp: string | undefined;
  let dstMac: string | undefined;
  let foreign: Virt | undefined;
  if (target.kind === 'virt') {
    rxVirt = target.virt;
    if (rxVirt.net !== net) foreign = rxVirt;
  } else if (target.kind === 'ip') {
    dstIp = target.ip;
    rxVirt = virtByIp(net, target.ip, addressing);
    if (!rxVirt) foreign = model.virts().find((v) => v.net !== net && virtByIp(v.net, target.ip, addressing) === v);
  } else {
    dstMac = target.mac;
    if (!isGroupMac(target.mac)) rxVirt = virtByMac(net, target.mac);
  }
  const rxAddrs = rxVirt ? addrs(rxVirt, addressing) : foreign ? addrs(foreign, addressing) : undefined;
  const family: 4 | 6 | undefined = req.srcIp ? (req.srcIp.includes(':') ? 6 : 4) : target.kind === 'ip' ? target.family : pickFamily(srcAddrs, rxAddrs);
  const srcIp = req.srcIp ?? (family === 4 ? srcAddrs.v4[0] : family === 6 ? globalFirst(srcAddrs.v6) : undefined);
  if (dstIp === undefined && rxAddrs) dstIp = family === 4 ? rxAddrs.v4[0] : family === 6 ? globalFirst(rxAddrs.v6) : undefined;
  // Without addresses of a common family (an L2-only model) a virt or MAC target gets a plain Ethernet frame.
  const l2only = (target.kind === 'mac' || (target.kind === 'virt' && req.proto === undefined && !req.srcIp)) && (!rxVirt || srcIp === undefined || dstIp === undefined) && proto !== 'arp';
  if (!l2only && (srcIp === undefined || dstIp === undefined)) {
    const who = srcIp === undefined ? `virt ${from.id}` : `the receiver ${rxVirt?.id ?? foreign?.id ?? req.to}`;
    throw new UsageError(`trace: ${who} has no IP address of a common family in the model (give --src-ip, or trace TO a MAC)`);
  }
  const srcMac = req.srcMac ? normalizeMac(req.srcMac) : from.mac ? normalizeMac(from.mac) : undefined;
  if (req.srcMac && !srcMac) throw new UsageError(`trace: --src-mac ${req.srcMac} is not a MAC`);
  if (req.srcIp && !isIp(req.srcIp)) throw new UsageError(`trace: --src-ip ${req.srcIp} is not an IP address`);

  // Routed (public) nets: a destination off the subnet goes to the gateway, the host.
  const type = networkType(settings.type);
  const gateway = type.routed?.gateway(net)?.split('/')[0];
  const offLink = dstIp !== undefined && !inSubnet(net, dstIp);
  const toGateway = gateway !== undefined && dstIp !== undefined && (offLink || sameIp(dstIp, gateway)) && !foreign;
  const bridge = ownedIfname(model.name, 'b', net.name);
  if (dstMac === undefined) {
    if (proto === 'arp') dstMac = BROADCAST;
    else if (toGateway) dstMac = `(the MAC of bridge ${bridge})`;
    else if (rxVirt?.mac) dstMac = normalizeMac(rxVirt.mac);
    else if (foreign?.mac && !rxVirt) dstMac = normalizeMac(foreign.mac);
    else dstMac = rxVirt ? `(the MAC of ${rxVirt.id})` : '(no MAC: nobody answers ARP)';
  }
  if (dstMac === undefined) throw new UsageError('internal: no destination MAC');
  const frame: Frame = { dstMac, mark: 0, ct: 'new', ...(srcMac ? { srcMac } : {}) };
  if (proto === 'arp') {
    if (srcIp === undefined || dstIp === undefined) throw new UsageError('trace: an ARP request needs IPv4 addresses (of both virts, or --src-ip and an IP TO)');
    if (family === 6) throw new UsageError('trace: ARP is IPv4 (IPv6 uses neighbour discovery)');
    frame.arp = { senderIp: srcIp, targetIp: dstIp, ...(srcMac ? { senderMac: srcMac } : {}) };
  } else if (srcIp !== undefined && dstIp !== undefined) {
    const l4: L4 = proto === 'icmp' ? (family === 6 ? 'icmpv6' : 'icmp') : proto;
    frame.ip = {
      family: family ?? 4, src: srcIp, dst: dstIp, proto: l4,
      ...(l4 === 'tcp' || l4 === 'udp' ? { sport: req.sport ?? 40000, dport: req.dport ?? (l4 === 'tcp' ? 80 : 53) } : {}),
      ...(l4 === 'icmp' || l4 === 'icmpv6' ? { icmpType: icmpTypeOf(l4, req.icmpType) } : {}),
    };
  }

  const w: Walk = { model, hosts: new Hosts(model, addressing), frame, ctx: model.name, hops: [] };
  const paths: TracePath[] = [];
  const add = (p: TracePath) => paths.push(p);
  const phys = from.phys;
  const state = w.hosts.state(phys);
  const result = (verdict: TraceResult['verdict'], reason: string, branches?: TracePath[]): TraceResult => ({
    from: from.id, to: req.to, packet: describeFrame(frame), frame, verdict, reason, hops: w.hops,
    ...(branches ? { branches } : {}),
  });
  try {
    const port = state.get(`port ${from.if}`);
    if (port?.kind !== 'port') throw new Stop(`virt ${from.id} has no port on ${phys.name} in the compiled state`);
    w.hops.push({ host: phys.name, step: 'port', text: `${describeFrame(frame)} from ${srcMac ?? "the VM's MAC"} to ${dstMac}: sent by virt ${from.id} on ${from.if}, a port of bridge ${port.master} (net ${net.name}, ${settings.type})`, objects: [`port ${from.if}`, ...(from.tap ? [`tap ${from.if}`] : [])] });
    const f = state.get(`filter ${from.if} ingress 349`);
    if (f?.kind === 'filter') {
      const q = state.get(`qdisc ${f.redirect} root`);
      const rate = q?.kind === 'qdisc' ? fmtRate(q.rate ?? 0) : '?';
      w.hops.push({ host: phys.name, step: 'shaper', text: `rate shaper (out): ${from.if}'s ingress redirected to ${f.redirect}, tbf ${rate}${q?.kind === 'qdisc' ? `, burst ${q.burst} bytes` : ''} (queued, not dropped, up to the limit)`, objects: [`qdisc ${from.if} ingress`, `filter ${from.if} ingress 349`, `link ${f.redirect}`, `qdisc ${f.redirect} root`] });
    }
    const pre = bridgeHook(w, phys, 'prerouting', { iif: from.if }, `firewall (out) of virt ${from.id}`);
    if (!pre.hop) w.hops.push({ host: phys.name, step: 'firewall', text: `firewall (out) of virt ${from.id}: not filtered` });
    firewall(w, pre);
    if (foreign) {
      // Another net: the frame stays in this net (its bridge and tunnels carry only this net).
      const sameMac = frame.dstMac && !isGroupMac(frame.dstMac) ? virtByMac(net, frame.dstMac) : undefined;
      const why = `different nets: isolated (virt ${foreign.id} is in net ${foreign.net.name}, ${from.id} in net ${net.name}; nothing carries frames between them)`;
      if (sameMac) {
        w.hops.push({ host: phys.name, step: 'drop', text: `${why}; a frame to its MAC ${frame.dstMac} would reach ${sameMac.id} of net ${net.name} instead` });
      } else {
        w.hops.push({ host: phys.name, step: 'drop', text: why });
      }
      return result('dropped', why);
    }
    if (toGateway && frame.ip) {
      routed(w, phys, net, bridge, gateway, add);
    } else if (offLink && !l2only) {
      const why = type.routed
        ? `net ${net.name} has no gateway address: nothing routes ${dstIp}`
        : `${dstIp} is not in net ${net.name}'s subnet, and a private net routes nowhere (isolated L2)`;
      if (rxVirt) {
        inBridge(w, phys, net, port.master, from.if, false, { virt: rxVirt }, add);
      } else {
        // A private net's gateway (a router VM lsdn does not model: no virt may hold it) is beyond the trace.
        const gw4 = net.ipv4?.spec.gateway;
        const whyGw = gw4 && family === 4
          ? `${dstIp} is off net ${net.name}'s subnet: it goes to the gateway ${gw4}, which is no virt of the model (the hosts route no private net), so where it goes from there lsdn cannot tell`
          : why;
        w.hops.push({ host: phys.name, step: 'drop', text: whyGw });
        return result('dropped', whyGw);
      }
    } else {
      if (!rxVirt && !isGroupMac(frame.dstMac) && target.kind === 'ip') {
        const why = `no virt of net ${net.name} has ${dstIp}: nobody answers ARP for it`;
        w.hops.push({ host: phys.name, step: 'drop', text: why });
        return result('dropped', why);
      }
      inBridge(w, phys, net, port.master, from.if, false, rxVirt ? { virt: rxVirt } : {}, add);
    }
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    return result('dropped', e.reason);
  }
  const shared = w.hops;
  if (rxVirt || target.kind !== 'mac' || !isGroupMac(frame.dstMac)) {
    // One receiver: its path (the first one that reached it, else the first that tells why not).
    const want = rxVirt?.id;
    const hit = paths.find((p) => p.verdict === 'delivered' && (want === undefined || p.to === want)) ?? paths.find((p) => p.to === want) ?? paths[0];
    if (!hit) return { ...result('dropped', `nothing in net ${net.name} leads to ${req.to}`), hops: shared };
    return { ...result(hit.verdict, hit.reason), hops: hit.hops };
  }
  // Broadcast: every receiver's path.
  const common = commonPrefix(paths.map((p) => p.hops));
  const branches = paths.map((p) => ({ ...p, hops: p.hops.slice(common) }));
  const got = paths.filter((p) => p.verdict === 'delivered').map((p) => p.to);
  const all = [...net.virts.values()].filter((v) => v !== from && v.phys && v.if).length;
  return {
    ...result(got.length ? 'delivered' : 'dropped', got.length ? `delivered to ${got.length} of ${all} other virts of net ${net.name}: ${got.join(', ')}` : `no virt of net ${net.name} receives it`, branches),
    hops: (paths[0]?.hops ?? shared).slice(0, common),
  };
}

function commonPrefix(lists: Hop[][]): number {
  if (!lists.length) return 0;
  let n = 0;
  const first = lists[0] as Hop[];
  while (n < first.length && lists.every((l) => l[n] === first[n])) n++;
  return n;
}

