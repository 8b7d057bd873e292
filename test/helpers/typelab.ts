/**
 * Helpers of the network-type tests (test/kernel/types*.test.ts): which types this kernel can
 * run (probed once per process), netmodels of LSDN's test scenarios, labs that are removed
 * after the test whatever happens, applying the model on every simulated host, pinging, and
 * reading a simulated host's FDB.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { Kernel } from '../../src/kernel/exec.js';
import { probeFeatures, typeSupport, type KernelFeatures } from '../../src/kernel/probe.js';
import { Netmodel, type NetworkTypeName, type SettingsOptions } from '../../src/model/netmodel.js';
import { NETWORK_TYPE_PLUGINS } from '../../src/types/registry.js';
import { hasErrors, validate } from '../../src/validate/validate.js';
import { labDown, labUp } from '../../src/lab/lab.js';
import type { LabLayout } from '../../src/lab/layout.js';
import { applyInLab } from '../../src/lab/apply.js';
import { formatMatrix, labCheck, type CheckReport } from '../../src/lab/check.js';
import { deleteNamespacesWithPrefix, uniquePrefix } from './netns.js';
import { namePatterns } from '../vm/guest-tests.js';

// ---- what this kernel can run ----------------------------------------------------------------

export interface Support {
  features: KernelFeatures;
  /** type -> why it cannot run here (absent: it can). */
  missing: Map<NetworkTypeName, string>;
}

let support: Promise<Support> | undefined;

const GROUP_LABEL = { links: 'links', classifiers: 'tc classifier', actions: 'tc action' } as const;

/** Probe once per process; the reason names what is missing and the probe's error. */
export function kernelSupport(): Promise<Support> {
  support ??= probeFeatures().then((features) => {
    const missing = new Map<NetworkTypeName, string>();
    for (const s of typeSupport(features)) {
      if (s.ok) continue;
      const needs = NETWORK_TYPE_PLUGINS[s.type].needs;
      const parts = s.missing.map((m) => {
        const group = (Object.keys(GROUP_LABEL) as (keyof typeof GROUP_LABEL)[]).find((g) => (needs[g] ?? []).includes(m)) ?? 'links';
        const err = features.errors?.[`${group}.${m}`];
        const what = group === 'links' ? `${m} links` : `${GROUP_LABEL[group]} ${m}`;
        return `${what}: this kernel has none${err ? ` (probe: ${err})` : ''}`;
      });
      missing.set(s.type, `needs ${parts.join('; ')}`);
    }
    return { features, missing };
  });
  return support;
}

/** Skip the test (with the reason) unless the kernel runs every one of `types`; true when skipped. */
export async function skipUnlessRunnable(t: TestContext, ...types: NetworkTypeName[]): Promise<boolean> {
  const { missing } = await kernelSupport();
  const why = types.map((ty) => missing.get(ty)).filter((w): w is string => w !== undefined);
  if (why.length === 0) return false;
  // The test guest (test/vm) has a full distribution kernel: there a missing type is a failure.
  if (process.env.LSDN_EXPECT_RUNNABLE === '1') assert.fail(`this kernel was expected to run ${types.join(', ')}: ${why.join('; ')}`);
  const inVm = process.env.LSDN_VM_STEP_PLANNED === '1' && namePatterns().some((p) => new RegExp(p).test(t.name));
  t.skip(`${why.join('; ')}${inVm ? ' (runs in the VM step)' : ''}`);
  return true;
}

// ---- models ----------------------------------------------------------------------------------

export type Family = 4 | 6;

export interface VirtSpec {
  name: string;
  phys: string;
  mac: string;
  ips: string[];
  /** Host-side interface name (default: "v<net>-<name>", cut to 15 characters). */
  if?: string;
}

export interface NetSpec {
  name: string;
  vid?: number;
  /** Settings name (default: the model's default settings). */
  settings?: string;
  virts: VirtSpec[];
}

export interface ModelSpec {
  name?: string;
  /** Settings by name; "default" is used by nets naming none. */
  settings: Record<string, { type: NetworkTypeName } & SettingsOptions>;
  physes: string[];
  underlay: Family;
  nets: NetSpec[];
}

/** Underlay address of the i-th phys (0-based). */
export function physIp(i: number, family: Family): string {
  if (family === 6) return `fd00::${(i + 1).toString(16)}`;
  return `172.16.${Math.floor((i + 1) / 256)}.${(i + 1) % 256}`;
}

/** Settings options a type needs in these tests (a group for vxlan/mcast). */
export function typeOptions(type: NetworkTypeName, family: Family): SettingsOptions {
  return type === 'vxlan/mcast' ? { mcastIp: family === 6 ? 'ff05::1:1' : '239.1.1.1' } : {};
}

export function ifName(net: string, virt: string): string {
  return `v${net}-${virt}`.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 15);
}

/** Build the model (every phys attached to every net), and check that it validates. */
export function buildModel(spec: ModelSpec): Netmodel {
  const m = new Netmodel(spec.name ?? 'types');
  for (const [name, { type, ...opts }] of Object.entries(spec.settings)) m.addSettings(type, { name, ...opts });
  spec.physes.forEach((p, i) => m.addPhys(p, { if: 'eth0', ip: physIp(i, spec.underlay) }));
  for (const n of spec.nets) {
    const net = m.addNet(n.name, { vid: n.vid, ...(n.settings !== undefined ? { settings: n.settings } : {}) });
    for (const p of m.physes.values()) net.attach(p);
    for (const v of n.virts) net.virt(v.name, { mac: v.mac, ips: v.ips, phys: v.phys, if: v.if ?? ifName(n.name, v.name) });
  }
  const problems = validate(m);
  assert.ok(!hasErrors(problems), `the test model is invalid:\n${JSON.stringify(problems.filter((p) => p.severity === 'error'), null, 2)}`);
  return m;
}

/**
 * LSDN's "basic" scenario: physes a, b, c; net 1 has a1, a2 (on a), b1, c1; net 2 has a3 (on
 * a), b2 (on b). Both nets use one subnet (10.0.0.0/24, and fd10::/64 with `overlay6`), so a
 * ping across nets is on-link and only the datapath's isolation stops it. A direct net has no
 * id and must be alone on its physes: `oneNet` leaves net 2 out.
 */
export function basicSpec(type: NetworkTypeName, opts: { underlay?: Family; overlay6?: boolean; oneNet?: boolean } = {}): ModelSpec {
  const family = opts.underlay ?? 4;
  const hasId = NETWORK_TYPE_PLUGINS[type].idRange !== undefined;
  const virt = (name: string, phys: string, host: number, net: number): VirtSpec => ({
    name,
    phys,
    mac: `02:00:00:00:0${net}:${host.toString(16).padStart(2, '0')}`,
    ips: [`10.0.0.${host}/24`, ...(opts.overlay6 ? [`fd10::${host.toString(16)}/64`] : [])],
  });
  const nets: NetSpec[] = [
    { name: '1', ...(hasId ? { vid: 1 } : {}), virts: [virt('a1', 'a', 1, 1), virt('a2', 'a', 2, 1), virt('b1', 'b', 3, 1), virt('c1', 'c', 4, 1)] },
  ];
  if (!opts.oneNet) nets.push({ name: '2', ...(hasId ? { vid: 2 } : {}), virts: [virt('a3', 'a', 11, 2), virt('b2', 'b', 12, 2)] });
  return {
    name: 'basic',
    settings: { default: { type, ...typeOptions(type, family) } },
    physes: ['a', 'b', 'c'],
    underlay: family,
    nets,
  };
}

// ---- labs ------------------------------------------------------------------------------------

/** Apply the model on every simulated phys (in parallel), like `lsdn apply` on each host. */
export async function applyAll(model: Netmodel, layout: LabLayout): Promise<void> {
  await Promise.all([...model.physes.values()].map((p) => applyInLab(model, p, layout.physNs.get(p.name) as string)));
}

/** A unique lab prefix whose namespaces are removed after the test, whatever happens. */
export function labPrefixFor(t: TestContext, tag: string): string {
  const prefix = uniquePrefix(tag);
  t.after(async () => {
    try {
      await labDown(prefix);
    } finally {
      deleteNamespacesWithPrefix(`${prefix}-`);
    }
  });
  return prefix;
}

/** Build the lab and apply the model on every phys; the lab is removed after the test. */
export async function labFor(t: TestContext, model: Netmodel, tag: string): Promise<LabLayout> {
  const prefix = labPrefixFor(t, tag);
  return labUp(model, { prefix, apply: (phys, ns) => applyInLab(model, phys, ns) });
}

export interface ReportShape {
  /** Reachable pairs between virts on one phys / on different physes. */
  sameHost: number;
  crossHost: number;
  /** Pairs that must not answer (another net, same subnet). */
  isolated: number;
  /** Reachable pairs that answered only after a retry (one ping lost or slow). */
  retried: number;
}

/**
 * labCheck must have passed every pair, skipped none, and really contained the kinds of pairs
 * the scenario is about: same-net pairs on one host and across hosts, and (when `isolation`)
 * other-net pairs that are on-link, so that only the datapath could have stopped them.
 */
export function assertReport(model: Netmodel, layout: LabLayout, report: CheckReport, want: { isolation: boolean }): ReportShape {
  const matrix = formatMatrix(report, layout);
  assert.equal(report.failed, 0, `unexpected ping results:\n${matrix}`);
  assert.equal(report.skipped ?? 0, 0, `skipped pairs:\n${matrix}`);
  const physOf = (id: string) => model.virt(id)?.phys?.name;
  const shape: ReportShape = { sameHost: 0, crossHost: 0, isolated: 0, retried: 0 };
  for (const p of report.pairs) {
    if (p.expected) {
      assert.ok(p.reachable);
      if ((p.attempts ?? 1) > 1) shape.retried++;
      if (physOf(p.from) === physOf(p.to)) shape.sameHost++;
      else shape.crossHost++;
    } else {
      assert.equal(p.note, undefined, `${p.from} -> ${p.to}: ${p.note}`);
      assert.ok(!p.reachable);
      shape.isolated++;
    }
  }
  assert.ok(shape.sameHost > 0, `no same-host pair:\n${matrix}`);
  assert.ok(shape.crossHost > 0, `no cross-host pair:\n${matrix}`);
  if (want.isolation) assert.ok(shape.isolated > 0, `no other-net pair:\n${matrix}`);
  else assert.equal(shape.isolated, 0);
  return shape;
}

/** labCheck + assertReport. */
export async function checkLab(model: Netmodel, layout: LabLayout, want: { isolation: boolean }): Promise<ReportShape> {
  const report = await labCheck(model, layout);
  return assertReport(model, layout, report, want);
}

// ---- pings and FDB ---------------------------------------------------------------------------

/**
 * Ping several addresses at once from one namespace (`attempts` tries of `ping -c 1 -W 1`
 * each, stopping at the first answer). Returns address -> answered.
 */
export async function pingMany(netns: string, ips: string[], attempts = 3): Promise<Map<string, boolean>> {
  const lines = [
    'p() { a=0; while :; do a=$((a+1));',
    '  ping -n -q -c 1 -W 1 "$1" "$2" >/dev/null 2>&1; r=$?',
    `  if [ "$r" -eq 0 ] || [ "$a" -ge ${attempts} ]; then break; fi; sleep 0.1; done; echo "$2 $r"; }`,
    ...ips.map((ip) => `p -${ip.includes(':') ? 6 : 4} ${ip} &`),
    'wait',
  ];
  const { stdout } = await new Kernel({ netns }).run('sh', ['-c', lines.join('\n')]);
  const out = new Map<string, boolean>(ips.map((ip) => [ip, false]));
  for (const l of stdout.split('\n')) {
    const [ip, code] = l.trim().split(' ');
    if (ip && out.has(ip)) out.set(ip, code === '0');
  }
  return out;
}

export interface FdbEntry {
  mac: string;
  ifname: string;
  dst?: string;
  master?: string;
  vlan?: number;
  state?: string;
  flags?: string[];
}

/** Every FDB entry of a namespace (`bridge -j fdb show`). */
export async function fdbOf(netns: string): Promise<FdbEntry[]> {
  return new Kernel({ netns }).json<FdbEntry[]>('bridge', ['fdb', 'show']);
}

/** Names of the links of a namespace, with their master. */
export async function linksOf(netns: string): Promise<Map<string, { master?: string }>> {
  const links = await new Kernel({ netns }).json<{ ifname: string; master?: string }[]>('ip', ['link', 'show']);
  return new Map(links.map((l) => [l.ifname, l.master !== undefined ? { master: l.master } : {}]));
}

/** Milliseconds since `t0`, for the timing notes the tests print. */
export function since(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}
