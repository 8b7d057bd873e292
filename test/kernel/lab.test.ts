/**
 * The lab harness: namespaces standing for physes, virts and the underlay network.
 *
 * `lsdn apply` is not used here: the tests wire each simulated phys by hand (a bridge per net
 * in the phys namespace, or a VXLAN multicast device per net across physes), which is
 * scaffolding for testing the harness itself.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { Kernel } from '../../src/kernel/exec.js';
import { Netmodel, type Phys } from '../../src/model/netmodel.js';
import { expectedReachability, formatMatrix, labCheck, type CheckReport, type PairResult } from '../../src/lab/check.js';
import { LabError } from '../../src/core/errors.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import { labLayout, labPrefix, labProblems } from '../../src/lab/layout.js';
import { deleteNamespacesWithPrefix, isRoot } from '../helpers/netns.js';
import { labPrefixFor } from '../helpers/typelab.js';

const needsRoot = { skip: isRoot() ? false : 'needs root' };

/**
 * Physes a, b (10.0/16) and c (10.1.0.3: another subnet, reached by host routes); every virt
 * on a. blue and red have generated addresses (10.100.0.x, 10.100.1.x); green's g1 reuses
 * blue/b1's address (10.100.0.1), g2 has 10.100.9.9.
 */
function basicModel(name = 'basic'): Netmodel {
  const m = new Netmodel(name);
  m.addPhys('a', { if: 'eth0', ip: '10.0.0.1' });
  m.addPhys('b', { if: 'eth0', ip: '10.0.0.2' });
  m.addPhys('c', { if: 'eth0', ip: '10.1.0.3' });
  const blue = m.addNet('blue');
  const red = m.addNet('red');
  const green = m.addNet('green');
  for (const n of ['b1', 'b2', 'b3']) blue.virt(n, { phys: 'a', if: `lt${n}` });
  for (const n of ['r1', 'r2']) red.virt(n, { phys: 'a', if: `lt${n}` });
  green.virt('g1', { phys: 'a', if: 'ltg1', ips: ['10.100.0.1/16'], mac: '02:00:00:00:0a:01' });
  green.virt('g2', { phys: 'a', if: 'ltg2', ips: ['10.100.9.9/16'] });
  blue.virt('off'); // not connected: takes no part
  return m;
}

/** Test scaffolding standing for `lsdn apply` of direct nets: one bridge per net. */
function bridgeApply(model: Netmodel, wrongNet = new Map<string, string>()) {
  return async (phys: Phys, netns: string) => {
    const nets = [...model.nets.keys()];
    const lines: string[] = [];
    nets.forEach((_, i) => lines.push(`link add lbr${i} type bridge`, `link set lbr${i} up`));
    for (const v of phys.virts()) {
      const net = wrongNet.get(v.id) ?? v.net.name;
      lines.push(`link set ${v.if} master lbr${nets.indexOf(net)}`);
    }
    await new Kernel({ netns }).batch('ip', lines);
  };
}

/** Test scaffolding: one VXLAN device per net (multicast group) bridged with its virts. */
function vxlanApply(model: Netmodel, v6: boolean) {
  return async (phys: Phys, netns: string) => {
    const lines: string[] = [];
    [...model.nets.values()].forEach((net, i) => {
      const group = v6 ? `ff05::10${i}` : `239.1.2.${i + 1}`;
      lines.push(
        `link add lvx${i} type vxlan id ${100 + i} group ${group} dev ${phys.if} dstport 4789`,
        `link add lbr${i} type bridge`,
        `link set lvx${i} master lbr${i}`,
        `link set lvx${i} up`,
        `link set lbr${i} up`,
      );
      for (const v of net.virts.values()) if (v.phys === phys) lines.push(`link set ${v.if} master lbr${i}`);
    });
    await new Kernel({ netns }).batch('ip', lines);
  };
}

function lastLine(s: string): string {
  return s.split('\n').at(-1) ?? '';
}

async function ping(netns: string, ip: string): Promise<void> {
  await new Kernel({ netns }).run('ping', [ip.includes(':') ? '-6' : '-4', '-c', '1', '-W', '1', ip]);
}

function failedKeys(r: CheckReport): string[] {
  return r.pairs.filter((p) => !p.skipped && !p.ok).map((p) => `${p.from}>${p.to}`).sort();
}

// ---------------------------------------------------------------------------------------------

describe('lab layout (pure)', () => {
  test('prefix: derived from the model name, short, without "-" after "lsl-"', () => {
    assert.equal(labPrefix(new Netmodel('lsdn')), 'lsl-lsdn');
    assert.equal(labPrefix(new Netmodel('my-cluster')), 'lsl-my_cluster');
    const long = labPrefix(new Netmodel('a-very-long-cluster-name-indeed'));
    assert.ok(long.length <= 20, long);
    assert.notEqual(long, labPrefix(new Netmodel('a-very-long-cluster-name-indeed2')));
    assert.equal(labPrefix(new Netmodel('x'), { prefix: 'mine-1' }), 'mine-1');
    assert.throws(() => labPrefix(new Netmodel('x'), { prefix: 'bad/one' }), LabError);
    assert.throws(() => labPrefix(new Netmodel('x'), { prefix: '' }), LabError);
  });

  test('names, addresses and connected virts', () => {
    const m = basicModel();
    const l = labLayout(m, { prefix: 'P' });
    assert.equal(l.prefix, 'P');
    assert.equal(l.underlayNs, 'P-underlay');
    assert.deepEqual([...l.physNs], [['a', 'P-p-a'], ['b', 'P-p-b'], ['c', 'P-p-c']]);
    assert.deepEqual([...l.virtNs.keys()], ['blue/b1', 'blue/b2', 'blue/b3', 'red/r1', 'red/r2', 'green/g1', 'green/g2']);
    assert.equal(l.virtNs.get('blue/b2'), 'P-v-blue-b2');
    assert.deepEqual(l.virtIps.get('blue/b1'), ['10.100.0.1/16']);
    assert.deepEqual(l.virtIps.get('blue/b3'), ['10.100.0.3/16']);
    assert.deepEqual(l.virtIps.get('red/r2'), ['10.100.1.2/16']);
    assert.deepEqual(l.virtIps.get('green/g1'), ['10.100.0.1/16']);
    assert.equal(l.physAddrs.get('a'), '10.0.0.1/16');
    assert.ok(!l.virtNs.has('blue/off'));
    assert.deepEqual(labProblems(m, l), []);
    // Deterministic.
    assert.deepEqual(labLayout(m, { prefix: 'P' }), l);
  });

  test('names are sanitized and never collide; underlay prefixes default to /16 and /64', () => {
    const m = new Netmodel('n');
    m.addPhys('h 1', { if: 'eth0', ip: 'fd10::1' });
    m.addPhys('h2', { if: 'eth0', ip: '192.168.1.2/24' });
    m.addNet('a-b').virt('c', { phys: 'h2', if: 'x1' });
    m.addNet('a').virt('b-c', { phys: 'h2', if: 'x2' });
    m.addNet('ü/ber').virt('v', { phys: 'h2', if: 'x3', ips: ['2001:DB8::1/64'] });
    const l = labLayout(m, { prefix: 'Q' });
    assert.equal(l.physNs.get('h 1'), 'Q-p-h_1');
    const names = [...l.virtNs.values()];
    assert.equal(new Set(names).size, names.length);
    for (const n of names) assert.match(n, /^Q-v-[A-Za-z0-9_.-]+$/);
    assert.deepEqual(l.virtIps.get('ü/ber/v'), ['2001:db8::1/64']);
    assert.equal(l.physAddrs.get('h 1'), 'fd10::1/64');
    assert.equal(l.physAddrs.get('h2'), '192.168.1.2/24');
  });

  test('problems: missing underlay interface or address, clashing interface names', () => {
    const m = new Netmodel('p');
    m.addPhys('a', { ip: '10.0.0.1' });
    m.addPhys('b', { if: 'eth0' });
    m.addPhys('c', { if: 'eth0', ip: '10.0.0.1' });
    m.addNet('n').virt('v1', { phys: 'c', if: 'eth0' });
    m.addNet('n').virt('v2', { phys: 'c' });
    m.addNet('n').virt('v3', { phys: 'c', if: 'this-name-is-too-long' });
    const problems = labProblems(m, labLayout(m, { prefix: 'R' }));
    const has = (re: RegExp) => assert.ok(problems.some((p) => re.test(p)), `${re} in ${problems.join(' | ')}`);
    has(/phys "a": no underlay interface/);
    has(/phys "b": no underlay address/);
    has(/phys "c": address 10.0.0.1 is also phys "a"/);
    has(/virt "n\/v1": interface "eth0" on "c" is also phys "c"'s underlay interface/);
    has(/virt "n\/v2": .*without an interface name/);
    has(/virt "n\/v3": interface name .* 15/);
  });

  test('expected reachability: same net yes, other net no, overlapping addresses skipped', () => {
    const m = basicModel();
    const l = labLayout(m, { prefix: 'P' });
    const e = expectedReachability(m, l);
    const get = (from: string, toIp: string) => e.filter((p) => p.from === from && p.toIp === toIp);
    assert.equal(e.filter((p) => p.from === p.to).length, 0);
    assert.ok(!e.some((p) => p.from === 'blue/off' || p.to === 'blue/off'));
    assert.deepEqual(get('blue/b1', '10.100.0.2'), [{ from: 'blue/b1', to: 'blue/b2', toIp: '10.100.0.2', expected: true }]);
    assert.deepEqual(get('blue/b1', '10.100.1.1'), [{ from: 'blue/b1', to: 'red/r1', toIp: '10.100.1.1', expected: false }]);
    // g1's address is b1's too: from blue (b2) it is blue's, from b1 it is its own.
    const b2g1 = get('blue/b2', '10.100.0.1').find((p) => p.to === 'green/g1');
    assert.equal(b2g1?.skip, true);
    assert.match(b2g1?.note ?? '', /also exists in .*net blue/);
    assert.equal(get('blue/b1', '10.100.0.1')[0]?.skip, true);
    // From green, 10.100.0.1 is g1's: b1 there must not answer... it is skipped (g1 would).
    const g2b1 = get('green/g2', '10.100.0.1').find((p) => p.to === 'blue/b1');
    assert.equal(g2b1?.skip, true);
    // Red to b1's address: checked (red has no 10.100.0.1).
    assert.equal(get('red/r1', '10.100.0.1').find((p) => p.to === 'blue/b1')?.skip, undefined);
    // 7 virts, 7 addresses: 7 * 6 pairs.
    assert.equal(e.length, 42);
  });

  test('expected reachability: targets on no subnet of the source', () => {
    const m = new Netmodel('s');
    m.addPhys('a', { if: 'eth0', ip: '10.0.0.1' });
    m.addNet('n1').virt('x', { phys: 'a', if: 'x', ips: ['10.1.0.1/24'] });
    m.addNet('n1').virt('y', { phys: 'a', if: 'y', ips: ['10.2.0.1/24', 'fd00::2/64'] });
    m.addNet('n2').virt('z', { phys: 'a', if: 'z', ips: ['10.9.0.1/24'] });
    const e = expectedReachability(m, labLayout(m, { prefix: 'S' }));
    const xy = e.filter((p) => p.from === 'n1/x' && p.to === 'n1/y');
    assert.equal(xy.length, 2);
    assert.ok(xy.every((p) => p.skip && /on no subnet/.test(p.note ?? '')));
    const xz = e.find((p) => p.from === 'n1/x' && p.to === 'n2/z');
    assert.equal(xz?.expected, false);
    assert.equal(xz?.skip, undefined);
    assert.match(xz?.note ?? '', /isolation not exercised/);
  });

  test('formatMatrix marks unexpected results and ends with the counts', () => {
    const l = labLayout(basicModel(), { prefix: 'P' });
    const pair = (from: string, to: string, expected: boolean, reachable: boolean): PairResult => (
      { from, to, toIp: '10.0.0.9', expected, reachable, ok: expected === reachable });
    const report: CheckReport = {
      pairs: [
        pair('blue/b1', 'blue/b2', true, true),
        pair('blue/b1', 'red/r1', false, true),
        pair('blue/b2', 'blue/b1', true, false),
        pair('red/r1', 'blue/b1', false, false),
        { ...pair('green/g1', 'blue/b1', false, false), skipped: true, note: 'overlap' },
      ],
      passed: 2,
      failed: 2,
    };
    const text = formatMatrix(report, l);
    assert.equal(lastLine(text), '2 passed, 2 failed');
    const rows = text.split('\n');
    const row = (id: string) => rows.find((r) => r.includes(` ${id} `) || r.endsWith(` ${id}`)) ?? '';
    assert.match(row('blue/b1'), /^ ?1 blue\/b1 +\. +ok +ok!!$/);
    assert.match(row('blue/b2'), /--!!/);
    assert.match(row('green/g1'), /sk/);
    assert.match(text, /blue\/b1 -> red\/r1 \(10\.0\.0\.9\): expected unreachable, was reachable/);
    assert.match(text, /skipped:\n {2}green\/g1 -> blue\/b1/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('lab in namespaces', needsRoot, () => {
  test('hand-wired direct nets: same net reachable, other nets not; underlay works', async (t) => {
    const m = basicModel();
    const prefix = labPrefixFor(t, 'lab');
    const progress: string[] = [];
    const layout = await labUp(m, { prefix, apply: bridgeApply(m), onProgress: (s) => progress.push(s) });
    assert.ok(progress.some((s) => /built in/.test(s)));

    const expectedNs = [layout.underlayNs, ...layout.physNs.values(), ...layout.virtNs.values()].sort();
    assert.deepEqual((await labNamespaces(prefix)).sort(), expectedNs);
    // Nothing in the root namespace.
    const rootLinks = (await new Kernel().json<{ ifname: string }[]>('ip', ['link', 'show'])).map((l) => l.ifname);
    for (const v of m.virts()) if (v.if) assert.ok(!rootLinks.includes(v.if), v.if);
    // The virt's side: eth0 with its MAC and addresses.
    const eth0 = await new Kernel({ netns: layout.virtNs.get('green/g1') }).json<{ address: string; addr_info: { local: string; prefixlen: number }[] }[]>(
      'ip', ['address', 'show', 'dev', 'eth0']);
    assert.equal(eth0[0]?.address, '02:00:00:00:0a:01');
    assert.deepEqual(eth0[0]?.addr_info.map((a) => `${a.local}/${a.prefixlen}`), ['10.100.0.1/16']);

    const report = await labCheck(m, layout);
    const text = formatMatrix(report, layout);
    assert.equal(report.failed, 0, text);
    assert.equal(lastLine(text), `${report.passed} passed, 0 failed`);
    assert.ok(report.passed >= 30, text);
    assert.ok(report.pairs.some((p) => p.expected && p.reachable));
    assert.ok(report.pairs.some((p) => !p.expected && !p.reachable && !p.skipped));
    assert.equal(report.skipped, report.pairs.filter((p) => p.skipped).length);
    assert.ok((report.skipped ?? 0) > 0);

    // Underlay: a reaches b (same subnet) and c (another subnet, host routes), and back.
    const ns = (p: string) => layout.physNs.get(p) as string;
    await ping(ns('a'), '10.0.0.2');
    await ping(ns('a'), '10.1.0.3');
    await ping(ns('c'), '10.0.0.2');
  });

  test('a broken wiring is reported as exactly the misbehaving pairs', async (t) => {
    const m = basicModel();
    const prefix = labPrefixFor(t, 'labbad');
    // b3 plugged into red's bridge.
    const layout = await labUp(m, { prefix, apply: bridgeApply(m, new Map([['blue/b3', 'red']])) });
    const report = await labCheck(m, layout, { timeoutMs: 500 });
    const text = formatMatrix(report, layout);
    const want = ['blue/b1', 'blue/b2', 'red/r1', 'red/r2'].flatMap((o) => [`blue/b3>${o}`, `${o}>blue/b3`]).sort();
    assert.deepEqual(failedKeys(report), want, text);
    assert.equal(report.failed, want.length);
    assert.equal(lastLine(text), `${report.passed} passed, ${want.length} failed`);
    assert.match(text, /!!/);
    // b3 answered red but not blue.
    const b3 = report.pairs.filter((p) => p.from === 'blue/b3' && !p.ok);
    assert.ok(b3.some((p) => p.to === 'red/r1' && p.reachable && !p.expected));
    assert.ok(b3.some((p) => p.to === 'blue/b1' && !p.reachable && p.expected && (p.attempts ?? 0) > 1));
  });

  test('two labs of the same model side by side, then one removed', async (t) => {
    const m = basicModel();
    const pa = labPrefixFor(t, 'laba');
    const pb = labPrefixFor(t, 'labb');
    const [la, lb] = await Promise.all([
      labUp(m, { prefix: pa, apply: bridgeApply(m) }),
      labUp(m, { prefix: pb, apply: bridgeApply(m, new Map([['red/r1', 'green']])) }),
    ]);
    const [ra, rb] = await Promise.all([labCheck(m, la), labCheck(m, lb, { retries: 0 })]);
    assert.equal(ra.failed, 0, formatMatrix(ra, la));
    assert.ok(rb.failed > 0);
    const bNames = (await labNamespaces(pb)).sort();
    const removed = await labDown(pa);
    assert.equal(removed.length, 1 + 3 + 7);
    assert.deepEqual(await labNamespaces(pa), []);
    assert.deepEqual((await labNamespaces(pb)).sort(), bNames);
    const rb2 = await labCheck(m, lb, { retries: 0 });
    assert.deepEqual(failedKeys(rb2), failedKeys(rb));
  });

  for (const v6 of [false, true]) {
    test(`cross-phys nets over the underlay (hand-wired VXLAN multicast, IPv${v6 ? 6 : 4})`, async (t) => {
      const m = new Netmodel('mc');
      for (const [i, p] of ['x', 'y', 'z'].entries()) m.addPhys(p, { if: 'eth0', ip: v6 ? `fd10::${i + 1}` : `192.168.7.${i + 1}` });
      const n1 = m.addNet('n1');
      const n2 = m.addNet('n2');
      for (const p of ['x', 'y', 'z']) {
        n1.virt(`a${p}`, { phys: p, if: `a${p}`, ...(v6 ? { ips: [`fd00::a${p.charCodeAt(0)}/64`] } : {}) });
        n2.virt(`b${p}`, { phys: p, if: `b${p}`, ...(v6 ? { ips: [`fd00::b${p.charCodeAt(0)}/64`] } : {}) });
      }
      const prefix = labPrefixFor(t, v6 ? 'lab6' : 'lab4');
      const layout = await labUp(m, { prefix, apply: vxlanApply(m, v6) });
      await ping(layout.physNs.get('x') as string, v6 ? 'fd10::3' : '192.168.7.3');
      const report = await labCheck(m, layout);
      const text = formatMatrix(report, layout);
      assert.equal(report.failed, 0, text);
      assert.equal(report.passed, 6 * 5, text);
      if (v6) assert.ok(report.pairs.every((p) => p.toIp.includes(':')));
    });
  }

  test('labDown after a crash: from the prefix alone, killing what runs inside', async (t) => {
    const prefix = labPrefixFor(t, 'labcrash');
    const root = new Kernel();
    const names = [`${prefix}-underlay`, `${prefix}-p-a`, `${prefix}-v-n-x`];
    const bystander = `${prefix}x-other`; // does not start with `${prefix}-`
    t.after(() => deleteNamespacesWithPrefix(bystander));
    await root.batch('ip', [...names, bystander].map((n) => `netns add ${n}`));
    await root.run('ip', ['link', 'add', 'eth0', 'netns', names[2] as string, 'type', 'veth', 'peer', 'name', 'x', 'netns', names[1] as string]);
    // A process started in the lab (a daemon `apply` might leave behind).
    const child = spawn('ip', ['netns', 'exec', names[1] as string, 'sleep', '30'], { stdio: 'ignore' });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
    await new Promise((r) => setTimeout(r, 100));

    const removed = await labDown(prefix);
    assert.deepEqual(removed.sort(), [...names].sort());
    assert.deepEqual(await labNamespaces(prefix), []);
    assert.equal(await exited, 'SIGKILL');
    assert.ok((await labNamespaces(`${prefix}x`)).includes(bystander));
    assert.deepEqual(await labDown(prefix), []);
  });

  test('labUp removes what it created when apply fails, and refuses invalid models or a lab that exists', async (t) => {
    const m = basicModel();
    const prefix = labPrefixFor(t, 'labfail');
    await assert.rejects(
      labUp(m, {
        prefix,
        apply: async (p) => {
          if (p.name === 'b') throw new Error('apply of b failed');
        },
      }),
      /apply of b failed/,
    );
    assert.deepEqual(await labNamespaces(prefix), []);

    const bad = basicModel();
    bad.addPhys('d', { if: 'eth0' });
    await assert.rejects(labUp(bad, { prefix, apply: async () => undefined }), (e: unknown) => e instanceof LabError && /phys "d": no underlay address/.test(e.message));
    assert.deepEqual(await labNamespaces(prefix), []);

    await new Kernel().run('ip', ['netns', 'add', `${prefix}-underlay`]);
    await assert.rejects(labUp(m, { prefix, apply: async () => undefined }), /already exists/);
    assert.deepEqual(await labNamespaces(prefix), [`${prefix}-underlay`]);
  });
});
