/**
 * The feature probe, checked against direct one-command-per-feature checks in a test
 * namespace (not against a hard-coded picture of this machine), plus typeSupport and the
 * doctor report on synthetic feature sets.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Kernel } from '../../src/kernel/exec.js';
import { parseForceErrors } from '../../src/kernel/exec.js';
import { formatDoctor, nftLineErrors, probeFeatures, removeStaleProbeNamespaces, typeSupport, type KernelFeatures } from '../../src/kernel/probe.js';
import { randomBytes } from 'node:crypto';
import { isRoot, testNamespaces } from '../helpers/netns.js';

const skip = !isRoot() ? 'needs root' : false;

function netnsList(): string[] {
  return (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '').split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
}

/** Does a shell command succeed in the namespace? */
function works(ns: string, command: string): boolean {
  return spawnSync('ip', ['netns', 'exec', ns, 'sh', '-c', command], { encoding: 'utf8' }).status === 0;
}

function features(over: Partial<{ links: Record<string, boolean> }> = {}): KernelFeatures {
  return {
    links: { bridge: true, vxlan: true, geneve: true, vlan: true, veth: true, macvlan: true, ifb: true, dummy: true, tun: true, ...over.links },
    qdiscs: { ingress: true, clsact: true, htb: true, tbf: true },
    classifiers: { u32: true, flower: true, bpf: true, matchall: true },
    actions: { mirred: true, gact: true, tunnel_key: true, police: true },
    nft: { installed: true, bridgeFamily: true, netdevFamily: true, conntrack: true },
    bridgeVlanFiltering: true,
  };
}

describe('probeFeatures', { skip }, () => {
  it('a probe killed before deleting its namespace (SIGKILL of apply) leaves it to the next one, which removes it; a live probe\'s is kept', async (t) => {
    // A pid that is surely gone: a process that has exited and been reaped.
    const dead = spawnSync('true').pid as number;
    const tag = randomBytes(4).toString('hex');
    const stale = `lsdnprobe-${dead.toString(36)}-${tag}`;
    const live = `lsdnprobe-${process.pid.toString(36)}-${tag}`;
    t.after(() => {
      for (const n of [stale, live]) spawnSync('ip', ['netns', 'del', n]);
    });
    for (const n of [stale, live]) assert.equal(spawnSync('ip', ['netns', 'add', n]).status, 0);
    await probeFeatures(); // what apply and doctor run
    assert.deepEqual(await removeStaleProbeNamespaces(), [], 'the probe left a stale namespace for the next one');
    const now = netnsList();
    assert.ok(!now.includes(stale), 'the stale probe namespace is still there');
    assert.ok(now.includes(live), 'the namespace of a live process was deleted');
  });

  it('agrees with direct checks, takes a bounded number of processes, and leaves no namespace behind', async (t) => {
    const before = netnsList();
    const kernel = new Kernel();
    const t0 = Date.now();
    const f = await probeFeatures(kernel);
    const ms = Date.now() - t0;
    t.diagnostic(`probe took ${ms} ms`);
    assert.ok(kernel.stats.processes <= 12, `probe used ${kernel.stats.processes} processes`);
    const mine = `lsdnprobe-${process.pid.toString(36)}-`;
    assert.deepEqual(netnsList().filter((n) => !before.includes(n) && n.startsWith(mine)), []);

    // lsdn's baseline: this project's machines and every supported kernel have these.
    assert.equal(f.links.bridge, true);
    assert.equal(f.links.vxlan, true);
    assert.equal(f.links.veth, true);

    const ns = await testNamespaces(t, 'probe');
    const a = await ns.add('a');
    ns.sh(a, 'ip link add base0 type veth peer name base1');
    const links: Record<string, string> = {
      bridge: 'ip link add t-br type bridge',
      vxlan: 'ip link add t-vx type vxlan id 1 dstport 4789',
      geneve: 'ip link add t-gn type geneve id 1 remote 127.0.0.2',
      vlan: 'ip link add link base0 name t-vl type vlan id 5',
      veth: 'ip link add t-ve0 type veth peer name t-ve1',
      macvlan: 'ip link add link base0 name t-mv type macvlan mode bridge',
      ifb: 'ip link add t-ifb type ifb',
      dummy: 'ip link add t-dm type dummy',
      tun: 'ip tuntap add t-tap mode tap',
    };
    for (const [name, cmd] of Object.entries(links)) assert.equal(f.links[name], works(a, cmd), `link ${name}`);
    assert.equal(f.bridgeVlanFiltering, works(a, 'ip link add t-brv type bridge vlan_filtering 1'), 'bridge vlan_filtering');

    const qdiscs: Record<string, string> = {
      htb: 'tc qdisc add dev base0 root handle 1: htb',
      tbf: 'tc qdisc add dev base1 root tbf rate 1mbit burst 10k latency 50ms',
      ingress: 'tc qdisc add dev base0 ingress',
      clsact: 'tc qdisc add dev base1 clsact',
    };
    for (const [name, cmd] of Object.entries(qdiscs)) assert.equal(f.qdiscs[name], works(a, cmd), `qdisc ${name}`);

    if (f.qdiscs.clsact) {
      const classifiers: Record<string, string> = {
        u32: 'tc filter add dev base1 ingress prio 1 protocol all u32 match u32 0 0 flowid 1:1',
        flower: 'tc filter add dev base1 ingress prio 2 protocol all flower',
        bpf: 'tc filter add dev base1 ingress prio 3 protocol all bpf bytecode "1,6 0 0 0"',
        matchall: 'tc filter add dev base1 ingress prio 4 protocol all matchall',
      };
      for (const [name, cmd] of Object.entries(classifiers)) assert.equal(f.classifiers[name], works(a, cmd), `classifier ${name}`);
    }
    const actions: Record<string, string> = {
      mirred: 'tc actions add action mirred egress redirect dev base0 index 11',
      gact: 'tc actions add action drop index 12',
      tunnel_key: 'tc actions add action tunnel_key unset index 13',
      police: 'tc actions add action police rate 1mbit burst 10k index 14',
    };
    for (const [name, cmd] of Object.entries(actions)) assert.equal(f.actions[name], works(a, cmd), `action ${name}`);

    const nftOk = spawnSync('nft', ['--version']).status === 0;
    assert.equal(f.nft.installed, nftOk);
    if (nftOk) {
      assert.equal(f.nft.bridgeFamily, works(a, `nft 'add table bridge t; add chain bridge t c { type filter hook forward priority 0; }'`));
      assert.equal(f.nft.netdevFamily, works(a, `nft 'add table netdev t; add chain netdev t c { type filter hook ingress device "base0" priority 0; }'`));
      assert.equal(f.nft.conntrack, works(a, `nft 'add table inet t; add chain inet t c; add rule inet t c ct state established accept'`));
    }

    // Every absent feature says why.
    for (const group of ['links', 'qdiscs', 'classifiers', 'actions'] as const) {
      for (const [name, ok] of Object.entries(f[group])) {
        if (!ok && (group !== 'classifiers' || f.qdiscs.clsact)) assert.ok(f.errors?.[`${group}.${name}`], `${group}.${name} has a reason`);
      }
    }

    // What the report and typeSupport make of it.
    const support = typeSupport(f);
    const by = Object.fromEntries(support.map((s) => [s.type, s]));
    assert.equal(by['vxlan/e2e']?.ok, true);
    assert.equal(by['vxlan/static']?.ok, true);
    assert.equal(by.geneve?.ok, f.links.geneve);
    if (!f.links.geneve) assert.deepEqual(by.geneve?.missing, ['geneve']);
    const text = formatDoctor(f, support);
    assert.match(text, /vxlan\s+yes/);
    assert.match(text, new RegExp(`flower\\s+${f.classifiers.flower ? 'yes' : 'no'}`));
  });

  it('cleans its namespace up even when a probe step throws', async () => {
    const mine = `lsdnprobe-${process.pid.toString(36)}-`;
    const kernel = new Kernel();
    // Break the probe after the namespace exists: every tool run inside it throws.
    const original = Kernel.prototype.run;
    Kernel.prototype.run = async function (this: Kernel, tool: string, args: string[], opts?: { input?: string; mutates?: boolean }) {
      if (this.netns?.startsWith(mine)) throw new Error('boom');
      return original.call(this, tool, args, opts);
    };
    try {
      await assert.rejects(probeFeatures(kernel), /boom/);
    } finally {
      Kernel.prototype.run = original;
    }
    assert.deepEqual(netnsList().filter((n) => n.startsWith(mine)), []);
  });
});

describe('typeSupport', () => {
  it('marks the types whose needs are missing, and only those', () => {
    const f = features({ links: { geneve: false } });
    const support = typeSupport(f);
    const by = Object.fromEntries(support.map((s) => [s.type, s]));
    assert.deepEqual(by.geneve, { type: 'geneve', ok: false, missing: ['geneve'] });
    assert.deepEqual(by['geneve/e2e'], { type: 'geneve/e2e', ok: false, missing: ['geneve'] });
    for (const t of ['vxlan/e2e', 'vxlan/mcast', 'vxlan/static', 'vxvde', 'direct', 'vlan'] as const) assert.equal(by[t]?.ok, true, t);
  });

  it('needs the bridge for every type and vlan links for vlan', () => {
    const noBridge = typeSupport(features({ links: { bridge: false, vlan: false } }));
    for (const s of noBridge) {
      assert.equal(s.ok, false, s.type);
      assert.ok(s.missing.includes('bridge'), s.type);
    }
    assert.deepEqual(noBridge.find((s) => s.type === 'vlan')?.missing, ['bridge', 'vlan']);
  });
});

describe('formatDoctor', () => {
  it('lists every feature as yes/no and every type as runnable or not, with why', () => {
    const f = features({ links: { geneve: false } });
    f.errors = { 'links.geneve': 'Error: Unknown device type.' };
    const text = formatDoctor(f, typeSupport(f));
    assert.match(text, /^ {2}geneve +no {2}\(Error: Unknown device type\.\)$/m);
    assert.match(text, /^ {2}vxlan +yes$/m);
    assert.match(text, /^ {2}flower +yes$/m);
    assert.match(text, /^ {2}geneve\/e2e +NOT runnable: missing link type geneve$/m);
    assert.match(text, /^ {2}vxlan\/static +ok$/m);
  });
});

describe('batch error parsing', () => {
  it('attributes iproute2 -force errors to their lines', () => {
    const stderr = 'Error: Unknown device type.\nCommand failed -:2\nError: TC classifier not found.\nWe have an error talking to the kernel\nCommand failed -:5\n';
    const lines = ['l1', 'l2', 'l3', 'l4', 'l5'];
    assert.deepEqual(parseForceErrors(stderr, lines), [
      { line: 2, text: 'l2', message: 'Error: Unknown device type.' },
      { line: 5, text: 'l5', message: 'Error: TC classifier not found.' },
    ]);
  });

  it('attributes every nft error to its line', () => {
    const stderr = [
      '/dev/stdin:2:35-42: Error: Could not process rule: Protocol error',
      'table bridge x { chain c { ct state established accept; }; }',
      '                                  ^^^^^^^^',
      '/dev/stdin:4:1-5: Error: syntax error',
    ].join('\n');
    assert.deepEqual([...nftLineErrors(stderr)], [[2, 'Error: Could not process rule: Protocol error'], [4, 'Error: syntax error']]);
  });
});

// On a full distribution kernel (the test guest of test/vm sets LSDN_EXPECT_RUNNABLE=1) the
// doctor must find every network type runnable and every tc classifier and action there.
describe('lsdn doctor on a full distribution kernel', { skip: skip || (process.env.LSDN_EXPECT_RUNNABLE !== '1' && 'only on a full distribution kernel (the VM step runs it)') }, () => {
  it('doctor: every network type runnable, every tc classifier and action found', () => {
    const r = spawnSync(process.execPath, [new URL('../../bin/lsdn', import.meta.url).pathname, 'doctor', '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const d = JSON.parse(r.stdout) as { features: KernelFeatures; types: { type: string; ok: boolean; missing: string[] }[] };
    assert.deepEqual(d.types.filter((t) => !t.ok), []);
    const off = (g: Record<string, boolean>) => Object.entries(g).filter(([, v]) => !v).map(([k]) => k);
    assert.deepEqual({ classifiers: off(d.features.classifiers), actions: off(d.features.actions), links: off(d.features.links) }, { classifiers: [], actions: [], links: [] });
  });
});
