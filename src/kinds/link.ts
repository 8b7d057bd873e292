/**
 * Links lsdn creates and owns (bridge, vxlan, vlan, geneve, macvlan, ifb), marked by name and
 * alias. Encoded as `ip link add ... type T ATTRS` (+ the alias line, since the kernel ignores
 * one given to `link add`) and `link set`; decoded from `ip -d -j link`; the type-specific
 * creation attributes (`attrs`, in iproute2's argument order) are immutable: a change recreates
 * the link, and what hangs on it is made again.
 */
import { isDeepStrictEqual } from 'node:util';
import type { HostState, LinkObject } from '../core/objects.js';
import { Phase, type Command } from '../core/plan.js';
import { brportFlags, planPortFlags } from './brport.js';
import { num, str, type IpLink, type LinkIndex } from './iproute.js';
import { diffFields, fmt, type ObjectKind, type PlanFacts } from './kind.js';
import { iprouteArg as a } from './escape.js';

const ip = (line: string): Command => ({ tool: 'ip', line });

/**
 * `port_range` of a VXLAN device created without `srcport` (measured on kernel 6.18 with
 * iproute2 6.1: the kernel keeps 0/0 and picks the source port in the host's ephemeral range).
 * A device whose range differs gets an explicit `srcport` attribute.
 */
export const VXLAN_DEFAULT_SRCPORT = { low: 0, high: 0 } as const;

/** FDB ageing of a VXLAN device created without `ageing` (seconds): a device with another one names it. */
export const VXLAN_DEFAULT_AGEING = 300;

// ---- encoding ---------------------------------------------------------------------------------

/** Mark an interface lsdn's: its ownership alias (the kernel ignores one given to `link add`). */
export function setAlias(name: string, alias: string): Command {
  return ip(`link set dev ${a(name)} alias ${a(alias)}`);
}

function renderAttrs(attrs: LinkObject['attrs']): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(attrs)) {
    if (v === true) parts.push(k);
    else if (v === false) parts.push(`no${k}`);
    else parts.push(`${k} ${String(v).split(' ').map(a).join(' ')}`);
  }
  return parts.join(' ');
}

/** `link set` arguments for the mutable attributes given. */
export function linkSetArgs(o: { mtu?: number; master?: string; up?: boolean }): string {
  const parts: string[] = [];
  if (o.mtu !== undefined) parts.push(`mtu ${o.mtu}`);
  if (o.master !== undefined) parts.push(`master ${a(o.master)}`);
  if (o.up !== undefined) parts.push(o.up ? 'up' : 'down');
  return parts.join(' ');
}

export function createLink(o: LinkObject): Command[] {
  const lower = o.lower ? `link ${a(o.lower)} ` : '';
  const attrs = renderAttrs(o.attrs);
  const cmds = [
    ip(`link add ${lower}name ${a(o.name)} type ${a(o.type)}${attrs ? ` ${attrs}` : ''}`),
    // The kernel ignores an alias given to `link add`: mark ownership at once, next line.
    setAlias(o.name, o.alias),
  ];
  if (o.netfilter) cmds.push(...setBridgeNetfilter(o.name, true));
  const set = linkSetArgs({ mtu: o.mtu, master: o.master, up: o.up });
  if (set) cmds.push(ip(`link set dev ${a(o.name)} ${set}`));
  return cmds;
}

/** Bridged IPv4/IPv6 through the inet hooks (br_netfilter), on this bridge only. */
export function setBridgeNetfilter(name: string, on: boolean): Command[] {
  const v = on ? 1 : 0;
  return [ip(`link set dev ${a(name)} type bridge nf_call_iptables ${v} nf_call_ip6tables ${v}`)];
}

export function deleteLink(o: { name: string }): Command[] {
  return [ip(`link del dev ${a(o.name)}`)];
}

/** Commands that move a link or port from `from` to `to` in its mutable attributes. */
export function updateLinkOrPort(
  name: string,
  from: { mtu?: number; master?: string; up: boolean; alias?: string },
  to: { mtu?: number; master?: string; up: boolean; alias?: string },
): Command[] {
  const cmds: Command[] = [];
  if (to.alias !== undefined && to.alias !== from.alias) cmds.push(setAlias(name, to.alias));
  const set = linkSetArgs({
    mtu: to.mtu !== undefined && to.mtu !== from.mtu ? to.mtu : undefined,
    master: to.master !== undefined && to.master !== from.master ? to.master : undefined,
    up: to.up !== from.up ? to.up : undefined,
  });
  if (to.master === undefined && from.master !== undefined) cmds.push(ip(`link set dev ${a(name)} nomaster`));
  if (set) cmds.push(ip(`link set dev ${a(name)} ${set}`));
  return cmds;
}

// ---- decoding ---------------------------------------------------------------------------------

/** Resolve a device reference printed by iproute2 (a name, "if<N>" for an unknown name, or an index). */
function resolveDev(ref: unknown, links: LinkIndex): string | undefined {
  if (typeof ref === 'number') return ref > 0 ? (links.byIndex.get(ref)?.ifname ?? `if${ref}`) : undefined;
  if (typeof ref !== 'string' || ref === '') return undefined;
  if (links.byName.has(ref)) return ref;
  const m = /^if(\d+)$/.exec(ref);
  if (m) return links.byIndex.get(Number(m[1]))?.ifname ?? ref;
  return ref;
}

/** Lower device of a stacked link (vlan, macvlan), when it is in this namespace. */
function lowerOf(l: IpLink, links: LinkIndex): string | undefined {
  if (l.link_netnsid !== undefined) return undefined;
  if (l.link !== undefined && l.link !== null) return resolveDev(l.link, links);
  if (l.link_index !== undefined) return resolveDev(l.link_index, links);
  return undefined;
}

/** `attrs` of an owned link, in the keys and order the type plug-ins build them (see src/types). */
function linkAttrs(l: IpLink, links: LinkIndex): LinkObject['attrs'] {
  const kind = l.linkinfo?.info_kind;
  const d = l.linkinfo?.info_data ?? {};
  const attrs: LinkObject['attrs'] = {};
  switch (kind) {
    case 'vxlan': {
      const id = num(d.id);
      if (id !== undefined) attrs.id = id;
      if (d.external === true) attrs.external = true;
      const group = str(d.group) ?? str(d.group6);
      const remote = str(d.remote) ?? str(d.remote6);
      if (group) attrs.group = group;
      else if (remote) attrs.remote = remote;
      const local = str(d.local) ?? str(d.local6);
      if (local) attrs.local = local;
      const dev = resolveDev(d.link, links);
      if (dev) attrs.dev = dev;
      const ttl = num(d.ttl);
      if (ttl) attrs.ttl = ttl;
      const port = num(d.port);
      if (port !== undefined) attrs.dstport = port;
      const range = d.port_range as { low?: number; high?: number } | undefined;
      if (range && (range.low !== VXLAN_DEFAULT_SRCPORT.low || range.high !== VXLAN_DEFAULT_SRCPORT.high)) {
        attrs.srcport = `${range.low ?? 0} ${range.high ?? 0}`;
      }
      attrs.learning = d.learning === true;
      // Only types that ask for zero checksums name it (vxvde over IPv4), so only its absence is read.
      if (d.udp_csum === false) attrs.udpcsum = false;
      const ageing = num(d.ageing);
      if (ageing !== undefined && ageing !== VXLAN_DEFAULT_AGEING) attrs.ageing = ageing;
      break;
    }
    case 'geneve': {
      const id = num(d.id);
      if (id !== undefined) attrs.id = id;
      if (d.external === true) attrs.external = true;
      const remote = str(d.remote) ?? str(d.remote6);
      if (remote) attrs.remote = remote;
      const ttl = num(d.ttl);
      if (ttl) attrs.ttl = ttl;
      const port = num(d.port);
      if (port !== undefined) attrs.dstport = port;
      break;
    }
    case 'vlan': {
      const id = num(d.id);
      if (id !== undefined) attrs.id = id;
      break;
    }
    case 'macvlan': {
      const mode = str(d.mode);
      if (mode) attrs.mode = mode;
      break;
    }
    default:
      break;
  }
  return attrs;
}

/** An owned link as the kernel shows it (`ip -d -j link`); `links`: what its attributes may refer to. */
export function linkFromKernel(l: IpLink, links: LinkIndex): LinkObject {
  const kind = l.linkinfo?.info_kind;
  const link: LinkObject = {
    kind: 'link',
    name: l.ifname,
    // An owned link of a type lsdn does not create keeps its real kind, so the planner sees it differ.
    type: (kind ?? 'unknown') as LinkObject['type'],
    alias: l.ifalias as string,
    up: (l.flags ?? []).includes('UP'),
    attrs: linkAttrs(l, links),
  };
  if (l.mtu !== undefined) link.mtu = l.mtu;
  if (kind === 'vlan' || kind === 'macvlan') {
    const lower = lowerOf(l, links);
    if (lower) link.lower = lower;
  }
  if (l.master) {
    link.master = l.master;
    const bp = brportFlags(l);
    if (bp) link.brport = bp;
  }
  if (kind === 'bridge') {
    const d = l.linkinfo?.info_data ?? {};
    const v4 = d.nf_call_iptables === 1 || d.nf_call_iptables === true;
    const v6 = d.nf_call_ip6tables === 1 || d.nf_call_ip6tables === true;
    if (v4 || v6) link.netfilter = v4 && v6;
  }
  return link;
}

// ---- diffing ----------------------------------------------------------------------------------

/** Immutable attributes of a link that differ (only those the desired state names are compared). */
export function immutableChanges(have: LinkObject, want: LinkObject): string[] {
  const changes: string[] = [];
  if (have.type !== want.type) changes.push(`type ${have.type} -> ${want.type}`);
  if ((want.lower ?? undefined) !== (have.lower ?? undefined)) changes.push(`link ${fmt(have.lower)} -> ${fmt(want.lower)}`);
  for (const [k, v] of Object.entries(want.attrs)) {
    if (!isDeepStrictEqual(have.attrs[k], v)) changes.push(`${k} ${fmt(have.attrs[k])} -> ${fmt(v)}`);
  }
  return changes;
}

/**
 * Desired links lsdn cannot use, by name -> the link that makes them unusable: the name is
 * taken by a link lsdn does not own (itself), or (transitively) the link is, or is to be,
 * enslaved to such a bridge. Whatever would be attached to or programmed on them would
 * change a foreign object, so it is blocked too.
 */
export function unusableLinks(desired: HostState, actual: HostState, facts: PlanFacts): Map<string, string> {
  const out = new Map<string, string>();
  const links = [...desired.objects.values()].filter((o): o is LinkObject => o.kind === 'link');
  for (const want of links) {
    if (!actual.get(`link ${want.name}`) && facts.links?.has(want.name)) out.set(want.name, want.name);
  }
  for (let grew = out.size > 0; grew;) {
    grew = false;
    for (const want of links) {
      if (want.master !== undefined && out.has(want.master) && !out.has(want.name)) {
        out.set(want.name, out.get(want.master) as string);
        grew = true;
      }
    }
  }
  return out;
}

export const LINK: ObjectKind<LinkObject> = {
  kind: 'link',
  hangsOn: (o) => [o.master],
  blocked: (o, p) =>
    p.unusable.get(o.name) === o.name
      ? `interface ${o.name} exists but is not marked as lsdn's (alias "${o.alias}" missing); remove it or set that alias`
      : p.dep(o.master, 'its bridge'),
  goes: (have, want) => (!want || (want.kind === 'link' && immutableChanges(have, want).length) ? have.name : undefined),
  remove(have, p) {
    p.add(Phase.DeleteLinks, 'delete', have, deleteLink(have));
  },
  converge(want, _have, found, p) {
    const phase = want.type === 'bridge' ? Phase.CreateBridges : Phase.CreateLinks;
    const old = found as LinkObject | undefined;
    if (!old || p.gone.has(want.name)) {
      if (!old && p.unusable.has(want.name)) {
        p.add(phase, 'create', want, [], { blocked: LINK.blocked(want, p) });
        return;
      }
      const cmds = [...(old ? deleteLink(old) : []), ...createLink(want)];
      p.add(phase, old ? 'recreate' : 'create', want, cmds, old ? { changes: immutableChanges(old, want) } : {});
      planPortFlags(p, want, undefined, 'create');
      return;
    }
    // Enslaved to a bridge that is being recreated: it is released, so enslave it again.
    const prev: LinkObject = old.master !== undefined && p.gone.has(old.master) ? { ...old, master: undefined, brport: undefined } : old;
    const changes = diffFields(prev, want, ['alias', 'mtu', 'master', 'up']);
    if (changes.length) p.add(Phase.UpdateLinks, 'update', want, updateLinkOrPort(want.name, prev, want), { changes });
    planPortFlags(p, want, prev.brport, 'update');
    if (want.type === 'bridge') {
      const on = want.netfilter === true;
      if (on ? prev.netfilter !== true : prev.netfilter !== undefined) {
        p.add(Phase.UpdateLinks, 'update', want, setBridgeNetfilter(want.name, on), { changes: [`netfilter ${fmt(prev.netfilter ?? false)} -> ${on}`] });
      }
    }
  },
};
