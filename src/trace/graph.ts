/**
 * `lsdn graph`: the topology as a picture, from the model alone (pure, deterministic). One
 * cluster per host (its underlay address), the virts of each net on it (one colour per net;
 * more than COLLAPSE_VIRTS of one net on a host become one "N virts" node), one edge per host
 * pair per net for the tunnels (type and VNI on it; a net spanning more than MESH_HOSTS hosts,
 * or a multicast one, is drawn as a hub node the hosts connect to, so 40 hosts stay readable),
 * and for the public net each host's uplink to "outside". `graphModel` gives the data (also
 * `--format json`), `graphDot` the Graphviz text; the shell (src/cli/graph.ts) runs `dot`.
 */
import type { Netmodel, Net, Phys, Virt } from '../model/netmodel.js';
import { networkType, settingsPort } from '../types/registry.js';

/** Above this many virts of one net on one host, they are drawn as one "N virts" node. */
export const COLLAPSE_VIRTS = 6;
/** Above this many hosts in one net, its tunnels are drawn through one hub node. */
export const MESH_HOSTS = 6;

/** Distinct, readable fills (ColorBrewer Set3/Pastel-like), one per net in name order. */
const PALETTE = ['#8dd3c7', '#fdb462', '#bebada', '#fb8072', '#80b1d3', '#b3de69', '#fccde5', '#ffed6f', '#bc80bd', '#ccebc5', '#d9d9d9', '#e5c494'];
/** Edge colours, darker versions of the fills (same index). */
const STROKE = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#1f78b4', '#66a61e', '#c51b7d', '#b8a000', '#6a3d9a', '#33a02c', '#666666', '#a6761d'];

export interface GraphNet {
  name: string;
  type: string;
  /** The net's id on the wire (VNI, VLAN tag); undefined for types without one. */
  vni?: number;
  port?: number;
  subnets: string[];
  /** Multicast group (vxlan/mcast, vxvde) when the type floods through one. */
  group?: string;
  fill: string;
  stroke: string;
  /** The hosts it is on (its virts' and those it is attached to). */
  hosts: string[];
  /** How its tunnels are drawn: host pairs, a hub node, the physical wire, or not at all (public: routed). */
  drawing: 'pairs' | 'hub' | 'wire' | 'routed';
}
export interface GraphVirt { net: string; name: string; phys: string; ips: string[]; mac?: string }
export interface GraphTunnel { net: string; a: string; b: string; label: string }
export interface GraphUplink { net: string; phys: string; uplink: string; mode: string }
export interface GraphPhys { name: string; ip?: string; if?: string }
export interface Graph {
  name: string;
  physes: GraphPhys[];
  nets: GraphNet[];
  virts: GraphVirt[];
  /** Virts with no phys (disconnected): listed, not placed. */
  unplaced: GraphVirt[];
  tunnels: GraphTunnel[];
  uplinks: GraphUplink[];
}

const byName = <T extends { name: string }>(a: T, b: T): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** The hosts a net is present on: those of its virts and those it is attached to. */
function netPhyses(n: Net): Phys[] {
  const s = new Set<Phys>(n.physes);
  for (const v of n.virts.values()) if (v.phys) s.add(v.phys);
  return [...s].sort(byName);
}

function graphNet(n: Net, i: number): GraphNet {
  const settings = n.effectiveSettings();
  const type = settings?.type;
  const t = type ? networkType(type) : undefined;
  const o = (settings?.options ?? {}) as Record<string, unknown>;
  const vni = t?.idRange ? (n.vid ?? t.defaultId?.(o as never)) : undefined;
  const port = type && t && t.family !== 'direct' && t.family !== 'vlan' && t.family !== 'routed' ? settingsPort(type, o.port as number | undefined) : undefined;
  const group = typeof o.mcastIp === 'string' ? o.mcastIp : typeof o.group === 'string' ? o.group : undefined;
  const hostList = netPhyses(n).map((p) => p.name);
  const hosts = hostList.length;
  const drawing: GraphNet['drawing'] = !t ? 'pairs'
    : t.family === 'routed' ? 'routed'
      : t.family === 'direct' || t.family === 'vlan' ? 'wire'
        : group !== undefined || type === 'vxvde' || hosts > MESH_HOSTS ? 'hub' : 'pairs';
  return {
    name: n.name, type: type ?? '?',
    ...(vni !== undefined ? { vni } : {}),
    ...(port !== undefined ? { port } : {}),
    subnets: [n.ipv4, n.ipv6].flatMap((s) => (s ? [s.spec.prefix] : [])),
    ...(group !== undefined ? { group } : {}),
    fill: PALETTE[i % PALETTE.length]!, stroke: STROKE[i % STROKE.length]!, hosts: hostList, drawing,
  };
}

function tunnelLabel(g: GraphNet): string {
  if (g.type === 'direct') return 'direct';
  const id = g.vni !== undefined ? (g.type === 'vlan' ? ` tag ${g.vni}` : ` VNI ${g.vni}`) : '';
  return `${g.type}${id}`;
}

function graphVirt(v: Virt): GraphVirt {
  return { net: v.net.name, name: v.name, phys: v.phys?.name ?? '', ips: [...v.ips], ...(v.mac ? { mac: v.mac } : {}) };
}

/**
 * The topology of `model`; with `phys`, only what that host takes part in: its nets, the hosts
 * sharing one with it, and the tunnels it ends.
 */
export function graphModel(model: Netmodel, phys?: string): Graph {
  const allNets = [...model.nets.values()].sort(byName);
  const colour = new Map(allNets.map((n, i) => [n, i]));
  const focus = phys !== undefined ? model.phys(phys) : undefined;
  const nets = focus ? allNets.filter((n) => netPhyses(n).includes(focus)) : allNets;
  const hosts = new Set<Phys>(focus ? [focus] : model.physes.values());
  for (const n of nets) for (const p of netPhyses(n)) hosts.add(p);
  const g: Graph = { name: model.name, physes: [], nets: [], virts: [], unplaced: [], tunnels: [], uplinks: [] };
  g.physes = [...hosts].sort(byName).map((p) => ({ name: p.name, ...(p.ip ? { ip: p.ip } : {}), ...(p.if ? { if: p.if } : {}) }));
  for (const n of nets) {
    const gn = graphNet(n, colour.get(n)!);
    g.nets.push(gn);
    const virts = [...n.virts.values()].sort(byName);
    for (const v of virts) (v.phys ? g.virts : g.unplaced).push(graphVirt(v));
    const ps = netPhyses(n);
    if (gn.drawing === 'pairs') {
      for (let i = 0; i < ps.length; i++) {
        for (let j = i + 1; j < ps.length; j++) {
          if (focus && ps[i] !== focus && ps[j] !== focus) continue;
          g.tunnels.push({ net: n.name, a: ps[i]!.name, b: ps[j]!.name, label: tunnelLabel(gn) });
        }
      }
    }
    if (gn.drawing === 'routed') {
      const o = (n.effectiveSettings()?.options ?? {}) as { uplink?: string; mode?: string };
      for (const p of ps) if (!focus || p === focus) g.uplinks.push({ net: n.name, phys: p.name, uplink: o.uplink ?? p.if ?? '?', mode: o.mode ?? 'nat' });
    }
  }
  return g;
}

const q = (s: string): string => JSON.stringify(s);
const physId = (p: string): string => q(`phys:${p}`);
const hubId = (n: string): string => q(`hub:${n}`);
const html = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Graphviz DOT text of a graph (undirected; `dot -Tsvg` lays it out). */
export function graphDot(g: Graph): string {
  const L: string[] = [];
  const netOf = new Map(g.nets.map((n) => [n.name, n]));
  L.push(`graph ${q(g.name)} {`);
  L.push(`  graph [label=${q(`lsdn: ${g.name}`)}, labelloc=t, fontname="Helvetica", fontsize=14, rankdir=LR, nodesep=0.25, ranksep=1.2, newrank=true];`);
  L.push('  node [fontname="Helvetica", fontsize=10, shape=box, style="rounded,filled", fillcolor="#ffffff"];');
  L.push('  edge [fontname="Helvetica", fontsize=9, penwidth=1.6];');
  // Legend: one node per net, its colour, type, id and subnets.
  L.push('  subgraph "cluster_legend" {');
  L.push('    label="nets"; style="dashed"; color="#999999";');
  for (const n of g.nets) {
    const lines = [n.name, tunnelLabel(n) + (n.port !== undefined ? ` port ${n.port}` : ''), ...(n.group ? [`group ${n.group}`] : []), ...n.subnets];
    L.push(`    ${q(`net:${n.name}`)} [label=${q(lines.join('\n'))}, fillcolor=${q(n.fill)}, color=${q(n.stroke)}];`);
  }
  L.push('  }');
  const compact = g.physes.length > MESH_HOSTS;
  for (const p of compact ? g.physes : []) {
    // Many hosts: one node per host, a coloured row per net ("net: N virts"), so 40 stay readable.
    const rows = g.nets.flatMap((n) => {
      const c = g.virts.filter((v) => v.phys === p.name && v.net === n.name).length;
      const up = g.uplinks.find((u) => u.phys === p.name && u.net === n.name);
      return c > 0 || up ? [`<tr><td bgcolor=${q(n.fill)}>${html(n.name)}: ${c} virt${c === 1 ? '' : 's'}${up ? ` (${html(up.mode)} via ${html(up.uplink)})` : ''}</td></tr>`] : [];
    });
    const under = [p.if, p.ip].filter(Boolean).join(' ') || 'no underlay';
    L.push(`  ${physId(p.name)} [shape=plain, style="", label=<<table border="1" cellborder="0" cellspacing="1" bgcolor="#f4f4f4"><tr><td><b>${html(p.name)}</b> ${html(under)}</td></tr>${rows.join('')}</table>>];`);
  }
  for (const p of compact ? [] : g.physes) {
    L.push(`  subgraph ${q(`cluster_phys_${p.name}`)} {`);
    L.push(`    label=${q(p.name)}; style="rounded,filled"; fillcolor="#f4f4f4"; color="#555555"; fontsize=12;`);
    const under = [p.if, p.ip].filter(Boolean).join(' ') || 'no underlay';
    L.push(`    ${physId(p.name)} [label=${q(under)}, shape=box, style="filled", fillcolor="#dddddd", color="#555555"];`);
    for (const n of g.nets) {
      const vs = g.virts.filter((v) => v.phys === p.name && v.net === n.name);
      if (vs.length > COLLAPSE_VIRTS) {
        L.push(`    ${q(`virts:${n.name}@${p.name}`)} [label=${q(`${n.name}: ${vs.length} virts`)}, fillcolor=${q(n.fill)}, color=${q(n.stroke)}];`);
        continue;
      }
      for (const v of vs) {
        const lines = [`${v.net}/${v.name}`, ...v.ips.map((ip) => ip.replace(/\/\d+$/, ''))];
        L.push(`    ${q(`virt:${v.net}/${v.name}`)} [label=${q(lines.join('\n'))}, fillcolor=${q(n.fill)}, color=${q(n.stroke)}];`);
      }
    }
    for (const u of g.uplinks.filter((x) => x.phys === p.name)) {
      L.push(`    ${q(`uplink:${u.net}@${p.name}`)} [label=${q(`${u.net} gateway\n${u.mode} via ${u.uplink}`)}, shape=box, style="filled,dashed", fillcolor=${q(netOf.get(u.net)!.fill)}];`);
    }
    L.push('  }');
  }
  // Virts inside a host hang off its underlay node (dotted, in the net's colour).
  for (const p of compact ? [] : g.physes) {
    const seen = new Set<string>();
    for (const v of g.virts.filter((x) => x.phys === p.name)) {
      const collapsed = g.virts.filter((x) => x.phys === p.name && x.net === v.net).length > COLLAPSE_VIRTS;
      const id = collapsed ? q(`virts:${v.net}@${p.name}`) : q(`virt:${v.net}/${v.name}`);
      if (seen.has(id)) continue;
      seen.add(id);
      L.push(`  ${id} -- ${physId(p.name)} [color=${q(netOf.get(v.net)!.stroke)}, penwidth=1, style=dotted];`);
    }
  }
  for (const t of g.tunnels) {
    const n = netOf.get(t.net)!;
    L.push(`  ${physId(t.a)} -- ${physId(t.b)} [label=${q(`${t.net}: ${t.label}`)}, color=${q(n.stroke)}, fontcolor=${q(n.stroke)}];`);
  }
  for (const n of g.nets.filter((x) => x.drawing === 'hub' || x.drawing === 'wire')) {
    const hosts = n.hosts.filter((h) => g.physes.some((p) => p.name === h));
    const what = n.drawing === 'wire' ? (n.type === 'direct' ? 'shared L2 segment' : `VLAN trunk, tag ${n.vni ?? '?'}`) : n.group ? `multicast ${n.group}` : `full mesh, ${hosts.length} hosts`;
    L.push(`  ${hubId(n.name)} [label=${q(`${n.name}: ${tunnelLabel(n)}\n${what}`)}, shape=ellipse, style="filled", fillcolor=${q(n.fill)}, color=${q(n.stroke)}];`);
    for (const h of hosts) L.push(`  ${physId(h)} -- ${hubId(n.name)} [color=${q(n.stroke)}];`);
  }
  if (g.uplinks.length > 0) {
    L.push('  "outside" [label="outside\\n(uplinks)", shape=ellipse, style="filled", fillcolor="#ffffff", color="#333333"];');
    for (const u of g.uplinks) L.push(`  ${compact ? physId(u.phys) : q(`uplink:${u.net}@${u.phys}`)} -- "outside" [${compact ? '' : `label=${q(u.uplink)}, `}color=${q(netOf.get(u.net)!.stroke)}, style=dashed];`);
  }
  if (g.unplaced.length > 0) {
    L.push(`  "unplaced" [label=${q(`not on any host:\n${g.unplaced.map((v) => `${v.net}/${v.name}`).join('\n')}`)}, shape=note, style="filled", fillcolor="#ffffff"];`);
  }
  L.push('}');
  return L.join('\n') + '\n';
}
