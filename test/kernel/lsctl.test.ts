/**
 * lsctl scripts shaped like LSDN's test scenarios, run the way LSDN ran them: one lab host
 * (network namespace) per phys, `lsctl SCRIPT PHYS` inside each, then pings that must pass or
 * fail. The lab is built from the model the script itself builds (importLsctl). Needs root
 * (and bin/lsctl built: the test runner builds dist/).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { Kernel } from '../../src/kernel/exec.js';
import { loadModelText } from '../../src/file/load.js';
import type { Netmodel } from '../../src/model/netmodel.js';
import { labUp } from '../../src/lab/lab.js';
import type { LabLayout } from '../../src/lab/layout.js';
import { formatMatrix, labCheck } from '../../src/lab/check.js';
import { labMoveVirt } from '../../src/lab/move.js';
import { importLsctl } from '../../src/lsctl/run.js';
import { probeFeatures, typeSupport } from '../../src/kernel/probe.js';
import { isRoot } from '../helpers/netns.js';
import { labPrefixFor } from '../helpers/typelab.js';

const BIN = new URL('../../bin/lsctl', import.meta.url).pathname;
const needsRoot = { skip: isRoot() ? false : 'needs root' };
/** Network types this kernel cannot run (probed once), with what is missing. */
const unsupported = new Map(isRoot() ? typeSupport(await probeFeatures()).filter((s) => !s.ok).map((s) => [s.type as string, s.missing.join(', ')]) : []);
const skipUnless = (type: string) => {
  const missing = unsupported.get(type);
  return missing !== undefined ? { skip: `this kernel lacks ${missing} for ${type}` } : {};
};

/** LSDN's basic topology: net 1 has a1, a2, b1, c1; net 2 has a3, b2. */
const BASIC = `namespace import lsdn::*
settings {*}$::env(LSCTL_NETTYPE)

phys -if out -name a -ip 172.16.0.1
phys -if out -name b -ip 172.16.0.2
phys -if out -name c -ip 172.16.0.3

net 1 {
    attach a b c
    virt -phys a -if 1 -mac 00:00:00:00:00:a1
    virt -phys a -if 2 -mac 00:00:00:00:00:a2
    virt -phys b -if 1 -mac 00:00:00:00:00:b1
    virt -phys c -if 1 -mac 00:00:00:00:00:c1
}
net 2 {
    attach a b
    virt -phys a -if 3 -mac 00:00:00:00:00:a3
    virt -phys b -if 2 -mac 00:00:00:00:00:b2
}

claimLocal [lindex $argv 0]
commit
commit
`;

/** Two nets with the same id 1, one vlan (or what LSCTL_OTHER says) and one vxlan/e2e. */
const MSETTINGS = `namespace import lsdn::*
settings {*}$::env(LSCTL_OTHER) -name A
settings vxlan/e2e -name B

phys -if out -name a -ip 172.16.0.1
phys -if out -name b -ip 172.16.0.2
phys -if out -name c -ip 172.16.0.3

net -vid 1 -settings A networkA {
    attach a b c
    virt -phys a -if 1 -mac 00:00:00:00:00:a1
    virt -phys a -if 2 -mac 00:00:00:00:00:a2
    virt -phys b -if 1 -mac 00:00:00:00:00:b1
    virt -phys c -if 1 -mac 00:00:00:00:00:c1
}
net -vid 1 -settings B networkB {
    attach a b
    virt -phys a -if 3 -mac 00:00:00:00:00:a3
    virt -phys b -if 2 -mac 00:00:00:00:00:b2
}
claimLocal [lindex $argv 0]
commit
`;

/** A virt moving a -> b -> c, two commits after each move; the test moves its interface. */
const MIGRATE = `namespace import lsdn::*
settings vxlan/static

net -vid 1 movingTarget {
    phys -if out -name a -ip 172.16.0.1 {
        virt -if 1 -mac 00:00:00:00:00:01
        virt -if 2 -mac 00:00:00:00:00:02 -name migrator
    }
    phys -if out -name b -ip 172.16.0.2 {
        virt -if 1 -mac 00:00:00:00:00:03
    }
    phys -if out -name c -ip 172.16.0.3
}
claimLocal [lindex $argv 0]

proc step {n} {
    commit
    commit
    puts "LSCTL: committed $n"
    flush stdout
    # Wait until the test has moved the interface (EOF when converting the script).
    gets stdin
}
step 1
net movingTarget {
    virt -name migrator -phys b -if 2
}
step 2
net movingTarget {
    virt -name migrator -phys c
}
step 3
`;

/**
 * LSDN's firewall scenario (its rules on a1), with the addresses its test gave the virts, plus a
 * source in and one outside the dropped prefix and a virt on a second host. Drop rules act on
 * what they match only: `in` rules on what a1 receives (a reply from a dropped source is
 * dropped as well as a request), the `out` rule on what a1 sends.
 */
const FIREWALL = `namespace import lsdn::*
settings vxlan/e2e
phys -if out -name a -ip 172.16.0.1
phys -if out -name b -ip 172.16.0.2
net 1 {
    attach a b
    virt -phys a -if 1 -mac 00:00:00:00:00:a1 -ip 192.168.99.1/16 {
        rule in  1 drop -srcIp 192.168.98.0/24
        rule in  2 drop -srcIp 192.168.99.2
        rule out 2 drop -dstIp 192.168.99.3
    }
    virt -phys a -if 2 -mac 00:00:00:00:00:a2 -ip {192.168.99.2/16 192.168.99.3/16 192.168.99.4/16 192.168.98.2/16 192.168.97.2/16}
    virt -phys b -if 1 -mac 00:00:00:00:00:b1 -ip {192.168.98.4/16 192.168.99.5/16}
}
claimLocal [lindex $argv 0]
commit
show -json
`;

/**
 * LSDN's qos scenario: a1 and a2 shaped to hundreds of kbit both ways; a3 (toward it) and a4
 * (from it) to a few bits per second with a bucket of 1 and 2 bytes, which a ping's 98-byte
 * frame (84 bytes of IP) can never fit.
 */
const QOS = `namespace import lsdn::*
settings vxlan/e2e
phys -if out -name a -ip 172.16.0.1
set rateParam1 {-avg 600kbit -burst 600kbit -burstRate 600kbit}
set rateParam2 {-avg 300kbit -burst 300kbit -burstRate 300kbit}
set rateParam3 {-avg 8bit -burst 8bit -burstRate 8bit}
set rateParam4 {-avg 16bit -burst 16bit -burstRate 16bit}
net 1 {
    attach a
    virt -phys a -if 1 -mac 00:00:00:00:00:a1 {
        rate out {*}$rateParam1
        rate in {*}$rateParam2
    }
    virt -phys a -if 2 -mac 00:00:00:00:00:a2 {
        rate out {*}$rateParam1
        rate in {*}$rateParam2
    }
    virt -phys a -if 3 -mac 00:00:00:00:00:a3 {
        rate in {*}$rateParam3
    }
    virt -phys a -if 4 -mac 00:00:00:00:00:a4 {
        rate out {*}$rateParam4
    }
}
claimLocal [lindex $argv 0]
commit
show -json
`;

/** LSDN's large scenario, generated with proc and loops: one virt per phys on vxlan/static. */
const LARGE = `namespace import lsdn::*
settings vxlan/static
set n $::env(LSCTL_PHYSES)
proc forAll {var body} {
    upvar 1 $var i
    for {set i 1} {$i <= $::n} {incr i} { uplevel 1 $body }
}
forAll i {
    phys -if out -name p$i -ip 172.16.[expr {$i / 200}].[expr {$i % 200 + 1}]
}
net 10 {
    forAll i {
        attach p$i
        virt -if virt -phys p$i -mac 00:00:00:00:01:[format %02x $i]
    }
}
claimLocal [lindex $argv 0]
commit
`;

const CLEANUP = `namespace import lsdn::*
cleanup
`;

interface Proc {
  child: ChildProcess;
  out: string;
  err: string;
  exit: Promise<number>;
}

/** `ip netns exec NS bin/lsctl SCRIPT PHYS`, stdin kept open for scripts that wait on it. */
function startLsctl(netns: string, script: string, phys: string, env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, BIN, script, phys], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const p: Proc = {
    child,
    out: '',
    err: '',
    exit: new Promise((resolve) => child.on('close', (code) => resolve(code ?? 1))),
  };
  child.stdout.setEncoding('utf8').on('data', (s: string) => (p.out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (p.err += s));
  return p;
}

async function runLsctlIn(netns: string, script: string, phys: string, env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const p = startLsctl(netns, script, phys, env);
  p.child.stdin?.end();
  const code = await p.exit;
  if (code !== 0) throw new Error(`lsctl ${script} ${phys} in ${netns} exited ${code}:\n${p.err}${p.out}`);
  return p;
}

/** Resolves when the process printed `text` (rejects when it exits first). */
async function waitFor(p: Proc, text: string): Promise<void> {
  const deadline = Date.now() + 30000;
  while (!p.out.includes(text)) {
    if (p.child.exitCode !== null) throw new Error(`lsctl exited (${p.child.exitCode}) before "${text}":\n${p.err}${p.out}`);
    if (Date.now() > deadline) throw new Error(`no "${text}" from lsctl:\n${p.err}${p.out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function scriptFile(t: TestContext, name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'lsctl-kernel-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

/** The model a script builds (commit disabled), as of commit `n` (default: the last). */
async function modelOf(script: string, env: NodeJS.ProcessEnv = {}, n?: number, phys = 'a'): Promise<Netmodel> {
  const r = await importLsctl(script, [phys], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', env: { ...process.env, ...env } });
  assert.equal(r.code, 0, r.stderr);
  if (n === undefined) return r.model;
  const text = r.commits[n];
  assert.ok(text !== undefined, `the script commits ${n + 1} times`);
  const { model, problems } = loadModelText(text);
  assert.deepEqual(problems, []);
  return model!;
}

/** Build the lab and run the script in every phys namespace; lsctl must exit 0. */
async function labWithLsctl(t: TestContext, tag: string, script: string, env: NodeJS.ProcessEnv = {}, phys = 'a'): Promise<{ model: Netmodel; layout: LabLayout; outputs: Map<string, Proc> }> {
  const model = await modelOf(script, env, undefined, phys);
  const outputs = new Map<string, Proc>();
  const layout = await labUp(model, {
    prefix: labPrefixFor(t, tag),
    apply: async (phys, netns) => {
      outputs.set(phys.name, await runLsctlIn(netns, script, phys.name, env));
    },
  });
  return { model, layout, outputs };
}

/** labCheck passes: same net reachable, other nets not (and there were pings of both kinds when the model has several nets). */
async function assertIsolation(model: Netmodel, layout: LabLayout, what: string): Promise<void> {
  const report = await labCheck(model, layout, { timeoutMs: 500, retries: 3 });
  const text = formatMatrix(report, layout);
  assert.equal(report.failed, 0, `${what}:\n${text}`);
  assert.ok(report.pairs.some((p) => p.expected && p.reachable), text);
  if (model.nets.size > 1) assert.ok(report.pairs.some((p) => !p.expected && !p.reachable && !p.skipped), text);
}

async function ping(netns: string, ip: string, src?: string): Promise<boolean> {
  try {
    await new Kernel({ netns }).run('ping', ['-n', '-c', '1', '-W', '1', ...(src !== undefined ? ['-I', src] : []), ip.split('/')[0]!]);
    return true;
  } catch {
    return false;
  }
}

interface PingCase {
  /** The virt's namespace the ping runs in. */
  from: string;
  to: string;
  /** Source address (`ping -I`). */
  src?: string;
  expect: boolean;
  what: string;
}

/**
 * Every ping, in parallel, up to 3 tries each (a ping counts as failed only when all 3 got no
 * answer); fails with the full list of unexpected results.
 */
async function assertPings(cases: PingCase[]): Promise<void> {
  const got = await Promise.all(cases.map(async (c) => {
    for (let i = 0; i < 3; i++) if (await ping(c.from, c.to, c.src)) return true;
    return false;
  }));
  const wrong = cases.filter((c, i) => got[i] !== c.expect).map((c) => `${c.what}: expected ${c.expect ? 'pass' : 'fail'}, got ${c.expect ? 'fail' : 'pass'}`);
  assert.deepEqual(wrong, [], `unexpected ping results:\n${wrong.join('\n')}`);
}

/** Counters of the tbf qdiscs of a namespace, by device. */
async function tbfCounters(netns: string): Promise<Map<string, { rate: number; packets: number; drops: number }>> {
  const qdiscs = await new Kernel({ netns }).json<{ kind: string; dev: string; options?: { rate?: number }; packets?: number; drops?: number }[]>('tc', ['-s', 'qdisc', 'show']);
  return new Map(qdiscs.filter((q) => q.kind === 'tbf').map((q) => [q.dev, { rate: q.options?.rate ?? 0, packets: q.packets ?? 0, drops: q.drops ?? 0 }]));
}

/** Links lsdn owns in a namespace (their alias starts with "lsdn:"). */
async function ownedLinks(netns: string): Promise<string[]> {
  const links = await new Kernel({ netns }).json<{ ifname: string; ifalias?: string }[]>('ip', ['link', 'show']);
  return links.filter((l) => l.ifalias?.startsWith('lsdn:')).map((l) => l.ifname);
}

// ---------------------------------------------------------------------------------------------

describe('lsctl scenarios in lab hosts', { ...needsRoot, concurrency: 2 }, () => {
  for (const type of ['vlan', 'vxlan/e2e', 'vxlan/mcast -mcastIp 239.1.1.1', 'vxlan/static', 'geneve']) {
    test(`basic (${type}): same-net pings pass, across hosts too; other-net pings fail; cleanup removes everything`, skipUnless(type.split(' ')[0]!), async (t) => {
      const env = { LSCTL_NETTYPE: type };
      const script = scriptFile(t, 'basic.lsctl', BASIC);
      const { model, layout } = await labWithLsctl(t, 'lsctl', script, env);
      assert.equal(model.settings.get('default')?.type, type.split(' ')[0]);
      await assertIsolation(model, layout, `basic ${type}`);
      // cleanup: no lsdn device remains on any host.
      const cleanup = scriptFile(t, 'cleanup.lsctl', CLEANUP);
      for (const [phys, ns] of layout.physNs) {
        assert.notDeepEqual(await ownedLinks(ns), [], `phys ${phys} before cleanup`);
        await runLsctlIn(ns, cleanup, phys);
        assert.deepEqual(await ownedLinks(ns), [], `phys ${phys} after cleanup`);
      }
      const a1 = layout.virtNs.get('1/_1')!;
      assert.equal(await ping(a1, layout.virtIps.get('1/_3')![0]!), false, 'after cleanup, a1 no longer reaches b1');
    });
  }

  test('msettings: two nets with id 1, vlan (else vxlan/static) and vxlan/e2e, stay isolated', async (t) => {
    const other = unsupported.has('vlan') ? 'vxlan/static -port 4790' : 'vlan';
    const script = scriptFile(t, 'msettings.lsctl', MSETTINGS);
    const { model, layout } = await labWithLsctl(t, 'lsctlms', script, { LSCTL_OTHER: other });
    assert.deepEqual([...model.nets.values()].map((n) => [n.vid, n.effectiveSettings()?.type]), [[1, other.split(' ')[0]], [1, 'vxlan/e2e']]);
    await assertIsolation(model, layout, `msettings (${other})`);
  });

  test('migrate: a virt moves a -> b -> c with two commits after each move; pings reach it at its current place', async (t) => {
    const script = scriptFile(t, 'migrate.lsctl', MIGRATE);
    const states = [await modelOf(script, {}, 0), await modelOf(script, {}, 2), await modelOf(script, {}, 4)];
    assert.deepEqual(states.map((m) => m.virt('movingTarget/migrator')?.physRef), ['a', 'b', 'c']);
    const procs = new Map<string, Proc>();
    t.after(() => {
      for (const p of procs.values()) if (p.child.exitCode === null) p.child.kill();
    });
    const layout = await labUp(states[0]!, {
      prefix: labPrefixFor(t, 'lsctlmig'),
      apply: async (phys, netns) => {
        const p = startLsctl(netns, script, phys.name);
        procs.set(phys.name, p);
        await waitFor(p, 'LSCTL: committed 1');
      },
    });
    const migratorIp = layout.virtIps.get('movingTarget/migrator')![0]!;
    const from = ['movingTarget/_1', 'movingTarget/_2'].map((id) => layout.virtNs.get(id)!);
    for (const [i, model] of states.entries()) {
      if (i > 0) {
        const before = states[i - 1]!.virt('movingTarget/migrator')!;
        await labMoveVirt(layout, model.virt('movingTarget/migrator')!, { phys: before.physRef!, if: before.if! });
        for (const p of procs.values()) p.child.stdin?.write('\n');
        for (const p of procs.values()) await waitFor(p, `LSCTL: committed ${i + 1}`);
      }
      for (const ns of from) assert.ok(await ping(ns, migratorIp), `step ${i + 1}: migrator reachable at ${model.virt('movingTarget/migrator')?.physRef}`);
      await assertIsolation(model, layout, `migrate step ${i + 1}`);
    }
    for (const p of procs.values()) p.child.stdin?.end();
    for (const [phys, p] of procs) assert.equal(await p.exit, 0, `lsctl on ${phys}: ${p.err}`);
  });

  test('firewall: drop rules by source prefix, source address and destination address stop the matching pings, the others pass', async (t) => {
    const script = scriptFile(t, 'firewall.lsctl', FIREWALL);
    const { layout, outputs } = await labWithLsctl(t, 'lsctlfw', script);
    const virts = JSON.parse(outputs.get('a')!.out).lsdnNets[0].virts;
    assert.deepEqual(virts[0].rules.map((r: { dir: string; prio: number; targets: { target: string; match: string; matchMask: string }[] }) => [r.dir, r.prio, r.targets]), [
      ['in', 1, [{ target: 'src_ipv4', match: '192.168.98.0', matchMask: '255.255.255.0' }]],
      ['in', 2, [{ target: 'src_ipv4', match: '192.168.99.2', matchMask: '255.255.255.255' }]],
      ['out', 2, [{ target: 'dst_ipv4', match: '192.168.99.3', matchMask: '255.255.255.255' }]],
    ]);
    const [a1, a2, b1] = ['1/_1', '1/_2', '1/_3'].map((id) => layout.virtNs.get(id)!) as [string, string, string];
    const P = (from: string, name: string, to: string, expect: boolean, why: string, src?: string): PingCase =>
      ({ from, to, expect, what: `${name} -> ${to}${src !== undefined ? ` from ${src}` : ''} (${why})`, ...(src !== undefined ? { src } : {}) });
    await assertPings([
      // LSDN's checks: a1 pings a2's addresses.
      P(a1, 'a1', '192.168.99.2', false, 'in 2: the reply from 192.168.99.2 is dropped'),
      P(a1, 'a1', '192.168.99.3', false, 'out 2: the request to 192.168.99.3 is dropped'),
      P(a1, 'a1', '192.168.99.4', true, 'no rule matches'),
      P(a1, 'a1', '192.168.98.2', false, 'in 1: the reply from 192.168.98.0/24 is dropped'),
      P(a1, 'a1', '192.168.97.2', true, '192.168.97.2 is outside 192.168.98.0/24'),
      // a2 pings a1 from each of its addresses.
      P(a2, 'a2', '192.168.99.1', false, 'in 2: the request from 192.168.99.2 is dropped', '192.168.99.2'),
      P(a2, 'a2', '192.168.99.1', false, 'out 2: the reply to 192.168.99.3 is dropped', '192.168.99.3'),
      P(a2, 'a2', '192.168.99.1', true, 'no rule matches', '192.168.99.4'),
      P(a2, 'a2', '192.168.99.1', false, 'in 1: the request from 192.168.98.0/24 is dropped', '192.168.98.2'),
      P(a2, 'a2', '192.168.99.1', true, '192.168.97.2 is outside 192.168.98.0/24', '192.168.97.2'),
      // Across hosts: the same rules hold for what arrives through the tunnel.
      P(b1, 'b1', '192.168.99.1', false, 'in 1: the request from 192.168.98.0/24 is dropped', '192.168.98.4'),
      P(b1, 'b1', '192.168.99.1', true, 'no rule matches', '192.168.99.5'),
      // The rules are a1's only: a2 receives and sends whatever a1 may not.
      P(b1, 'b1', '192.168.99.2', true, 'a2 has no rules', '192.168.98.4'),
      P(b1, 'b1', '192.168.99.3', true, 'a2 has no rules', '192.168.99.5'),
    ]);
  });

  test('qos: rates of hundreds of kbit let pings through (through the tbf); rates of a few bits stop them, in both directions', async (t) => {
    const script = scriptFile(t, 'qos.lsctl', QOS);
    const { model, layout, outputs } = await labWithLsctl(t, 'lsctlqos', script);
    const virts = JSON.parse(outputs.get('a')!.out).lsdnNets[0].virts;
    assert.deepEqual(virts.map((v: { qosIn?: unknown; qosOut?: unknown }) => [v.qosIn, v.qosOut]), [
      ...[1, 2].map(() => [{ avgRate: 300 * 128, burstSize: 300 * 128, burstRate: 300 * 128 }, { avgRate: 600 * 128, burstSize: 600 * 128, burstRate: 600 * 128 }]),
      [{ avgRate: 1, burstSize: 1, burstRate: 1 }, undefined],
      [undefined, { avgRate: 2, burstSize: 2, burstRate: 2 }],
    ]);
    // Permanent neighbour entries: no ARP, so the only frames through the tbfs are the pings.
    const ids = ['1/_1', '1/_2', '1/_3', '1/_4'];
    const ns = ids.map((id) => layout.virtNs.get(id)!);
    const ip = ids.map((id) => layout.virtIps.get(id)![0]!.split('/')[0]!);
    await Promise.all(ns.map((n, i) => new Kernel({ netns: n }).batch('ip', ids.flatMap((id, j) =>
      j === i ? [] : [`neigh replace ${ip[j]} lladdr ${model.virt(id)!.mac as string} dev eth0 nud permanent`]))));
    const [a1, a2, a3, a4] = ns as [string, string, string, string];
    const [ip1, ip2, ip3, ip4] = ip as [string, string, string, string];
    const P = (from: string, to: string, expect: boolean, what: string): PingCase => ({ from, to, expect, what });
    await assertPings([
      P(a1, ip2, true, 'a1 -> a2 (600kbit out of a1, 300kbit into a2)'),
      P(a2, ip1, true, 'a2 -> a1 (600kbit out of a2, 300kbit into a1)'),
      P(a1, ip3, false, 'a1 -> a3 (8bit into a3: the request is dropped)'),
      P(a3, ip1, false, 'a3 -> a1 (8bit into a3: the reply is dropped)'),
      P(a4, ip1, false, 'a4 -> a1 (16bit out of a4: the request is dropped)'),
      P(a1, ip4, false, 'a1 -> a4 (16bit out of a4: the reply is dropped)'),
    ]);
    // The passing pings went through the shaping, and the tbfs of a few bits are what dropped the others.
    const tbf = await tbfCounters(layout.physNs.get('a')!);
    const text = JSON.stringify([...tbf]);
    const byRate = (bytesPerSecond: number) => [...tbf.values()].filter((q) => q.rate === bytesPerSecond);
    assert.equal(tbf.size, 6, `a tbf on the ports of a1, a2, a3 and on the IFBs of a1, a2, a4: ${text}`);
    for (const q of [...byRate(300 * 128), ...byRate(600 * 128)]) assert.ok(q.packets > 0 && q.drops === 0, `hundreds of kbit: packets pass, none dropped: ${text}`);
    assert.equal(byRate(300 * 128).length + byRate(600 * 128).length, 4, text);
    assert.ok(tbf.get('3')!.drops > 0, `8bit toward a3 (port 3) dropped the pings: ${text}`);
    assert.equal(byRate(2).length, 1, text);
    assert.ok(byRate(2)[0]!.drops > 0, `16bit from a4 (its IFB) dropped the pings: ${text}`);
  });

  test('large: physes and virts generated with proc and loops, broadcast to more than 32 physes', async (t) => {
    const env = { LSCTL_PHYSES: '34' };
    const script = scriptFile(t, 'large.lsctl', LARGE);
    const { model, layout } = await labWithLsctl(t, 'lsctllg', script, env, 'p1');
    assert.equal(model.physes.size, 34);
    const first = layout.virtNs.get('10/_1')!;
    const last = layout.virtNs.get('10/_34')!;
    const ips = [...model.net('10')!.virts.values()].map((v) => layout.virtIps.get(v.id)![0]!);
    const results = await Promise.all(ips.slice(1).map((ip) => ping(first, ip)));
    assert.deepEqual(results.map((ok, i) => (ok ? '' : ips[i + 1])).filter(Boolean), [], 'from the first virt to every other');
    assert.ok(await ping(last, ips[0]!), 'from the last virt to the first');
  });

  test('a failing commit in a lab host: the problems are printed and lsctl exits 1', async (t) => {
    const prefix = labPrefixFor(t, 'lsctlbad');
    const script = scriptFile(t, 'bad.lsctl', BASIC.replace('virt -phys b -if 2', 'virt -phys b -if nosuch'));
    const model = await modelOf(scriptFile(t, 'basic.lsctl', BASIC), { LSCTL_NETTYPE: 'vxlan/e2e' });
    const failures: string[] = [];
    await labUp(model, {
      prefix,
      apply: async (phys, netns) => {
        const p = startLsctl(netns, script, phys.name, { LSCTL_NETTYPE: 'vxlan/e2e' });
        p.child.stdin?.end();
        if ((await p.exit) !== 0) failures.push(`${phys.name}: ${p.err}`);
      },
    });
    assert.equal(failures.length, 1, failures.join('\n'));
    assert.match(failures[0]!, /^b: .*:18:1: error: virt 2\/_2: interface "nosuch" does not exist on this host \(phys b\)/s);
    assert.match(failures[0]!, /bad\.lsctl:22: error: commit: /);
  });
});
