/**
 * The firewall of virts (rules, default policy, anti-spoofing, stateful inbound filtering) as
 * nftables tables lsdn owns, one set per model context. Pure.
 *
 *   table bridge lsdn_<context>        always, when any local virt needs filtering
 *     chain prerouting   hook prerouting  (priority filter = -200): MSS clamp, `iifname vmap { PORT : jump vout-X }`
 *     chain postrouting  hook postrouting (priority 0):             MSS clamp, `oifname vmap { PORT : jump vin-X }`
 *     chain vout-<hash>  what the VM sends: anti-spoofing, then its `out` rules, then the default
 *     chain vin-<hash>   what the VM receives: replies (stateful), its `in` rules, then the default
 *
 *   table inet lsdn_<context>          whenever a net is local (hostGuardLines)
 *     chain input        hook input: nothing a bridge delivers reaches the host (public: a ping of its gateway)
 *     chain forward      hook forward: marks replies to a stateful VM's own connections; drops what
 *                        is routed from or to a private net's bridge
 *
 * The bridge family has no conntrack on kernels without nf_conntrack_bridge, so stateful mode
 * uses br_netfilter instead: the net's bridge passes bridged IPv4/IPv6 frames through the inet
 * hooks (`nf_call_iptables`/`nf_call_ip6tables` on that bridge only), where conntrack tracks
 * them; the inet table sets one bit of the packet mark on frames toward the VM that belong to
 * an established or related connection, and the VM's bridge chain accepts (and clears) that bit
 * before its rules. Without br_netfilter nothing is marked and replies are dropped: it fails closed.
 *
 * Every line is written exactly as `nft -s list` prints it back (set elements in a canonical
 * order, see canonicalNftLine), so that an unchanged firewall reads back equal and plans nothing.
 */
import ipaddr from 'ipaddr.js';
import type { Net, Netmodel, RuleSpec, Virt } from '../model/netmodel.js';
import { normalizeMac, parsePrefix } from '../core/addr.js';
import { icmpTypeName, icmpTypeNumber, parseMacMatch, parsePortRange } from '../core/rules.js';
import type { DhcpObject, NftTableObject } from '../core/objects.js';
import type { VirtAddressing } from '../ipam/ipam.js';
import type { LocalNet } from '../types/plugin.js';
import { servesAddresses } from '../services/dhcp.js';
import { nftTableName, virtChainName } from '../core/names.js';
import { canonicalNftLine } from '../kinds/nft.js';
import { nftString } from '../kinds/escape.js';

/** The packet-mark bit that carries "reply to the VM's own connection" from the inet table to the bridge table. */
export const STATEFUL_MARK = 0x00800000;
const MARK_HEX = `0x${STATEFUL_MARK.toString(16).padStart(8, '0')}`;
const UNMARK_HEX = `0x${(~STATEFUL_MARK >>> 0).toString(16).padStart(8, '0')}`;

export const BRIDGE_HOOKS = {
  prerouting: 'type filter hook prerouting priority filter; policy accept;',
  postrouting: 'type filter hook postrouting priority 0; policy accept;',
} as const;
export const INET_FORWARD_HOOK = 'type filter hook forward priority filter; policy accept;';

/** `{ a, b }` for several values, the bare value for one (how nft prints a one-element set). */
function set(values: string[]): string {
  const u = [...new Set(values)];
  return u.length === 1 ? (u[0] as string) : `{ ${u.join(', ')} }`;
}

// ---- rules ------------------------------------------------------------------------------------

function prefixText(text: string): { family: 4 | 6; text: string } | undefined {
  const p = parsePrefix(text);
  if (!p) return undefined;
  const max = p.family === 4 ? 32 : 128;
  if (p.len === max) return { family: p.family, text: p.ip };
  const net = (p.family === 4 ? ipaddr.IPv4 : ipaddr.IPv6).networkAddressFromCIDR(`${p.ip}/${p.len}`).toString();
  return { family: p.family, text: `${net}/${p.len}` };
}

function macMatch(field: 'saddr' | 'daddr', text: string): string | undefined {
  const m = parseMacMatch(text);
  if (!m) return undefined;
  return m.mask === 'ff:ff:ff:ff:ff:ff' ? `ether ${field} ${m.mac}` : `ether ${field} & ${m.mask} == ${m.mac}`;
}

function portText(p: number | string): string | undefined {
  const r = parsePortRange(p);
  if (!r) return undefined;
  return r[0] === r[1] ? String(r[0]) : `${r[0]}-${r[1]}`;
}

/** One rule as an nft rule line (bridge family); undefined when a field is invalid (validation reports it). */
export function ruleLine(s: RuleSpec): string | undefined {
  const parts: string[] = [];
  for (const [f, field] of [['srcMac', 'saddr'], ['dstMac', 'daddr']] as const) {
    const v = s[f];
    if (v === undefined) continue;
    const m = macMatch(field, v);
    if (!m) return undefined;
    parts.push(m);
  }
  for (const [f, field] of [['srcIp', 'saddr'], ['dstIp', 'daddr']] as const) {
    const v = s[f];
    if (v === undefined) continue;
    const p = prefixText(v);
    if (!p) return undefined;
    parts.push(`${p.family === 4 ? 'ip' : 'ip6'} ${field} ${p.text}`);
  }
  if (s.proto !== undefined) {
    const ports = (['srcPort', 'dstPort'] as const).filter((f) => s[f] !== undefined);
    if (ports.length) {
      for (const f of ports) {
        const t = portText(s[f] as number | string);
        if (!t) return undefined;
        parts.push(`${s.proto} ${f === 'srcPort' ? 'sport' : 'dport'} ${t}`);
      }
    } else if (s.icmpType !== undefined && (s.proto === 'icmp' || s.proto === 'icmpv6')) {
      const n = icmpTypeNumber(s.proto, s.icmpType);
      if (n === undefined) return undefined;
      parts.push(`${s.proto} type ${icmpTypeName(s.proto, n) ?? String(n)}`);
    } else {
      parts.push(`meta l4proto ${s.proto === 'icmpv6' ? 'ipv6-icmp' : s.proto}`);
    }
  }
  parts.push(s.action);
  return canonicalNftLine(parts.join(' '));
}

/** Rules of one direction in evaluation order (lower priority first, then declaration order), with their 1-based number among the virt's rules. */
function orderedRules(v: Virt, dir: 'in' | 'out'): { r: RuleSpec; n: number }[] {
  return v.rules
    .map((r, i) => ({ r, i }))
    .filter(({ r }) => r.direction === dir)
    .sort((a, b) => a.r.spec.priority - b.r.spec.priority || a.i - b.i)
    .map(({ r, i }) => ({ r: r.spec, n: i + 1 }));
}

// ---- infrastructure allowances and anti-spoofing -------------------------------------------

/** Neighbour discovery and multicast listener messages: what IPv6 needs to work at all. */
const ND_TYPES = [
  'mld-listener-query', 'mld-listener-report', 'mld-listener-done', 'nd-router-solicit', 'nd-router-advert',
  'nd-neighbor-solicit', 'nd-neighbor-advert', 'mld2-listener-report',
];

/** Accepted before a `drop` default: ARP and IPv6 neighbour discovery (a VM cannot work without them). */
function infrastructure(): string[] {
  return ['ether type arp accept', `icmpv6 type ${set(ND_TYPES)} accept`];
}

function hexOf(bytes: number[]): string {
  return `0x${bytes.reduce((n, b) => (n << 8n) | BigInt(b), 0n).toString(16)}`;
}

function macHex(mac: string): string {
  return hexOf(mac.split(':').map((b) => parseInt(b, 16)));
}

/**
 * The virt's own addresses by family (without prefix length), normalized: its static ones and
 * what IPAM assigned it (an allocated IPv4, its SLAAC and link-local IPv6 addresses).
 */
export function virtAddresses(v: Virt, assigned?: VirtAddressing): { v4: string[]; v6: string[] } {
  const v4: string[] = [];
  const v6: string[] = [];
  const all = [...v.ips, ...(assigned?.v4 ? [assigned.v4.ip] : []), ...(assigned?.v6 ?? []).map((a) => a.ip)];
  for (const a of all) {
    const p = typeof a === 'string' ? parsePrefix(a) : undefined;
    if (!p) continue;
    (p.family === 4 ? v4 : v6).push(p.ip);
  }
  return { v4: [...new Set(v4)], v6: [...new Set(v6)] };
}

/**
 * Where a line of a virt's chain comes from: one of its rules (1-based in the order the virt
 * lists its rules), its default, anti-spoofing (and why), the rogue-server guard, an allowance
 * every filtered virt needs (ARP, neighbour discovery, DHCP) or stateful filtering. `lsdn trace`
 * names the line that decides a packet by this.
 */
export interface LineOrigin {
  kind: 'rule' | 'default' | 'anti-spoof' | 'server-guard' | 'allowance' | 'stateful';
  /** The virt's id ("net/virt"). */
  virt: string;
  direction: 'in' | 'out';
  /** What the line is for, in words. */
  why: string;
  /** kind rule: its number among the virt's rules (1-based, as declared). */
  rule?: number;
}

/** A chain line with its origin. */
export interface ChainEntry {
  line: string;
  origin: LineOrigin;
}

/**
 * Anti-spoofing of what a VM sends: its MAC as Ethernet source and ARP sender; its IPv4
 * addresses (when the model gives any) as IP source and ARP sender address, 0.0.0.0 only for
 * DHCP and ARP probes; its IPv6 addresses (when given) plus link-local ones as source, :: only
 * for duplicate address detection and MLD; neighbour advertisements only for its own or a
 * link-local target, and neighbour/router messages only with its own MAC as link-layer option.
 * VLAN-tagged frames are dropped (their inner headers would escape these checks).
 */
export function antiSpoofEntries(v: Virt, assigned?: VirtAddressing): ChainEntry[] {
  if (!v.antiSpoof) return [];
  const mac = typeof v.mac === 'string' ? normalizeMac(v.mac) : undefined;
  const { v4, v6: own6 } = virtAddresses(v, assigned);
  // Link-local addresses are covered by fe80::/10 below (nft would merge them into it anyway).
  const v6 = own6.filter((a) => !/^fe[89ab]/i.test(a));
  if (!mac && !v4.length && !v6.length) return [];
  const out: [string, string][] = [];
  if (mac) out.push([`ether saddr != ${mac} drop`, `the Ethernet source is not the virt's MAC ${mac}`]);
  out.push(['ether type { 8021ad, 8021q } drop', 'VLAN-tagged frames are not accepted from a VM']);
  if (mac) out.push([`arp saddr ether != ${mac} drop`, `the ARP sender MAC is not the virt's ${mac}`]);
  if (v4.length) {
    out.push([`arp saddr ip != ${set(['0.0.0.0', ...v4])} drop`, `the ARP sender address is not the virt's (${v4.join(', ')})`]);
    out.push([`ip saddr != ${set(['0.0.0.0', ...v4])} drop`, `the IPv4 source is not the virt's (${v4.join(', ')})`]);
    out.push(['ip saddr 0.0.0.0 meta l4proto != udp drop', 'source 0.0.0.0 is for DHCP only']);
    out.push(['ip saddr 0.0.0.0 udp dport != 67 drop', 'source 0.0.0.0 is for DHCP only']);
  }
  if (v6.length) {
    out.push([`ip6 saddr != ${set(['::', 'fe80::/10', ...v6])} drop`, `the IPv6 source is neither the virt's (${v6.join(', ')}) nor link-local`]);
    out.push(['ip6 saddr :: meta l4proto != ipv6-icmp drop', 'source :: is for duplicate address detection and MLD only']);
    out.push([`ip6 saddr :: icmpv6 type != ${set(['nd-neighbor-solicit', 'mld-listener-report', 'mld2-listener-report'])} drop`, 'source :: is for duplicate address detection and MLD only']);
    const targets = v6.map((a) => hexOf(ipaddr.IPv6.parse(a).toByteArray()));
    out.push([`icmpv6 type nd-neighbor-advert @th,64,16 & 0xffc0 != 0xfe80 @th,64,128 != ${set(targets)} drop`, 'a neighbour advertisement for an address not the virt\'s']);
  }
  if (mac) {
    const m = macHex(mac);
    // Source (type 1) / target (type 2) link-layer address option, length 1 (8 bytes), first option.
    out.push([`icmpv6 type nd-neighbor-solicit @th,192,16 0x101 @th,208,48 != ${m} drop`, `a neighbour solicitation whose link-layer address is not ${mac}`]);
    out.push([`icmpv6 type nd-neighbor-advert @th,192,16 0x201 @th,208,48 != ${m} drop`, `a neighbour advertisement whose link-layer address is not ${mac}`]);
    out.push([`icmpv6 type nd-router-solicit @th,64,16 0x101 @th,80,48 != ${m} drop`, `a router solicitation whose link-layer address is not ${mac}`]);
  }
  return out.map(([line, why]) => ({ line: canonicalNftLine(line), origin: { kind: 'anti-spoof', virt: v.id, direction: 'out', why } }));
}

export function antiSpoofLines(v: Virt, assigned?: VirtAddressing): string[] {
  return antiSpoofEntries(v, assigned).map((e) => e.line);
}

// ---- chains of a virt -------------------------------------------------------------------------

/**
 * On a served net only the net's address server answers DHCP/DHCPv6 and advertises routers:
 * first in the `out` chain of every virt of the net, whatever its anti-spoofing and rules.
 */
export function rogueServerLines(v: Virt): string[] {
  return rogueServerEntries(v).map((e) => e.line);
}

function rogueServerEntries(v: Virt): ChainEntry[] {
  if (!servesAddresses(v.net)) return [];
  const why = `only net ${v.net.name}'s address server answers DHCP and advertises routers`;
  return ['udp sport 67 drop', 'udp sport 547 drop', 'icmpv6 type nd-router-advert drop']
    .map((l) => ({ line: canonicalNftLine(l), origin: { kind: 'server-guard', virt: v.id, direction: 'out', why } }));
}

/** The virt's rules of one direction as chain entries, in evaluation order. */
function ruleEntries(v: Virt, dir: 'in' | 'out'): ChainEntry[] {
  const out: ChainEntry[] = [];
  for (const { r, n } of orderedRules(v, dir)) {
    const l = ruleLine(r);
    if (l) out.push({ line: l, origin: { kind: 'rule', virt: v.id, direction: dir, rule: n, why: `rule ${n} of virt ${v.id} (${dir}, priority ${r.priority}: ${r.action})` } });
  }
  return out;
}

/** Body of the virt's `out` chain (what it sends), each line with its origin; [] when nothing is filtered. */
export function outChainEntries(v: Virt, assigned?: VirtAddressing): ChainEntry[] {
  const entries = [...rogueServerEntries(v), ...antiSpoofEntries(v, assigned), ...ruleEntries(v, 'out')];
  if (v.policy.out === 'drop') {
    const allow = (line: string, why: string): ChainEntry => ({ line, origin: { kind: 'allowance', virt: v.id, direction: 'out', why } });
    entries.push(
      ...infrastructure().map((l) => allow(l, 'ARP and neighbour discovery pass a drop default')),
      allow('udp sport 68 udp dport 67 accept', 'DHCP requests pass a drop default'),
      allow('udp sport 546 udp dport 547 accept', 'DHCPv6 requests pass a drop default'),
      { line: 'drop', origin: { kind: 'default', virt: v.id, direction: 'out', why: `the default of virt ${v.id} for what it sends (policy out: drop)` } },
    );
  }
  return entries.map((e) => ({ ...e, line: canonicalNftLine(e.line) }));
}

/** Body of the virt's `out` chain (what it sends); [] when nothing is filtered. */
export function outChainLines(v: Virt, assigned?: VirtAddressing): string[] {
  return outChainEntries(v, assigned).map((e) => e.line);
}

/** Body of the virt's `in` chain (what it receives), each line with its origin; [] when nothing is filtered. */
export function inChainEntries(v: Virt): ChainEntry[] {
  const entries: ChainEntry[] = [];
  const stateful = (line: string, why: string): ChainEntry => ({ line, origin: { kind: 'stateful', virt: v.id, direction: 'in', why } });
  const allow = (line: string, why: string): ChainEntry => ({ line, origin: { kind: 'allowance', virt: v.id, direction: 'in', why } });
  if (v.stateful) entries.push(stateful(`meta mark & ${MARK_HEX} == ${MARK_HEX} meta mark set meta mark & ${UNMARK_HEX} accept`, 'a reply to a connection the virt opened (stateful)'));
  entries.push(...ruleEntries(v, 'in'));
  if (v.stateful || v.policy.in === 'drop') entries.push(...infrastructure().map((l) => allow(l, 'ARP and neighbour discovery always reach a filtered virt')));
  // The net's address server answers (DHCPv4 offers do not match a conntrack tuple either).
  if (!v.stateful && v.policy.in === 'drop' && servesAddresses(v.net)) entries.push(allow('udp sport 67 udp dport 68 accept', "the address server's DHCP answers pass a drop default"));
  if (v.stateful) {
    // DHCP answers do not match the request's conntrack tuple; anything else new is dropped.
    entries.push(
      allow('udp sport 67 udp dport 68 accept', 'DHCP answers reach a stateful virt'),
      allow('udp sport 547 udp dport 546 accept', 'DHCPv6 answers reach a stateful virt'),
      stateful('meta protocol { ip, ip6 } drop', 'a new inbound connection (not a reply to one the virt opened) is dropped'),
    );
  }
  if (v.policy.in === 'drop') entries.push({ line: 'drop', origin: { kind: 'default', virt: v.id, direction: 'in', why: `the default of virt ${v.id} for what it receives (policy in: drop)` } });
  return entries.map((e) => ({ ...e, line: canonicalNftLine(e.line) }));
}

/** Body of the virt's `in` chain (what it receives); [] when nothing is filtered. */
export function inChainLines(v: Virt): string[] {
  return inChainEntries(v).map((e) => e.line);
}

/** The inet `forward` line that marks replies toward a stateful virt (its bridge and MAC). */
export function statefulMarkLine(bridge: string, mac: string): string {
  return canonicalNftLine(`iifname ${nftString(bridge)} ether daddr ${mac} ct state established,related meta mark set meta mark | ${MARK_HEX}`);
}

export interface LocalVirt {
  virt: Virt;
  net: Net;
  /** The net's bridge on this host. */
  bridge: string;
  /** The MTU of the virt's host-side port (the virt's own, or the net's overlay MTU here). */
  mtu: number;
}

/** IPv4 and TCP headers without options (the MSS is what is left of the MTU); IPv6's header is 20 bytes longer. */
const TCP4_OVERHEAD = 40;
const TCP6_OVERHEAD = 60;

/**
 * TCP MSS clamping on every local virt's port, both ways (SYNs the VM sends, in prerouting by
 * `iifname`; SYNs it receives, in postrouting by `oifname`): a TCP handshake through a port
 * never agrees on segments larger than the port's MTU carries.
 *
 * Why: a VM that keeps its interface at 1500 on an overlay of 1450 (it ignores DHCP option 26,
 * or has none) announces an MSS of 1460. The kernel drops a full-size frame at the veth/tap
 * (larger than the port's MTU) but lets GSO super-packets of the same segments through (they
 * are not checked against the MTU), so between VMs on one host TCP half works: every segment
 * sent outside a GSO batch (retransmissions, the tail of a burst) is lost. Behind a rate limit
 * that collapses to a few percent of the rate (measured: 10 Mbit/s tbf, VM MTU 1500, overlay
 * 1450: 0.5 Mbit/s in, 0.7-5.9 Mbit/s out; clamped: within 4 % both ways, README "Rate limits").
 * Across hosts the tunnel device re-segments and fragments the outer packets, which hides it.
 * The bridge family cannot match the bridge's name on this kernel (meta ibrname), so ports are
 * matched by name, grouped by MTU; a VM with a correct MTU already sends a smaller MSS and the
 * rule changes nothing. `rt mtu` has no route to read in the bridge family: the value is fixed.
 */
export function mssClampLines(virts: LocalVirt[], dir: 'iifname' | 'oifname'): string[] {
  const byMtu = new Map<number, string[]>();
  for (const { virt, mtu } of virts) {
    if (!virt.if) continue;
    byMtu.set(mtu, [...(byMtu.get(mtu) ?? []), nftString(virt.if)]);
  }
  const lines: string[] = [];
  for (const mtu of [...byMtu.keys()].sort((a, b) => a - b)) {
    const ports = set((byMtu.get(mtu) as string[]).sort());
    for (const [ether, mss] of [['ip', mtu - TCP4_OVERHEAD], ['ip6', mtu - TCP6_OVERHEAD]] as const) {
      lines.push(canonicalNftLine(`${dir} ${ports} ether type ${ether} tcp flags syn tcp option maxseg size > ${mss} tcp option maxseg size set ${mss}`));
    }
  }
  return lines;
}

/**
 * The firewall tables of one host: a bridge table when any local virt has a port (the MSS
 * clamp; its rules when it is filtered), and an
 * inet table when any is stateful (with a MAC: validation requires it). [] when none is.
 */
export function firewallTables(
  model: Netmodel, virts: LocalVirt[],
  opts: { addressing?: Map<string, VirtAddressing>; servers?: DhcpObject[]; nets?: GuardedNet[] } = {},
): NftTableObject[] {
  const name = nftTableName(model.name);
  const regular: [string, string[]][] = [];
  const inMap: string[] = [];
  const outMap: string[] = [];
  const marks: string[] = [];
  for (const { virt: v, net, bridge } of virts) {
    if (!v.if) continue;
    const port = nftString(v.if);
    const out = outChainLines(v, opts.addressing?.get(v.id));
    if (out.length) {
      const c = virtChainName(model.name, net.name, v.name, 'out');
      regular.push([c, out]);
      outMap.push(`${port} : jump ${c}`);
    }
    const inn = inChainLines(v);
    if (inn.length) {
      const c = virtChainName(model.name, net.name, v.name, 'in');
      regular.push([c, inn]);
      inMap.push(`${port} : jump ${c}`);
    }
    const mac = v.stateful && typeof v.mac === 'string' ? normalizeMac(v.mac) : undefined;
    if (mac) marks.push(statefulMarkLine(bridge, mac));
  }
  const tables: NftTableObject[] = [];
  const guard = hostGuardLines(opts.nets ?? []);
  const forward = serverForwardLines(virts, opts.servers ?? []);
  const clampOut = mssClampLines(virts, 'iifname');
  const clampIn = mssClampLines(virts, 'oifname');
  if (regular.length || forward.length || clampOut.length) {
    const chains: [string, string[]][] = [...regular];
    if (forward.length) chains.push(['forward', [BRIDGE_FORWARD_HOOK, ...forward]]);
    // The clamp comes first: a VM's own chain may end in a verdict.
    const pre = [...clampOut, ...(outMap.length ? [canonicalNftLine(`iifname vmap { ${outMap.join(', ')} }`)] : [])];
    const post = [...clampIn, ...(inMap.length ? [canonicalNftLine(`oifname vmap { ${inMap.join(', ')} }`)] : [])];
    if (pre.length) chains.push(['prerouting', [BRIDGE_HOOKS.prerouting, ...pre]]);
    if (post.length) chains.push(['postrouting', [BRIDGE_HOOKS.postrouting, ...post]]);
    chains.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    tables.push({ kind: 'nft', family: 'bridge', name, chains: Object.fromEntries(chains) });
  }
  if (marks.length || guard.input.length) {
    const chains: Record<string, string[]> = {};
    if (guard.input.length) chains.input = [INET_INPUT_HOOK, ...guard.input];
    if (marks.length || guard.forward.length) chains.forward = [INET_FORWARD_HOOK, ...marks.sort(), ...guard.forward];
    tables.push({ kind: 'nft', family: 'inet', name, chains });
  }
  return tables;
}

export const INET_INPUT_HOOK = 'type filter hook input priority filter; policy accept;';

/** A local net as the host guard sees it. */
export type GuardedNet = Pick<LocalNet, 'net' | 'bridge' | 'type'>;

/**
 * The host is not a service of its VMs (inet table, IP layer, where the input device of a
 * frame delivered to the host is the bridge itself; this kernel's bridge family cannot match
 * the bridge name): nothing a net's bridge delivers to the host is accepted (the bridges keep
 * IPv6 link-local addresses, and Linux answers for any local address on any interface), except
 * on a public net a ping of its gateway and what belongs to connections the host opened.
 * Traffic routed from or to a private net's bridge is dropped (ip_forward is host-wide: another
 * context's public net turns it on); bridged traffic passing the inet hooks (br_netfilter) has
 * the bridge as both devices and is not affected.
 */
export function hostGuardLines(nets: GuardedNet[]): { input: string[]; forward: string[] } {
  const sorted = [...nets].sort((a, b) => (a.bridge < b.bridge ? -1 : a.bridge > b.bridge ? 1 : 0));
  const input: string[] = [];
  const forward: string[] = [];
  for (const { net, bridge, type } of sorted) {
    const br = nftString(bridge);
    if (type.routed) {
      const gw = type.routed.gateway(net);
      if (gw) input.push(`iifname ${br} ip daddr ${gw.split('/')[0]} icmp type echo-request accept`);
      input.push(`iifname ${br} ct state established,related accept`);
    } else {
      forward.push(`iifname ${br} oifname != ${br} drop`, `oifname ${br} iifname != ${br} drop`);
    }
  }
  if (sorted.length) input.push(`iifname ${set(sorted.map((n) => nftString(n.bridge)))} drop`);
  return { input: input.map(canonicalNftLine), forward: forward.map(canonicalNftLine) };
}

export const BRIDGE_FORWARD_HOOK = 'type filter hook forward priority filter; policy accept;';

/**
 * Address servers talk only to the local virts of their net: every host runs a server with the
 * same address, so nothing may cross the tunnel to or from one (and a virt of another host
 * never gets an answer from this host's server).
 */
export function serverForwardLines(virts: LocalVirt[], servers: DhcpObject[]): string[] {
  const lines: string[] = [];
  for (const s of [...servers].sort((a, b) => (a.port < b.port ? -1 : 1))) {
    const ports = virts.filter((lv) => lv.bridge === s.bridge && lv.virt.if).map((lv) => nftString(lv.virt.if as string)).sort();
    const port = nftString(s.port);
    if (!ports.length) {
      lines.push(`iifname ${port} drop`, `oifname ${port} drop`);
      continue;
    }
    lines.push(`iifname ${port} oifname != ${set(ports)} drop`, `oifname ${port} iifname != ${set(ports)} drop`);
    // The receiving side: DHCP/DHCPv6 answers and router advertisements reach the net's virts
    // only from its server (the postrouting chains cannot tell: they see no input port).
    lines.push(
      `iifname != ${port} oifname ${set(ports)} udp sport { 67, 547 } drop`,
      `iifname != ${port} oifname ${set(ports)} icmpv6 type nd-router-advert drop`,
    );
  }
  return lines.map(canonicalNftLine);
}
