/**
 * Kernel feature probe for `lsdn doctor`: what link types, qdiscs, classifiers, actions and
 * nftables families this kernel really has. Nothing is assumed from module lists or the
 * kernel version: throw-away objects are created inside a fresh, uniquely named network
 * namespace (always deleted), a few batches of them (`ip|tc -force -batch`, one `nft -f`),
 * and every failed batch line marks its feature absent.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { Kernel } from './exec.js';
import { KernelError } from '../core/errors.js';
import type { NetworkTypeName } from '../model/netmodel.js';
import { NETWORK_TYPE_PLUGINS } from '../types/registry.js';
import { onPath } from './tools.js';
import { alive } from './lock.js';

export interface KernelFeatures {
  /** Link types: bridge vxlan geneve vlan veth macvlan ifb dummy tun. */
  links: Record<string, boolean>;
  /** Qdiscs: ingress clsact htb tbf. */
  qdiscs: Record<string, boolean>;
  /** tc classifiers: u32 flower bpf matchall. */
  classifiers: Record<string, boolean>;
  /** tc actions: mirred gact tunnel_key police. */
  actions: Record<string, boolean>;
  nft: {
    installed: boolean;
    bridgeFamily: boolean;
    netdevFamily: boolean;
    /** `ct` expressions (conntrack) in the inet family. */
    conntrack?: boolean;
    /** `ct` expressions in the bridge family (needs nf_conntrack_bridge). */
    bridgeConntrack?: boolean;
    /**
     * br_netfilter is loaded (/proc/sys/net/bridge exists): bridges can pass bridged IP
     * through the inet hooks, where conntrack works (lsdn's stateful policy needs it).
     */
    bridgeNetfilter?: boolean;
  };
  bridgeVlanFiltering: boolean;
  /** Programs lsdn runs besides iproute2 and nft (looked up on PATH): dnsmasq serves addresses. */
  programs?: { dnsmasq: boolean };
  /** Why a feature is absent, by "<group>.<name>" (the tool's error), when it said. */
  errors?: Record<string, string>;
}

export const LINK_FEATURES = ['bridge', 'vxlan', 'geneve', 'vlan', 'veth', 'macvlan', 'ifb', 'dummy', 'tun'] as const;
export const QDISC_FEATURES = ['ingress', 'clsact', 'htb', 'tbf'] as const;
export const CLASSIFIER_FEATURES = ['u32', 'flower', 'bpf', 'matchall'] as const;
export const ACTION_FEATURES = ['mirred', 'gact', 'tunnel_key', 'police'] as const;

/** One probe: a batch line and the feature it proves when it succeeds. */
interface Probe {
  line: string;
  feature?: string;
}

/** Per-line errors of `nft -f -` (nft reports every failing line of a batch). */
export function nftLineErrors(stderr: string): Map<number, string> {
  const out = new Map<number, string>();
  const re = /^(?:\/dev\/stdin|-):(\d+):[\d-]+: (.*)$/gm;
  for (let m = re.exec(stderr); m; m = re.exec(stderr)) {
    const n = Number(m[1]);
    if (!out.has(n)) out.set(n, (m[2] as string).trim());
  }
  return out;
}

/** Run `TOOL -force -batch -` and return the per-line errors (empty when all succeeded). */
async function forceBatch(kernel: Kernel, tool: 'ip' | 'tc', lines: string[]): Promise<Map<number, string>> {
  try {
    return new Map((await kernel.batchForce(tool, lines)).map((f) => [f.line, f.message]));
  } catch (e) {
    if (!(e instanceof KernelError) || e.exitCode === null) throw e;
    // A failure the tool did not attribute to a line: count every line as failed.
    return new Map(lines.map((_, i) => [i + 1, e.stderr.trim() || e.message]));
  }
}

/** Run probes; record each tagged probe's outcome in `into` (and its error in `errors`). */
async function runProbes(
  kernel: Kernel,
  tool: 'ip' | 'tc',
  probes: Probe[],
  group: string,
  into: Record<string, boolean>,
  errors: Record<string, string>,
): Promise<void> {
  const errs = await forceBatch(kernel, tool, probes.map((p) => p.line));
  probes.forEach((p, i) => {
    if (!p.feature) return;
    const err = errs.get(i + 1);
    into[p.feature] = err === undefined;
    if (err !== undefined) errors[`${group}.${p.feature}`] = err;
    else delete errors[`${group}.${p.feature}`];
  });
}

function falses(names: readonly string[]): Record<string, boolean> {
  return Object.fromEntries(names.map((n) => [n, false]));
}

async function probeLinks(k: Kernel, f: KernelFeatures, errors: Record<string, string>): Promise<void> {
  const vf: Record<string, boolean> = {};
  await runProbes(
    k,
    'ip',
    [
      { line: 'link add pbr type bridge', feature: 'bridge' },
      { line: 'link add pvx type vxlan id 1 dstport 4789', feature: 'vxlan' },
      { line: 'link add pgn type geneve id 1 remote 127.0.0.2', feature: 'geneve' },
      { line: 'link add pve0 type veth peer name pve1', feature: 'veth' },
      { line: 'link add link pve0 name pvl type vlan id 5', feature: 'vlan' },
      { line: 'link add link pve0 name pmv type macvlan mode bridge', feature: 'macvlan' },
      { line: 'link add pifb type ifb', feature: 'ifb' },
      { line: 'link add pdm type dummy', feature: 'dummy' },
      { line: 'tuntap add ptp mode tap', feature: 'tun' },
    ],
    'links',
    f.links,
    errors,
  );
  // vlan/macvlan were stacked on a veth; without veth, retry them on the bridge.
  if (!f.links.veth && f.links.bridge) {
    await runProbes(
      k,
      'ip',
      [
        { line: 'link add link pbr name pvl type vlan id 5', feature: 'vlan' },
        { line: 'link add link pbr name pmv type macvlan mode bridge', feature: 'macvlan' },
      ],
      'links',
      f.links,
      errors,
    );
  }
  if (f.links.bridge) {
    await runProbes(k, 'ip', [{ line: 'link add pbv type bridge vlan_filtering 1', feature: 'vlan_filtering' }], 'bridge', vf, errors);
    f.bridgeVlanFiltering = vf.vlan_filtering === true;
  }
}

async function probeTc(k: Kernel, f: KernelFeatures, errors: Record<string, string>): Promise<void> {
  const dev = 'lo';
  // Classifiers are probed as lsdn installs them, with an action (mirred, probed on its own
  // too): some kernels (Debian's 6.1) refuse a matchall filter without one.
  const act = `action mirred egress redirect dev ${dev}`;
  const filters = (parent: string): Probe[] => [
    { line: `filter add dev ${dev} ${parent} protocol all prio 1 u32 match u32 0 0 flowid 1:1`, feature: 'u32' },
    { line: `filter add dev ${dev} ${parent} protocol all prio 2 flower ${act}`, feature: 'flower' },
    { line: `filter add dev ${dev} ${parent} protocol all prio 3 bpf bytecode "1,6 0 0 0"`, feature: 'bpf' },
    { line: `filter add dev ${dev} ${parent} protocol all prio 4 matchall ${act}`, feature: 'matchall' },
  ];
  const actions: Probe[] = [
    { line: `actions add action mirred egress redirect dev ${dev} index 101`, feature: 'mirred' },
    { line: 'actions add action gact drop index 102', feature: 'gact' },
    { line: 'actions add action tunnel_key unset index 103', feature: 'tunnel_key' },
    { line: 'actions add action police rate 1mbit burst 10k index 104', feature: 'police' },
  ];
  // Qdiscs one after the other on lo (htb/tbf are both root qdiscs, ingress/clsact exclude
  // each other), then classifiers on clsact's ingress hook, then stand-alone actions.
  const all: Probe[] = [
    { line: `qdisc add dev ${dev} root handle 1: htb`, feature: 'htb' },
    { line: `qdisc del dev ${dev} root` },
    { line: `qdisc add dev ${dev} root handle 1: tbf rate 1mbit burst 10k latency 50ms`, feature: 'tbf' },
    { line: `qdisc del dev ${dev} root` },
    { line: `qdisc add dev ${dev} ingress`, feature: 'ingress' },
    { line: `qdisc del dev ${dev} ingress` },
    { line: `qdisc add dev ${dev} clsact`, feature: 'clsact' },
  ];
  const errs = await forceBatch(k, 'tc', [...all, ...filters('ingress'), ...actions].map((p) => p.line));
  const record = (probes: Probe[], offset: number, group: string, into: Record<string, boolean>, e: Map<number, string>) => {
    probes.forEach((p, i) => {
      if (!p.feature) return;
      const err = e.get(offset + i + 1);
      into[p.feature] = err === undefined;
      if (err !== undefined) errors[`${group}.${p.feature}`] = err;
      else delete errors[`${group}.${p.feature}`];
    });
  };
  record(all, 0, 'qdiscs', f.qdiscs, errs);
  record(filters('ingress'), all.length, 'classifiers', f.classifiers, errs);
  record(actions, all.length + 4, 'actions', f.actions, errs);
  if (f.qdiscs.clsact) return;
  // No clsact: the classifiers had nothing to attach to. Retry on ingress, or under htb.
  let base: Probe[] | undefined;
  let parent = '';
  if (f.qdiscs.ingress) {
    base = [{ line: `qdisc add dev ${dev} ingress` }];
    parent = 'parent ffff:';
  } else if (f.qdiscs.htb) {
    base = [{ line: `qdisc add dev ${dev} root handle 1: htb` }];
    parent = 'parent 1:';
  }
  if (!base) return;
  const again = await forceBatch(k, 'tc', [...base, ...filters(parent)].map((p) => p.line));
  record(filters(parent), base.length, 'classifiers', f.classifiers, again);
}

async function probeNft(k: Kernel, f: KernelFeatures, errors: Record<string, string>): Promise<void> {
  const probes: { line: string; set: (ok: boolean) => void; name: string }[] = [
    { name: 'bridgeFamily', line: 'table bridge lsdnp_b { chain c { type filter hook forward priority 0; }; }', set: (ok) => (f.nft.bridgeFamily = ok) },
    { name: 'netdevFamily', line: 'table netdev lsdnp_n { chain c { type filter hook ingress device "lo" priority 0; }; }', set: (ok) => (f.nft.netdevFamily = ok) },
    { name: 'conntrack', line: 'table inet lsdnp_c { chain c { ct state established accept; }; }', set: (ok) => (f.nft.conntrack = ok) },
    { name: 'bridgeConntrack', line: 'table bridge lsdnp_bc { chain c { ct state established accept; }; }', set: (ok) => (f.nft.bridgeConntrack = ok) },
  ];
  let errs = new Map<number, string>();
  try {
    await k.run('nft', ['-f', '-'], { input: probes.map((p) => p.line).join('\n') + '\n', mutates: true });
    f.nft.installed = true;
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    if ((e.exitCode === null && / is not installed/.test(e.message)) || /exec of "nft" failed/.test(e.stderr)) {
      f.nft.installed = false;
      return;
    }
    f.nft.installed = true;
    errs = nftLineErrors(e.stderr);
    if (errs.size === 0) probes.forEach((_, i) => errs.set(i + 1, e.stderr.trim() || e.message));
  }
  probes.forEach((p, i) => {
    const err = errs.get(i + 1);
    p.set(err === undefined);
    if (err !== undefined) errors[`nft.${p.name}`] = err;
  });
  // A module, global to the kernel: its sysctl directory shows in every namespace once loaded.
  f.nft.bridgeNetfilter = existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables');
  if (!f.nft.bridgeNetfilter) errors['nft.bridgeNetfilter'] = 'br_netfilter is not loaded (modprobe br_netfilter)';
}

/** The probe's throw-away namespaces: `lsdnprobe-<pid in base 36>-<random hex>`. */
export const PROBE_NS_PREFIX = 'lsdnprobe-';
const PROBE_NS = /^lsdnprobe-([0-9a-z]+)-[0-9a-f]+$/;


/**
 * A probe killed before its `finally` (SIGKILL of apply) leaves its namespace behind: the next
 * probe deletes those whose process is gone (in one batch; a live pid's, another probe
 * running now, is left alone). Returns the names deleted.
 */
export async function removeStaleProbeNamespaces(root: Kernel = new Kernel(), dir = '/run/netns'): Promise<string[]> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const stale = names.filter((n) => {
    const m = PROBE_NS.exec(n);
    return m !== null && !alive(parseInt(m[1] as string, 36));
  });
  if (stale.length) await root.batchForce('ip', stale.map((n) => `netns del ${n}`)).catch(() => undefined);
  return stale;
}

/**
 * Probe this kernel. Runs as root (it creates a network namespace); `kernel` is the caller's
 * (its process counts include the probe's).
 */
export async function probeFeatures(kernel: Kernel = new Kernel()): Promise<KernelFeatures> {
  const features: KernelFeatures = {
    links: falses(LINK_FEATURES),
    qdiscs: falses(QDISC_FEATURES),
    classifiers: falses(CLASSIFIER_FEATURES),
    actions: falses(ACTION_FEATURES),
    nft: { installed: false, bridgeFamily: false, netdevFamily: false, conntrack: false, bridgeConntrack: false },
    bridgeVlanFiltering: false,
  };
  const errors: Record<string, string> = {};
  const ns = `${PROBE_NS_PREFIX}${process.pid.toString(36)}-${randomBytes(4).toString('hex')}`;
  const root = new Kernel(); // `ip netns add|del` act on /run/netns, whatever namespace `kernel` works in
  await removeStaleProbeNamespaces(root);
  await root.run('ip', ['netns', 'add', ns], { mutates: true });
  const k = new Kernel({ netns: ns });
  try {
    await k.run('ip', ['link', 'set', 'lo', 'up'], { mutates: true });
    // Independent groups in parallel: links (ip), tc on lo, nftables.
    await Promise.all([probeLinks(k, features, errors), probeTc(k, features, errors), probeNft(k, features, errors)]);
  } finally {
    await root.run('ip', ['netns', 'del', ns], { mutates: true }).catch(() => undefined);
    for (const s of [root.stats, k.stats]) {
      kernel.stats.processes += s.processes;
      kernel.stats.operations += s.operations;
    }
  }
  features.programs = { dnsmasq: onPath('dnsmasq') };
  if (Object.keys(errors).length > 0) features.errors = errors;
  return features;
}

const GROUPS = [
  ['links', 'link type'],
  ['classifiers', 'tc classifier'],
  ['actions', 'tc action'],
] as const;

/** Which network types this kernel can run, and what each one lacks. */
export function typeSupport(features: KernelFeatures): { type: NetworkTypeName; ok: boolean; missing: string[] }[] {
  return (Object.keys(NETWORK_TYPE_PLUGINS) as NetworkTypeName[]).map((type) => {
    const needs = NETWORK_TYPE_PLUGINS[type].needs;
    const missing: string[] = [];
    for (const [group] of GROUPS) {
      for (const name of needs[group] ?? []) if (features[group][name] !== true) missing.push(name);
    }
    return { type, ok: missing.length === 0, missing };
  });
}

function yn(v: boolean | undefined): string {
  return v ? 'yes' : 'no';
}

/** The human report of `lsdn doctor`. */
export function formatDoctor(features: KernelFeatures, support: { type: NetworkTypeName; ok: boolean; missing: string[] }[]): string {
  const out: string[] = [];
  const why = (key: string) => {
    const e = features.errors?.[key];
    return e ? `  (${e})` : '';
  };
  const section = (title: string, group: 'links' | 'qdiscs' | 'classifiers' | 'actions') => {
    out.push(`${title}:`);
    const names = Object.keys(features[group]);
    const w = Math.max(...names.map((n) => n.length));
    for (const n of names) out.push(`  ${n.padEnd(w)}  ${yn(features[group][n])}${features[group][n] ? '' : why(`${group}.${n}`)}`);
  };
  out.push('Kernel features (probed in a throw-away network namespace):');
  section('Link types', 'links');
  out.push(`  bridge VLAN filtering  ${yn(features.bridgeVlanFiltering)}${features.bridgeVlanFiltering ? '' : why('bridge.vlan_filtering')}`);
  section('Qdiscs', 'qdiscs');
  section('tc classifiers', 'classifiers');
  section('tc actions', 'actions');
  out.push('nftables:');
  const nft: [string, string, boolean | undefined][] = [
    ['installed', 'nft installed', features.nft.installed],
    ['bridgeFamily', 'bridge family', features.nft.bridgeFamily],
    ['netdevFamily', 'netdev family', features.nft.netdevFamily],
    ['conntrack', 'conntrack (inet)', features.nft.conntrack],
    ['bridgeConntrack', 'conntrack (bridge)', features.nft.bridgeConntrack],
    ['bridgeNetfilter', 'br_netfilter', features.nft.bridgeNetfilter],
  ];
  for (const [key, label, v] of nft) {
    if (v === undefined) continue;
    out.push(`  ${label.padEnd(18)}  ${yn(v)}${v || !features.nft.installed ? '' : why(`nft.${key}`)}`);
  }
  if (features.programs) {
    out.push('Programs:');
    const d = features.programs.dnsmasq;
    out.push(`  dnsmasq             ${yn(d)}${d ? '' : '  (needed to serve addresses, DHCP/SLAAC; Debian: dnsmasq-base, scripts/setup.sh)'}`);
  }
  out.push('');
  out.push('Network types:');
  const w = Math.max(...support.map((s) => s.type.length));
  for (const s of support) {
    if (s.ok) {
      out.push(`  ${s.type.padEnd(w)}  ok`);
      continue;
    }
    const needs = NETWORK_TYPE_PLUGINS[s.type].needs;
    const label = (m: string) => {
      const g = GROUPS.find(([group]) => (needs[group] ?? []).includes(m));
      return g ? `${g[1]} ${m}` : m;
    };
    out.push(`  ${s.type.padEnd(w)}  NOT runnable: missing ${s.missing.map(label).join(', ')}`);
  }
  return out.join('\n') + '\n';
}
