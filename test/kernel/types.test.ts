/**
 * Every network type, with real packets (issue 4): lsdn's own apply (`applyInLab`, the code
 * path of `lsdn apply --netns`) on simulated hosts, then pings between the virts' namespaces.
 * LSDN's test scenarios: basic (per type), msettings, duplicate MACs, migration, an IPv6
 * underlay and 40 hosts on vxlan/static.
 *
 * Which types run is decided at run time by the feature probe: a type the kernel cannot run
 * (here: vlan, geneve, geneve/e2e) is skipped with the reason, and runs where the kernel has it.
 * Nets of one scenario share one subnet, so an other-net ping is on-link: ARP, not routing, is
 * what the datapath has to keep apart.
 */
import assert from 'node:assert/strict';
import { before, describe, test, type TestContext } from 'node:test';
import { Kernel } from '../../src/kernel/exec.js';
import { NETWORK_TYPES } from '../../src/types/registry.js';
import type { Netmodel, NetworkTypeName } from '../../src/model/netmodel.js';
import { NETWORK_TYPE_PLUGINS } from '../../src/types/registry.js';
import { ownedIfname } from '../../src/core/names.js';
import { planHost } from '../../src/apply/host.js';
import { labMoveVirt } from '../../src/lab/move.js';
import type { LabLayout } from '../../src/lab/layout.js';
import { ensureNeighbourTableRoom, isRoot } from '../helpers/netns.js';
import {
  applyAll, basicSpec, buildModel, checkLab, fdbOf, ifName, labFor, linksOf, pingMany, since,
  skipUnlessRunnable, typeOptions, type ModelSpec, type NetSpec,
} from '../helpers/typelab.js';

const skip = isRoot() ? false : 'needs root';

/**
 * L2 types: one segment across hosts. `public` is routed by each host (one segment per host,
 * the host the gateway): its lab tests are in addressing.test.ts.
 */
const L2_TYPES = NETWORK_TYPES.filter((t) => t !== 'public');
/** Types that can carry several nets on one phys (all L2 types but direct). */
const MULTI_NET_TYPES = L2_TYPES.filter((t) => t !== 'direct');

function tag(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, '_');
}

function report(t: TestContext, what: string, t0: number, extra = ''): void {
  t.diagnostic(`${what}: ${since(t0)}${extra ? `; ${extra}` : ''}`);
}

describe('network types with real pings', { skip, concurrency: 4 }, () => {
  // Labs of other test files and sessions share the kernel's neighbour table with these.
  before(() => {
    const changed = ensureNeighbourTableRoom();
    if (changed.length) console.log(`raised the kernel's shared neighbour-table limits: ${changed.join(', ')}`);
  });

  // ---- basic, per type -----------------------------------------------------------------------
  for (const type of L2_TYPES) {
    const oneNet = type === 'direct';
    test(`basic: ${type}${oneNet ? ' (one net: direct has no isolation)' : ''}`, async (t) => {
      if (await skipUnlessRunnable(t, type)) return;
      const t0 = Date.now();
      const model = buildModel(basicSpec(type, { oneNet }));
      const layout = await labFor(t, model, `b-${tag(type)}`);
      const shape = await checkLab(model, layout, { isolation: !oneNet });
      report(t, 'lab + apply + pings', t0, JSON.stringify(shape));
    });
  }

  // ---- msettings: two nets with the same id, of two types ------------------------------------
  const msettings: [NetworkTypeName, NetworkTypeName][] = [
    ['vxlan/e2e', 'vxlan/static'],
    ['vlan', 'vxlan/e2e'],
    ['vlan', 'vxlan/static'],
  ];
  for (const [t1, t2] of msettings) {
    test(`msettings: a ${t1} net and a ${t2} net, both with id 1, stay isolated`, async (t) => {
      if (await skipUnlessRunnable(t, t1, t2)) return;
      const t0 = Date.now();
      // Two VXLAN settings need two UDP ports (one port cannot be static and learning at once).
      const port = (ty: NetworkTypeName, i: number) => (NETWORK_TYPE_PLUGINS[ty].family === 'vxlan' ? { port: 4789 + i } : {});
      const spec: ModelSpec = {
        name: 'msettings',
        settings: {
          first: { type: t1, ...port(t1, 0), ...typeOptions(t1, 4) },
          second: { type: t2, ...port(t2, 1), ...typeOptions(t2, 4) },
        },
        physes: ['a', 'b', 'c'],
        underlay: 4,
        nets: [
          { name: 'x', vid: 1, settings: 'first', virts: [
            { name: 'a1', phys: 'a', mac: '02:00:00:00:01:01', ips: ['10.0.0.1/24'] },
            { name: 'b1', phys: 'b', mac: '02:00:00:00:01:02', ips: ['10.0.0.2/24'] },
            { name: 'c1', phys: 'c', mac: '02:00:00:00:01:03', ips: ['10.0.0.3/24'] },
            { name: 'a3', phys: 'a', mac: '02:00:00:00:01:04', ips: ['10.0.0.4/24'] },
          ] },
          { name: 'y', vid: 1, settings: 'second', virts: [
            { name: 'a2', phys: 'a', mac: '02:00:00:00:02:01', ips: ['10.0.0.11/24'] },
            { name: 'b2', phys: 'b', mac: '02:00:00:00:02:02', ips: ['10.0.0.12/24'] },
            { name: 'c2', phys: 'c', mac: '02:00:00:00:02:03', ips: ['10.0.0.13/24'] },
            { name: 'b3', phys: 'b', mac: '02:00:00:00:02:04', ips: ['10.0.0.14/24'] },
          ] },
        ],
      };
      const model = buildModel(spec);
      const layout = await labFor(t, model, `ms-${tag(t1)}`);
      const shape = await checkLab(model, layout, { isolation: true });
      report(t, 'lab + apply + pings', t0, JSON.stringify(shape));
    });
  }

  // ---- isolation: a vlan, a geneve and a vxlan net with one id and one subnet -----------------
  test('isolation: a vlan, a geneve and a vxlan/e2e net, all with id 7 and one subnet, stay isolated', async (t) => {
    const types = ['vlan', 'geneve', 'vxlan/e2e'] as const;
    if (await skipUnlessRunnable(t, ...types)) return;
    const t0 = Date.now();
    const physes = ['a', 'b', 'c'];
    const spec: ModelSpec = {
      name: 'isolation',
      settings: Object.fromEntries(types.map((ty) => [tag(ty), { type: ty }])),
      physes,
      underlay: 4,
      // Net n has a virt on every phys plus a second one on phys n: same-host and cross-host
      // pairs in every net; every other-net pair is on-link (10.0.0.0/24) with the same id.
      nets: types.map((ty, n) => ({
        name: tag(ty).replace(/_/g, ''),
        vid: 7,
        settings: tag(ty),
        virts: [...physes, physes[n] as string].map((p, i) => ({
          name: `${p}${i}`,
          phys: p,
          mac: `02:00:00:00:7${n}:0${i}`,
          ips: [`10.0.0.${10 * (n + 1) + i}/24`],
        })),
      })),
    };
    const model = buildModel(spec);
    const layout = await labFor(t, model, 'iso3');
    const shape = await checkLab(model, layout, { isolation: true });
    report(t, 'lab + apply + pings', t0, JSON.stringify(shape));
  });

  // ---- duplicate MACs in different nets ------------------------------------------------------
  for (const type of MULTI_NET_TYPES) {
    test(`duplicate MACs in two nets stay isolated and both work: ${type}`, async (t) => {
      if (await skipUnlessRunnable(t, type)) return;
      const t0 = Date.now();
      const M1 = '02:00:00:00:dd:01'; // x1 and x2: one host (a)
      const M2 = '02:00:00:00:dd:02'; // y1 on b, y2 on c
      const hasId = NETWORK_TYPE_PLUGINS[type].idRange !== undefined;
      const nets: NetSpec[] = [
        { name: '1', ...(hasId ? { vid: 1 } : {}), virts: [
          { name: 'x1', phys: 'a', mac: M1, ips: ['10.0.0.1/24'] },
          { name: 'y1', phys: 'b', mac: M2, ips: ['10.0.0.2/24'] },
          { name: 'z1', phys: 'c', mac: '02:00:00:00:01:03', ips: ['10.0.0.3/24'] },
          { name: 'w1', phys: 'a', mac: '02:00:00:00:01:04', ips: ['10.0.0.4/24'] },
        ] },
        { name: '2', ...(hasId ? { vid: 2 } : {}), virts: [
          { name: 'x2', phys: 'a', mac: M1, ips: ['10.0.0.11/24'] },
          { name: 'y2', phys: 'c', mac: M2, ips: ['10.0.0.12/24'] },
          { name: 'z2', phys: 'b', mac: '02:00:00:00:02:03', ips: ['10.0.0.13/24'] },
        ] },
      ];
      const model = buildModel({ name: 'dupmac', settings: { default: { type, ...typeOptions(type, 4) } }, physes: ['a', 'b', 'c'], underlay: 4, nets });
      const layout = await labFor(t, model, `dm-${tag(type)}`);
      const shape = await checkLab(model, layout, { isolation: true });
      // On phys a, M1 is behind two ports, each in its own net's bridge.
      const a = layout.physNs.get('a') as string;
      const bridges = new Set((await fdbOf(a)).filter((e) => e.mac === M1 && e.master !== undefined && !e.ifname.startsWith('ls')).map((e) => e.master));
      assert.equal(bridges.size, 2, `M1 should sit in two bridges on a, got ${[...bridges].join(', ')}`);
      if (type === 'vlan') {
        // The lab's switch learns per VLAN, as a real one does: M2 (y1 on b, y2 on c) is behind
        // b's port in tag 1 and c's port in tag 2. With one FDB for all tags it would flap
        // between the two ports, and net 1's frames for y1 would now and then go to c.
        const seen = (await fdbOf(layout.underlayNs)).filter((e) => e.mac === M2 && e.vlan !== undefined).map((e) => `${e.vlan}@${e.ifname}`);
        assert.equal(new Set(seen.map((s) => s.split('@')[1])).size, 2, `M2 should be learnt on two underlay ports, one per tag, got ${seen.join(', ')}`);
        assert.deepEqual([...new Set(seen.map((s) => s.split('@')[0]))].sort(), ['1', '2'], `M2 should be learnt in tags 1 and 2, got ${seen.join(', ')}`);
      }
      report(t, 'lab + apply + pings', t0, JSON.stringify(shape));
    });
  }

  // ---- migration a -> b -> c -----------------------------------------------------------------
  for (const type of ['vxlan/static', 'vxlan/e2e'] as const) {
    test(`migration a -> b -> c: ${type}`, async (t) => {
      if (await skipUnlessRunnable(t, type)) return;
      const t0 = Date.now();
      const model = buildModel(basicSpec(type));
      const layout = await labFor(t, model, `mg-${tag(type)}`);
      await checkLab(model, layout, { isolation: true });
      const mover = model.virt('1/a2');
      assert.ok(mover?.phys && mover.if && mover.mac);
      for (const to of ['b', 'c']) {
        const t1 = Date.now();
        const from = { phys: mover.phys!.name, if: mover.if! };
        mover.connect(to, ifName('1', `a2-${to}`));
        await labMoveVirt(layout, mover, from);
        await applyAll(model, layout);
        if (NETWORK_TYPE_PLUGINS[type].learning) await announce(layout, mover.id);
        const shape = await checkLab(model, layout, { isolation: true });
        await assertMigrated(model, layout, mover.mac!, from, { phys: to, if: mover.if! }, NETWORK_TYPE_PLUGINS[type].learning);
        await assertConverged(model, layout);
        report(t, `moved ${from.phys} -> ${to}, applied, pinged, checked`, t1, JSON.stringify(shape));
      }
      report(t, 'whole test', t0);
    });
  }

  // ---- IPv6 underlay -------------------------------------------------------------------------
  // vxlan/e2e and vxlan/static (LSDN's ip6 scenario), and every other type that has an underlay
  // address (vlan has none).
  for (const type of ['vxlan/e2e', 'vxlan/static', 'vxlan/mcast', 'vxvde', 'geneve', 'geneve/e2e'] as const) {
    test(`IPv6 underlay (fd00::/64), IPv4 and IPv6 overlay: ${type}`, async (t) => {
      if (await skipUnlessRunnable(t, type)) return;
      const t0 = Date.now();
      const model = buildModel(basicSpec(type, { underlay: 6, overlay6: true }));
      const layout = await labFor(t, model, `v6-${tag(type)}`);
      // The underlay has no IPv4 at all: the tunnel devices must run over IPv6.
      const { stdout } = await new Kernel({ netns: layout.physNs.get('a') as string }).run('ip', ['-d', 'link', 'show']);
      assert.match(stdout, /(vxlan|geneve) id 1 .*(local|remote) fd00::/, stdout);
      const shape = await checkLab(model, layout, { isolation: true });
      report(t, 'lab + apply + pings (v4 and v6 overlay)', t0, JSON.stringify(shape));
    });
  }

  // ---- 40 hosts on vxlan/static --------------------------------------------------------------
  test('large: 40 physes with one virt each on vxlan/static (broadcast fan-out)', async (t) => {
    if (await skipUnlessRunnable(t, 'vxlan/static')) return;
    const N = 40;
    const t0 = Date.now();
    const physes = Array.from({ length: N }, (_, i) => `p${i}`);
    const ip = (i: number) => `10.0.${Math.floor((i + 1) / 256)}.${(i + 1) % 256}`;
    const model = buildModel({
      name: 'large',
      settings: { default: { type: 'vxlan/static' } },
      physes,
      underlay: 4,
      nets: [{ name: 'big', vid: 7, virts: physes.map((p, i) => ({ name: `v${i}`, phys: p, mac: `02:00:00:00:40:${i.toString(16).padStart(2, '0')}`, ips: [`${ip(i)}/16`] })) }],
    });
    const layout = await labFor(t, model, 'large');
    report(t, `lab of ${N} physes built and applied`, t0);

    const t1 = Date.now();
    const ns = (i: number) => layout.virtNs.get(`big/v${i}`) as string;
    // A broadcast from v0 must reach all 39 others: a broadcast ping every other virt answers
    // (v0 answers its own too; the deadline leaves every host time to answer the first one).
    await Promise.all(Array.from({ length: N - 1 }, (_, i) =>
      new Kernel({ netns: ns(i + 1) }).run('sysctl', ['-q', '-w', 'net.ipv4.icmp_echo_ignore_broadcasts=0'])));
    // Each answer needs its host's ARP of v0 first (39 at once, on a loaded machine some answers
    // come late): up to three rounds of broadcast pings, every round a broadcast from v0.
    const others = Array.from({ length: N - 1 }, (_, i) => ip(i + 1));
    const answered = new Set<string>();
    let stdout = '';
    for (let round = 0; round < 3 && others.some((o) => !answered.has(o)); round++) {
      stdout = (await new Kernel({ netns: ns(0) }).run('sh', ['-c', 'ping -n -b -c 5 -i 0.5 -w 4 10.0.255.255 2>&1; true'])).stdout;
      for (const m of stdout.matchAll(/from (10\.0\.\d+\.\d+)/g)) answered.add(m[1]!);
    }
    assert.deepEqual(others.filter((o) => !answered.has(o)), [], `no answer to v0's broadcast from these:\n${stdout}`);
    report(t, `broadcast from v0 answered by ${others.filter((o) => answered.has(o)).length} of ${others.length} others`, t1);

    // Unicast: v0 -> every other virt, and a handful of random pairs.
    const t2 = Date.now();
    const fromV0 = await pingMany(ns(0), others);
    assert.deepEqual([...fromV0].filter(([, ok]) => !ok).map(([i]) => i), [], 'v0 could not ping these');
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pairs: [number, number][] = [];
    while (pairs.length < 8) {
      const i = 1 + rnd(N - 1);
      const j = rnd(N);
      if (i !== j) pairs.push([i, j]);
    }
    const results = await Promise.all(pairs.map(async ([i, j]) => [i, j, (await pingMany(ns(i), [ip(j)])).get(ip(j))] as const));
    assert.deepEqual(results.filter(([, , ok]) => !ok).map(([i, j]) => `v${i} -> v${j}`), []);
    report(t, `unicast: v0 -> ${others.length} others, ${pairs.length} random pairs`, t2);

    // Replication is done by the VXLAN device: one all-zero entry per remote phys, one entry per remote MAC.
    const fdb = (await fdbOf(layout.physNs.get('p0') as string)).filter((e) => e.ifname === ownedIfname(model.name, 'x', 'big') && e.dst !== undefined);
    assert.equal(fdb.filter((e) => e.mac === '00:00:00:00:00:00').length, N - 1);
    assert.equal(fdb.filter((e) => e.mac !== '00:00:00:00:00:00').length, N - 1);
    report(t, 'whole test', t0);
  });
});

// ---- migration helpers ---------------------------------------------------------------------------

/**
 * What a hypervisor does after a live migration (QEMU's self-announce): the guest's MAC is
 * seen on the new host at once. Here: one broadcast from the virt, so that learning datapaths
 * on every host (bridges and VXLAN devices) relearn where it is.
 */
async function announce(layout: LabLayout, virtId: string): Promise<void> {
  const ns = layout.virtNs.get(virtId) as string;
  await new Kernel({ netns: ns }).run('ping', ['-n', '-q', '-b', '-c', '1', '-W', '1', '10.0.0.255']).catch(() => undefined);
}

/**
 * After the move `from` -> `to`: the old host has no port for the virt any more and no entry
 * sending its MAC anywhere but through the tunnel to the new host; the new host has the port in
 * the net's bridge; every other host's tunnel entries for the MAC point at the new host only
 * (static types: exactly one such entry on every host but the new one).
 */
async function assertMigrated(
  model: Netmodel,
  layout: LabLayout,
  mac: string,
  from: { phys: string; if: string },
  to: { phys: string; if: string },
  learning: boolean,
): Promise<void> {
  const bridge = ownedIfname(model.name, 'b', '1');
  const vx = ownedIfname(model.name, 'x', '1');
  const toIp = model.phys(to.phys)?.ip as string;
  const oldLinks = await linksOf(layout.physNs.get(from.phys) as string);
  assert.ok(!oldLinks.has(from.if) && !oldLinks.has(to.if), `old host ${from.phys} still has the virt's interface`);
  const newLinks = await linksOf(layout.physNs.get(to.phys) as string);
  assert.equal(newLinks.get(to.if)?.master, bridge, `${to.if} on ${to.phys} is not a port of ${bridge}`);
  for (const phys of model.physes.values()) {
    const entries = (await fdbOf(layout.physNs.get(phys.name) as string)).filter((e) => e.mac === mac);
    const where = `${phys.name}: ${JSON.stringify(entries)}`;
    if (phys.name === to.phys) {
      assert.ok(entries.some((e) => e.ifname === to.if && e.master === bridge), `no entry for ${mac} on its new port: ${where}`);
      assert.ok(!entries.some((e) => e.ifname === vx && e.master !== undefined), `the new host still sends ${mac} into the tunnel: ${where}`);
      continue;
    }
    assert.deepEqual(entries.filter((e) => e.ifname !== vx), [], `entries for ${mac} off the tunnel: ${where}`);
    const dsts = entries.filter((e) => e.dst !== undefined).map((e) => e.dst);
    assert.deepEqual([...new Set(dsts)].filter((d) => d !== toIp), [], `tunnel entries for ${mac} not toward ${to.phys} (${toIp}): ${where}`);
    if (!learning) {
      assert.deepEqual(dsts, [toIp], `static: one tunnel entry toward ${to.phys}: ${where}`);
      assert.ok(entries.some((e) => e.master === bridge), `static: no bridge entry for ${mac}: ${where}`);
    }
  }
}

/** A second apply changes nothing: every host's plan is empty. */
async function assertConverged(model: Netmodel, layout: LabLayout): Promise<void> {
  for (const p of model.physes.values()) {
    const hp = await planHost(model, { phys: p.name, netns: layout.physNs.get(p.name) as string });
    assert.deepEqual(hp.plan.steps.map((s) => `${s.action} ${s.key}`), [], `${p.name} is not converged`);
  }
}
