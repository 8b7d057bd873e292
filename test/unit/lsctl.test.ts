/**
 * lsctl without root: real scripts run by a real tclsh (the prelude's option parser, scopes
 * and nesting), with commit and cleanup recorded instead of touching the kernel; show,
 * round trips lsctl -> YAML -> lsctl -> YAML, and every kind of error.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { importLsctl, runLsctl, findTclsh, type RunLsctlOptions } from '../../src/lsctl/run.js';
import { TclshMissingError } from '../../src/core/errors.js';
import { parseLsctlRate, type LsctlHost } from '../../src/lsctl/session.js';
import { dumpLsctl, tclList, tclWord } from '../../src/lsctl/dump.js';
import { dumpLsdnJson, dumpYaml } from '../../src/file/dump.js';
import { loadModelFile, loadModelText } from '../../src/file/load.js';
import { registerLsctlVerbs, dumpLsctl as verbsDumpLsctl } from '../../src/cli/lsctl-verbs.js';
import type { Netmodel } from '../../src/model/netmodel.js';

const BIN = new URL('../../bin/lsctl', import.meta.url).pathname;
const EXAMPLE = new URL('../../examples/cluster.yaml', import.meta.url).pathname;

/** The shape of LSDN's quick start (from the reference). */
const QUICK_START = `namespace import lsdn::*
settings vxlan/e2e
net 1
net 2
phys -name A -if eth0 -ip 192.168.10.1 {
    attach 1 2
    virt -name 1 -if tap0 -mac 14:9b:dd:6b:81:71 -net 1
    virt -name 2 -if tap1 -mac 92:89:90:93:61:75 -net 2
}
phys -name B -if eth0 -ip 192.168.10.2 {
    attach 1 2
    virt -name 3 -if tap0 -mac 42:94:a5:f9:69:c6 -net 1
    virt -name 4 -if tap1 -mac f2:9b:4f:48:2d:d1 -net 2
}
claimLocal [lindex $argv 0]
commit
`;

const QUICK_START_SHOW = `# lsctl script written by lsdn
namespace import lsdn::*
settings vxlan/e2e
phys -name A -if eth0 -ip 192.168.10.1
phys -name B -if eth0 -ip 192.168.10.2
net 1 {
    attach A B
    virt -name 1 -phys A -if tap0 -mac 14:9b:dd:6b:81:71
    virt -name 3 -phys B -if tap0 -mac 42:94:a5:f9:69:c6
}
net 2 {
    attach A B
    virt -name 2 -phys A -if tap1 -mac 92:89:90:93:61:75
    virt -name 4 -phys B -if tap1 -mac f2:9b:4f:48:2d:d1
}
`;

/** Every feature of the language and the model, for round trips. */
const FULL = `namespace import lsdn::*
context roundtrip
settings vlan
settings geneve/e2e -name g -port 6082
settings geneve -name gs
settings vxlan/static -name st -port 4790
settings vxlan/mcast -name mc -mcastIp ff05::1 -ttl 4
settings vxvde -name vx -mcastIp 239.1.1.1 -port 14790 -vni 7 -ttl 3 -if eth1
proc forN {n var body} {
    for {set i 1} {$i <= $n} {incr i} {
        uplevel 1 [list set $var $i]
        uplevel 1 $body
    }
}
forN 3 i { phys -name p$i -if out -ip 172.16.0.$i -mtu 1500 }
phys -if spare
net -vid 100 -settings g tenant {
    attach p1 p2
    virt -phys p1 -if t1 -mac 02:00:00:00:00:01 -ip {10.0.0.1/24 fd00::1/64} -mtu 1400 {
        rule in 1 drop -srcIp 192.168.98.0/24
        rule in 2 drop -srcMac 02:00:00:00:00:00/ff:ff:ff:00:00:00 -dstIp 10.0.0.9
        rule out 2 accept -dstIp 192.168.99.3 -proto tcp -dstPort 22
        rule out 3 drop -proto icmp -icmpType echo-request
        rule out 4 drop -proto udp -srcPort 1000-2000
        rate out -avg 600kbit -burst 600kbit -burstRate 1mbit
        rate in -avg 1000 -burst 2kb
    }
    virt -name named -phys p2 -if t2 -ip 10.0.0.2/24
}
phys -name p3 {
    net 2 {
        virt -if t3 -mac 02:00:00:00:00:03
    }
}
net -settings st -- -odd {
    attach -- p3
    virt -name {a b} -phys p3 -if tx -mac 02:00:00:00:00:0a
}
net -mtu 1300 -settings mc x
attach -net x p1 p2
net -settings vx v
net -settings gs -vid 5 geneve-net
show
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  file: string;
  model: Netmodel;
  calls: string[];
  commits: string[];
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'lsctl-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** commit and cleanup, recorded: "commit PHYS net/virt@phys,...", "cleanup CONTEXT". */
function recordingHost(calls: string[]): LsctlHost {
  return {
    async commit(model, phys) {
      calls.push(`commit ${phys.name} ${model.virts().map((v) => `${v.id}@${v.physRef ?? '-'}`).join(',')}`);
    },
    async cleanup(model) {
      calls.push(`cleanup ${model.name}`);
    },
  };
}

async function lsctl(t: TestContext, text: string, args: string[] = [], opts: RunLsctlOptions & { dir?: string; name?: string } = {}): Promise<Run> {
  const dir = opts.dir ?? tempDir(t);
  const file = join(dir, opts.name ?? 'script.lsctl');
  writeFileSync(file, text);
  const calls: string[] = [];
  const r = await runLsctl(file, args, { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', host: recordingHost(calls), keepCommits: true, ...opts });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, file, model: r.session.model, calls, commits: r.session.commits };
}

/** The script failed at LINE with a message matching `re`, printed as "FILE:LINE: error: ...". */
function assertFails(r: Run, line: number, re: RegExp): void {
  assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
  const first = r.stderr.split('\n').find((l) => /error: /.test(l) && !/^\S+:\d+:\d+: /.test(l)) ?? '';
  assert.ok(first.startsWith(`${r.file}:${line}: error: `), `expected ${r.file}:${line}: error: ..., got:\n${r.stderr}`);
  assert.match(first, re);
}

// ---------------------------------------------------------------------------------------------

describe('lsctl scripts (real tclsh)', () => {
  test('the quick start builds the model, claims $argv\'s phys and commits it; show prints it back', async (t) => {
    const r = await lsctl(t, `${QUICK_START}show\n`, ['A']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, QUICK_START_SHOW + 'claimLocal A\n');
    assert.deepEqual(r.calls, ['commit A 1/1@A,1/3@B,2/2@A,2/4@B']);
    const m = r.model;
    assert.deepEqual([...m.nets.keys()], ['1', '2']);
    assert.equal(m.net('1')?.vid, 1);
    assert.deepEqual([...(m.net('2')?.physes ?? [])].map((p) => p.name), ['A', 'B']);
    assert.equal(m.virt('2/4')?.mac, 'f2:9b:4f:48:2d:d1');
    assert.equal(m.virt('2/4')?.if, 'tap1');
    assert.deepEqual([...m.localPhyses].map((p) => p.name), ['A']);
  });

  test('show -json prints LSDN\'s JSON dump', async (t) => {
    const r = await lsctl(t, `${QUICK_START}show -json\n`, ['B']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, dumpLsdnJson(r.model));
    const j = JSON.parse(r.stdout);
    assert.equal(j.lsdnName, 'lsdn');
    assert.deepEqual(j.lsdnPhyses.map((p: { physName: string; isLocal: boolean }) => [p.physName, p.isLocal]), [['A', false], ['B', true]]);
    assert.deepEqual(j.lsdnNets[0].virts.map((v: { virtName: string }) => v.virtName), ['1', '3']);
  });

  test('nesting: a body gives its object as context to the commands in it', async (t) => {
    const r = await lsctl(t, `namespace import lsdn::*
settings vlan
phys -name a -if eth0
phys -name b -if eth0
net 10
net 20 {
    phys -name c -if eth1 {
        virt -name deep -if d0
    }
    virt -name plain
    virt -name onb -phys b -if t0
}
phys -name a {
    net 30 {
        virt -name x -if x0
    }
    virt -net 10 -name y -if y0
    attach 20
    claimLocal
}
virt -net 10 -name root -phys b -if r0 -mac 02:00:00:00:00:01 {
    rule in 5 drop -srcIp 10.0.0.0/8
    rule out 6 drop -dstMac 02:00:00:00:00:00/ff:ff:ff:00:00:00
    rate in -avg 1mbit -burst 64kb
    rate out -avg 100 -burst 8bit -burstRate 2kbit
}
virt -net 10 -name flushed -phys b -if f0 {
    rule in 1 drop -srcIp 10.0.0.1
    rate in -avg 1mbit -burst 64kb
    flushVr
}
`);
    assert.equal(r.code, 0, r.stderr);
    const m = r.model;
    // phys in a net body: attached; virt in that phys body: in the net, connected to the phys.
    assert.ok(m.net('20')?.physes.has(m.phys('c')!));
    assert.equal(m.virt('20/deep')?.physRef, 'c');
    assert.equal(m.virt('20/deep')?.if, 'd0');
    // virt in a net body: in the net, not connected.
    assert.equal(m.virt('20/plain')?.connected, false);
    assert.equal(m.virt('20/onb')?.physRef, 'b');
    // net in a phys body: attached; virts in it connected to the phys.
    assert.ok(m.net('30')?.physes.has(m.phys('a')!));
    assert.equal(m.virt('30/x')?.physRef, 'a');
    // virt in a phys body with -net.
    assert.equal(m.virt('10/y')?.physRef, 'a');
    assert.ok(m.net('20')?.physes.has(m.phys('a')!));
    assert.deepEqual([...m.localPhyses].map((p) => p.name), ['a']);
    // rules and rates of a virt body; LSDN's units (a bare rate is bytes/s; 1024-based).
    const v = m.virt('10/root')!;
    assert.deepEqual(v.rules.map((x) => [x.direction, x.spec]), [
      ['in', { priority: 5, action: 'drop', srcIp: '10.0.0.0/8' }],
      ['out', { priority: 6, action: 'drop', dstMac: '02:00:00:00:00:00/ff:ff:ff:00:00:00' }],
    ]);
    assert.deepEqual(v.rates.in?.spec, { avg: 1024 * 1024, burst: 64 * 1024 });
    assert.deepEqual(v.rates.out?.spec, { avg: 800, burst: 1, peak: 2048 });
    assert.equal(m.virt('10/flushed')?.rules.length, 0);
    assert.equal(m.virt('10/flushed')?.rates.in, undefined);
  });

  test('Tcl works: proc, loops, {*}, $argv/$argc, ::env, source relative to the script, puts in order with show', async (t) => {
    const dir = tempDir(t);
    mkdirSync(join(dir, 'lib'));
    writeFileSync(join(dir, 'lib', 'common.tcl'), 'namespace eval common {\n    proc settings {} { ::lsdn::settings {*}$::env(LSCTL_NETTYPE) }\n}\n');
    const r = await lsctl(t, `namespace import lsdn::*
source lib/common.tcl
common::settings
proc for40 {var body} {
    for {set $var 1} {[set $var] <= 40} {incr i} $body
}
for40 i {
    phys -if out -name p$i -ip 172.16.0.$i
}
net 10 {
    for40 i {
        attach p$i
        virt -if virt -phys p$i -mac 00:00:00:00:00:[format %02x $i]
    }
}
set rateParam {-avg 600kbit -burst 600kbit -burstRate 600kbit}
virt -net 10 -name r {
    rate out {*}$rateParam
}
puts "argc=$argc argv=$argv"
show
puts done
`, ['p7', 'extra arg'], { dir, cwd: tmpdir(), env: { ...process.env, LSCTL_NETTYPE: 'vxlan/static -port 4790' } });
    assert.equal(r.code, 0, r.stderr);
    const m = r.model;
    assert.equal(m.settings.get('default')?.type, 'vxlan/static');
    assert.equal(m.settings.get('default')?.options.port, 4790);
    assert.equal(m.physes.size, 40);
    assert.equal(m.net('10')?.physes.size, 40);
    assert.equal(m.net('10')?.virts.size, 41);
    assert.equal(m.virt('10/_40')?.mac, '00:00:00:00:00:28');
    assert.equal(m.virt('10/_40')?.physRef, 'p40');
    assert.equal(m.virt('10/r')?.rates.out?.spec.avg, 600 * 1024);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'argc=2 argv=p7 {extra arg}');
    assert.equal(lines[1], '# lsctl script written by lsdn');
    assert.equal(lines.at(-2), 'done');
  });

  test('unnamed virts and physes get names "_N"; -remove, detach, -ifClear, -macClear, context', async (t) => {
    const r = await lsctl(t, `namespace import lsdn::*
context mine
settings vxlan/e2e
settings vlan -name second
settings vlan -name gone
settings -remove -name gone
phys -if e0 -ip 10.0.0.1
phys -if e0 -ip 10.0.0.2
phys -name keep -if e0 -ip 10.0.0.3
phys -name keep -ifClear -ipClear
phys -name drop
phys -name drop -remove
net 1 {
    attach _1 _2
    virt -phys _1 -if t0 -mac 02:00:00:00:00:01
    virt -phys _2 -if t0
    virt -name _2 -macClear
    virt -name tmp
    virt -name tmp -remove
    virt -name _1 -ip 10.1.0.1/24
}
net 2 {attach -- _1 _2}
net 3
detach -net 2 _2
net -remove 3
virt -net 2 -name onnet -if later
`);
    assert.equal(r.code, 0, r.stderr);
    const m = r.model;
    assert.equal(m.name, 'mine');
    assert.deepEqual([...m.settings.keys()], ['default', 'second']);
    assert.deepEqual([...m.physes.keys()], ['_1', '_2', 'keep']);
    assert.equal(m.phys('keep')?.if, undefined);
    assert.equal(m.phys('keep')?.ip, undefined);
    assert.deepEqual([...m.net('1')!.virts.keys()], ['_1', '_2']);
    assert.equal(m.virt('1/_2')?.mac, undefined);
    assert.equal(m.virt('1/_2')?.physRef, '_2');
    assert.deepEqual(m.virt('1/_1')?.ips, ['10.1.0.1/24']);
    assert.deepEqual([...m.net('2')!.physes].map((p) => p.name), ['_1']);
    assert.equal(m.net('3'), undefined);
    assert.equal(m.virt('2/onnet')?.if, 'later');
    assert.equal(m.virt('2/onnet')?.connected, false);
  });

  test('migration: a script commits several times with the model changed in between', async (t) => {
    const r = await lsctl(t, `namespace import lsdn::*
settings vxlan/e2e
net -vid 1 movingTarget {
    phys -if out -name a -ip 172.16.0.1 {
        virt -if 1 -mac 00:00:00:00:00:01
        virt -if 2 -mac 00:00:00:00:00:02 -name migrator
    }
    phys -if out -name b -ip 172.16.0.2
    phys -if out -name c -ip 172.16.0.3
}
claimLocal [lindex $argv 0]
commit
commit
net movingTarget {
    virt -name migrator -phys b -if 2
}
commit
commit
net movingTarget {
    virt -name migrator -phys c
}
commit
commit
free
`, ['b']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.calls, [
      ...Array(2).fill('commit b movingTarget/_1@a,movingTarget/migrator@a'),
      ...Array(2).fill('commit b movingTarget/_1@a,movingTarget/migrator@b'),
      ...Array(2).fill('commit b movingTarget/_1@a,movingTarget/migrator@c'),
    ]);
    assert.equal(r.commits.length, 6);
    // -if is kept when only the phys changes.
    assert.match(r.commits[5] ?? '', /migrator: \{ phys: c, if: "2"|migrator:\n\s+phys: c\n\s+if: "2"/);
    assert.equal(r.model.nets.size, 0, 'free forgets the model');
  });

  test('commit without a local phys validates only; cleanup removes the context, then starts afresh', async (t) => {
    const r = await lsctl(t, `namespace import lsdn::*
context ctx1
settings vlan
phys -name a -if eth0
net 5 { attach a }
commit
cleanup
show
`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.calls, ['cleanup ctx1']);
    assert.equal(r.commits.length, 1);
    assert.equal(r.stdout, '# lsctl script written by lsdn\nnamespace import lsdn::*\ncontext ctx1\n');
  });

  test('commit prints every problem, located, and fails without committing', async (t) => {
    const r = await lsctl(t, `namespace import lsdn::*
settings vxlan/static
phys -name a -if eth0
phys -name b -if eth0 -ip 10.0.0.2
net 1 {
    attach a
    virt -name v -phys a -if tap0 -mac zz
    virt -name w -phys a -if tap0
    virt -name u -phys b -if tap1 -mac 02:00:00:00:00:01
}
claimLocal a
if {[catch commit msg]} { puts "caught: $msg" }
virt -net 1 -name v -macClear
commit
`);
    const f = r.file;
    assertFails(r, 14, /^.*error: commit: the model is invalid \(\d+ problem\(s\)\); nothing was changed$/);
    assert.deepEqual(r.calls, []);
    assert.match(r.stdout, /^caught: commit: the model is invalid \(5 problem\(s\)\); nothing was changed$/m);
    const problems = r.stderr.split('\n').filter((l) => /^\S+:\d+:1: (error|warning): /.test(l));
    // Twice the same list but for v's MAC, each located at the command that wrote the field.
    assert.ok(problems.includes(`${f}:3:1: error: phys a: net "1" is vxlan/static, which needs an underlay IP ("ip") on each of its physes`), problems.join('\n'));
    assert.ok(problems.includes(`${f}:7:1: error: virt 1/v: MAC "zz" is malformed (expected six hex pairs, like 02:00:00:00:00:01)`), problems.join('\n'));
    assert.ok(problems.includes(`${f}:8:1: error: virt 1/w: interface "tap0" on phys "a" is already the interface of virt 1/v`));
    assert.ok(problems.some((l) => l.startsWith(`${f}:9:1: error: virt 1/u: it is connected through phys "b", which is not attached to net "1"`)));
    assert.ok(problems.some((l) => l.startsWith(`${f}:7:1: error: virt 1/v: net "1" is vxlan/static, which programs every MAC`)), 'after -macClear');
  });

  test('validate prints the problems and fails on errors only', async (t) => {
    const ok = await lsctl(t, 'namespace import lsdn::*\nsettings vlan\nphys -name lonely -if eth0\nvalidate\nputs fine\n');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /:3:1: warning: phys lonely: phys "lonely" is attached to no net/);
    assert.equal(ok.stdout, 'fine\n');
    const bad = await lsctl(t, 'namespace import lsdn::*\nsettings vlan\nnet -vid 5000 big\nvalidate\n');
    assertFails(bad, 4, /validate: the model has 1 problem\(s\)/);
    assert.match(bad.stderr, /:3:1: error: net big: vid 5000 is outside vlan's range 1\.\.4094/);
  });

  test('exit codes: exit N in the script, a script error, a caught error', async (t) => {
    assert.equal((await lsctl(t, 'exit 3\n')).code, 3);
    assert.equal((await lsctl(t, 'namespace import lsdn::*\nset x [catch {net 1} msg]\nputs $msg\n')).code, 0);
    const r = await lsctl(t, 'puts before\nerror "my own error"\nputs after\n');
    assertFails(r, 2, /error: my own error$/);
    assert.equal(r.stdout, 'before\n');
  });
});

// ---------------------------------------------------------------------------------------------

describe('lsctl: vxvde settings as VDE writes them (vxvde://GROUP[/port=P][/vni=V][/ttl=N][/if=IF])', () => {
  test('a URL gives the same settings as the options; invalid values are validation\'s, at the line', async (t) => {
    const urls = await lsctl(t, [
      'namespace import lsdn::*',
      'settings vxvde://239.1.1.1/port=14790/vni=7/ttl=3/if=eth1 -name vx',
      'settings vxvde:// -name plain',
      'settings vxvde:///v6 -name six',
      'show -json',
      '',
    ].join('\n'));
    assert.equal(urls.code, 0, urls.stderr);
    const opts = await lsctl(t, [
      'namespace import lsdn::*',
      'settings vxvde -name vx -mcastIp 239.1.1.1 -port 14790 -vni 7 -ttl 3 -if eth1',
      'settings vxvde -name plain',
      'settings vxvde -name six -mcastIp ff05:56de::1',
      'show -json',
      '',
    ].join('\n'));
    assert.equal(opts.code, 0, opts.stderr);
    assert.equal(urls.stdout, opts.stdout);
    assert.deepEqual({ ...urls.model.settings.get('vx')!.options }, { mcastIp: '239.1.1.1', port: 14790, vni: 7, ttl: 3, iface: 'eth1' });
    assert.deepEqual({ ...urls.model.settings.get('plain')!.options }, {});
    // Out of range: the model's validation, located at the command.
    const bad = await lsctl(t, 'namespace import lsdn::*\n\nsettings vxvde://239.0.0.1/vni=99999999 -name v\nvalidate\n');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, new RegExp(`${bad.file.replace(/[.]/g, '\\.')}:3:1: error: settings v: vni 99999999 is outside 1..16777215`));
  });
});

describe('lsctl errors: a clear message, FILE:LINE, exit 1', () => {
  const cases: [string, string, number, RegExp][] = [
    ['settings in a net body', 'settings vlan\nnet 1 {\n    settings vxlan/e2e\n}', 3, /settings: not allowed in a net body \(settings may only be used at the root of the script\)/],
    ['rule at the root', 'rule in 1 drop', 1, /rule: not allowed at the root of the script \(rule may only be used in a virt body\)/],
    ['rate in a net body', 'settings vlan\nnet 1 {\n  rate in -avg 1kbit -burst 1kb\n}', 3, /rate: not allowed in a net body/],
    ['flushVr at the root', 'flushVr', 1, /flushVr: not allowed at the root of the script/],
    ['net in a virt body', 'settings vlan\nnet 1 {\n  virt -name v {\n    net 2\n  }\n}', 4, /net: not allowed in a virt body \(net may only be used at the root of the script or in a phys body\)/],
    ['net in a net body', 'settings vlan\nnet 1 {\n  net 2\n}', 3, /net: not allowed in a net body/],
    ['commit in a phys body', 'phys -name a {\n\n  commit\n}', 3, /commit: not allowed in a phys body/],
    ['show in a net body', 'settings vlan\nnet 1 { show }', 2, /show: not allowed in a net body/],
    ['claimLocal in a net body', 'settings vlan\nnet 1 { claimLocal x }', 2, /claimLocal: not allowed in a net body/],
    ['unknown phys', 'settings vlan\nnet 1 {\n  virt -name x -phys nosuch -if tap0\n}', 3, /virt: phys "nosuch" is not defined \(physes: none\); define a phys before referring to it/],
    ['unknown net', 'settings vlan\nphys -name a\nattach -phys a 1 2', 3, /attach: net "1" is not defined \(nets: none\)/],
    ['unknown settings', 'settings vlan\nnet -settings blue 1', 2, /net: settings "blue" are not defined \(settings: "default"\); define them before referring to them/],
    ['unknown virt net', 'virt -net 9 -name x', 1, /virt: net "9" is not defined/],
    ['claimLocal of an unknown phys', 'phys -name a\nclaimLocal a b', 2, /claimLocal: phys "b" is not defined \(physes: "a"\)/],
    ['claimLocal of $argv without arguments', 'phys -name a\nclaimLocal [lindex $argv 0]', 2, /claimLocal: phys "" is not defined \(physes: "a"\); a script claiming \[lindex \$argv 0\] needs the phys name as its argument/],
    ['forward reference to a phys', 'settings vlan\nnet 1 {\n  attach a\n}\nphys -name a', 3, /attach: phys "a" is not defined/],
    ['forward reference to settings', 'net 1\nsettings vlan', 1, /net: no settings are defined yet/],
    ['no default settings', 'settings vlan -name a\nsettings vlan -name b\nnet 1', 3, /net: there are no default settings among "a", "b": give the net -settings NAME/],
    ['default settings twice', 'settings vlan\nsettings direct', 2, /settings: the default settings \(unnamed\) are defined already; give the new settings a -name/],
    ['settings name twice', 'settings vlan -name x\nsettings direct -name x', 2, /settings: settings "x" are defined already/],
    ['unknown option', 'settings vxlan/e2e -bogus 1', 1, /settings: unknown option "-bogus" \(settings takes -if, -mcastIp, -name, -port, -remove, -ttl, -vni\)/],
    ['option of another type', 'settings vlan -port 5', 1, /settings: option -port does not apply to type vlan \(it takes -name\)/],
    ['unknown option of virt', 'settings vlan\nnet 1\nvirt -net 1 -nmae x', 3, /virt: unknown option "-nmae" \(virt takes -if, -ip, -mac, -macClear, -mtu, -name, -net, -phys, -remove\)/],
    ['missing value', 'settings vxlan/e2e -port', 1, /settings: option -port needs a value/],
    ['missing value in a body', 'settings vlan\nphys -name a {\n  net 1 {\n    virt -name\n  }\n}', 4, /virt: option -name needs a value/],
    ['not an integer', 'settings vlan\nnet -vid abc 1', 2, /net: option -vid needs a decimal integer, not "abc"/],
    ['unknown network type', 'settings vxlan', 1, /settings: unknown network type "vxlan" \(types: direct, vlan, vxlan\/mcast, vxlan\/e2e, vxlan\/static, geneve, geneve\/e2e, vxvde, or a vxvde:\/\/ URL\)/],
    ['a URL option lsdn does not take', 'settings vxvde://239.0.0.1/hashsize=3', 1, /settings: unsupported vxvde URL option "hashsize" \(lsdn supports port, vni, ttl, if, v4, v6\)/],
    ['a URL option without its number', 'settings vxvde://239.0.0.1/port=x', 1, /settings: vxvde URL option port needs a number, got "x"/],
    ['an option beside a URL', 'settings vxvde://239.0.0.1 -port 5', 1, /settings: option -port does not go with a URL \(give it in the URL: vxvde:\/\/239.0.0.1\)/],
    ['a URL of no type', 'settings http://example.org/', 1, /settings: invalid vxvde URL "http:\/\/example.org\/"/],
    ['missing type', 'settings -name x', 1, /settings: missing the network type/],
    ['net without a name', 'settings vlan\nnet -vid 1', 2, /net: missing the net's name/],
    ['too many arguments', 'settings vlan\nnet 1 {} extra', 2, /net: too many arguments: extra/],
    ['-net in a net body', 'settings vlan\nnet 1 {\n  virt -net 1 -name x\n}', 3, /virt: -net is not allowed in a net body: the virt joins the enclosing net/],
    ['-phys in a phys body', 'settings vlan\nnet 1\nphys -name a {\n  virt -net 1 -phys a\n}', 4, /virt: -phys is not allowed in a phys body/],
    ['virt without a net', 'virt -name x', 1, /virt: which net\? Give -net NET, or put the virt in a net body/],
    ['attach without a net', 'phys -name a\nattach -phys a', 2, /attach: which net\? Give -net N, NET names as arguments, or use attach in a net body/],
    ['attach with nothing', 'attach', 1, /attach: give -phys P -net N, -phys P NET\.\.\., or -net N PHYS\.\.\./],
    ['contradicting flags', 'phys -name a -if x -ifClear', 1, /phys: -if and -ifClear contradict each other/],
    ['-remove of an unknown virt', 'settings vlan\nnet 1\nvirt -net 1 -name x -remove', 3, /virt: net "1" has no virt "x" \(virts: none\)/],
    ['-remove with a body', 'settings vlan\nnet -remove 1 {}', 2, /net: -remove takes no body/],
    ['bad rule direction', 'settings vlan\nnet 1 {\n  virt -name v {\n    rule up 1 drop\n  }\n}', 4, /rule: direction must be in or out, not "up"/],
    ['bad rule action', 'settings vlan\nnet 1 {\n  virt -name v {\n    rule in 1 reject\n  }\n}', 4, /rule: the action must be drop \(or accept\), not "reject"/],
    ['bad rule priority', 'settings vlan\nnet 1 {\n  virt -name v {\n    rule in high drop\n  }\n}', 4, /rule: the priority must be a decimal integer, not "high"/],
    ['rate without -burst', 'settings vlan\nnet 1 {\n  virt -name v {\n    rate in -avg 1mbit\n  }\n}', 4, /rate: missing -burst/],
    ['rate with a bad unit', 'settings vlan\nnet 1 {\n  virt -name v {\n    rate in -avg 1furlong -burst 1kb\n  }\n}', 4, /rate: -avg: invalid rate "1furlong": unknown unit "furlong"/],
    ['show -tcl -json', 'show -tcl -json', 1, /show: give -tcl or -json, not both/],
    ['commit with arguments', 'commit now', 1, /commit: takes no arguments \(got: now\)/],
    ['two local physes', 'settings vlan\nphys -name a -if e0\nphys -name b -if e0\nnet 1 { attach a b }\nclaimLocal a b\ncommit', 6, /commit: more than one phys is claimed local \(a, b\); lsdn configures one phys per host/],
    ['a Tcl error in a body', 'settings vlan\nnet 1 {\n  virt -name a\n  nosuchcommand\n}', 4, /invalid command name "nosuchcommand"/],
  ];
  for (const [what, body, line, re] of cases) {
    test(what, async (t) => {
      const r = await lsctl(t, `namespace import lsdn::*\n${body}\n`);
      assertFails(r, line + 1, re);
      assert.match(r.stderr, /\n {4}while executing\n"/, 'the Tcl stack follows');
    });
  }

  test('a command without `namespace import lsdn::*` says how to fix it', async (t) => {
    const r = await lsctl(t, 'settings vlan\n');
    assertFails(r, 1, /invalid command name "settings" \(the lsctl commands are in namespace lsdn: start the script with `namespace import lsdn::\*`\)/);
  });

  test('lines inside procs, loops and nested bodies are located', async (t) => {
    const r = await lsctl(t, `namespace import lsdn::*
settings vlan
proc mk {n} {
    net $n {
        virt -name x -phys nosuch
    }
}
foreach n {1} {
    phys -name p {
        net 7 {

            virt -name q {
                rule in 1 drop -srcIp 10.0.0.1
                settings vlan
            }
        }
    }
}
`);
    assertFails(r, 14, /settings: not allowed in a virt body/);
    const r2 = await lsctl(t, 'namespace import lsdn::*\nsettings vlan\nproc mk {n} {\n    net $n {\n        virt -name x -phys nosuch\n    }\n}\nmk 3\n');
    assertFails(r2, 5, /phys "nosuch" is not defined/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('lsctl <-> YAML', () => {
  test('show -tcl is a fixpoint: running what it prints prints the same', async (t) => {
    const first = await lsctl(t, FULL);
    assert.equal(first.code, 0, first.stderr);
    const second = await lsctl(t, `${first.stdout}show\n`);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, first.stdout);
    assert.equal(dumpYaml(second.model), dumpYaml(first.model));
    assert.equal(dumpLsdnJson(second.model), dumpLsdnJson(first.model));
  });

  test('lsctl -> YAML -> lsctl -> YAML gives the same YAML', async (t) => {
    const dir = tempDir(t);
    for (const [name, text] of [['quick', QUICK_START], ['full', FULL]] as const) {
      const script = join(dir, `${name}.lsctl`);
      writeFileSync(script, text);
      const a = await importLsctl(script, ['A'], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
      assert.equal(a.code, 0, a.stderr);
      const yaml1 = dumpYaml(a.model);
      const loaded = loadModelText(yaml1, `${name}.yaml`);
      assert.deepEqual(loaded.problems, []);
      const script2 = join(dir, `${name}2.lsctl`);
      writeFileSync(script2, dumpLsctl(loaded.model!));
      const b = await importLsctl(script2, [], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
      assert.equal(b.code, 0, b.stderr);
      assert.equal(dumpYaml(b.model), yaml1, name);
    }
  });

  test('examples/cluster.yaml -> lsctl -> YAML is unchanged', async (t) => {
    const { model } = await loadModelFile(EXAMPLE);
    const dir = tempDir(t);
    const script = join(dir, 'cluster.lsctl');
    writeFileSync(script, dumpLsctl(model!));
    const r = await importLsctl(script, [], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(dumpYaml(r.model), dumpYaml(model!));
    assert.match(readFileSync(script, 'utf8'), /^net -vid 200 -settings static tenant-b \{$/m);
  });

  test('import runs the script without touching the host; its output goes to stderr; a freed model is taken at its last commit', async (t) => {
    const dir = tempDir(t);
    const script = join(dir, 's.lsctl');
    writeFileSync(script, `${QUICK_START}puts "hello from the script"\ncleanup\n`);
    const r = await importLsctl(script, ['A'], { stdin: 'ignore', stderr: 'pipe' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'hello from the script\n');
    assert.equal(r.commits.length, 1);
    assert.deepEqual([...r.model.nets.keys()], ['1', '2']);
  });

  test('import converts an invalid model too: its commits do not validate', async (t) => {
    const dir = tempDir(t);
    const script = join(dir, 'bad.lsctl');
    writeFileSync(script, 'namespace import lsdn::*\nsettings vxlan/static\nnet -vid 99999999 big {\n    virt -name nomac\n}\ncommit\n');
    const r = await importLsctl(script, [], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(r.model.net('big')?.vid, 99999999);
    assert.deepEqual(loadModelText(dumpYaml(r.model)).problems, []);
  });

  test('lsdn import (registerLsctlVerbs) writes the YAML or JSON; dumpLsctl is exported for dump --format lsctl', async (t) => {
    const dir = tempDir(t);
    const script = join(dir, 'q.lsctl');
    writeFileSync(script, QUICK_START);
    const program = new Command('lsdn').exitOverride();
    registerLsctlVerbs(program);
    const yamlFile = join(dir, 'q.yaml');
    await program.parseAsync(['import', '-o', yamlFile, script, 'A'], { from: 'user' });
    const { model, problems } = loadModelText(readFileSync(yamlFile, 'utf8'));
    assert.deepEqual(problems, []);
    assert.equal(model?.virt('2/4')?.if, 'tap1');
    assert.equal(verbsDumpLsctl, dumpLsctl);
    const jsonFile = join(dir, 'q.json');
    await program.parseAsync(['import', '--format', 'json', '-o', jsonFile, script, 'B'], { from: 'user' });
    assert.equal(JSON.parse(readFileSync(jsonFile, 'utf8')).physes.B.ip, '192.168.10.2');
    writeFileSync(script, 'namespace import lsdn::*\nnosuch\n');
    await assert.rejects(program.parseAsync(['import', '-o', yamlFile, script], { from: 'user' }), (e: { code?: number }) => e.code === 1);
  });
});

// ---------------------------------------------------------------------------------------------

describe('lsctl helpers and the executable', () => {
  test('Tcl words and lists', () => {
    assert.equal(tclWord('plain-1.2:3/4'), 'plain-1.2:3/4');
    assert.equal(tclWord(''), '{}');
    assert.equal(tclWord('a b'), '{a b}');
    assert.equal(tclWord('#1'), '{#1}');
    assert.equal(tclWord('x}y'), 'x\\}y');
    assert.equal(tclWord('$a[b]\\'), '\\$a\\[b\\]\\\\');
    assert.equal(tclWord('{x'), '\\{x');
    assert.equal(tclWord('a\nb'), '{a\nb}');
    assert.equal(tclList(['a', 'b c', '']), 'a {b c} {}');
  });

  test('rates: a bare number is bytes per second, units are 1024-based', () => {
    assert.equal(parseLsctlRate('1000'), 8000);
    assert.equal(parseLsctlRate('600kbit'), 600 * 1024);
    assert.equal(parseLsctlRate('1mb'), 8 * 1024 * 1024);
    assert.equal(parseLsctlRate('0.5mbit'), 512 * 1024);
  });

  test('no tclsh: a clear message names the package to install', async (t) => {
    assert.throws(() => findTclsh({ PATH: '/nonexistent' }), (e: Error) => e instanceof TclshMissingError && /install the "tcl" package/.test(e.message));
    await assert.rejects(lsctl(t, 'puts hi\n', [], { env: { ...process.env, LSDN_TCLSH: '/nonexistent/tclsh' } }), TclshMissingError);
    const dir = tempDir(t);
    writeFileSync(join(dir, 's.lsctl'), 'puts hi\n');
    const r = spawnSync(process.execPath, [BIN, join(dir, 's.lsctl')], { encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' } });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^lsctl: lsctl scripts run in Tcl, but no tclsh was found: install the "tcl" package/);
  });

  test('bin/lsctl runs a script with its arguments; usage; a missing script', (t) => {
    const dir = tempDir(t);
    const script = join(dir, 'q.lsctl');
    writeFileSync(script, QUICK_START.replace('commit\n', 'puts [lindex $argv 1]\nshow\n'));
    const r = spawnSync(process.execPath, [BIN, script, 'B', 'second'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `second\n${QUICK_START_SHOW}claimLocal B\n`);
    const usage = spawnSync(process.execPath, [BIN], { encoding: 'utf8' });
    assert.equal(usage.status, 1);
    assert.match(usage.stderr, /^usage: lsctl SCRIPT \[ARGS\.\.\.\]/);
    const missing = spawnSync(process.execPath, [BIN, join(dir, 'nope.lsctl')], { encoding: 'utf8' });
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot read script/);
    const bad = spawnSync(process.execPath, [BIN, script], { encoding: 'utf8', input: '' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /claimLocal: phys "" is not defined/);
  });
});
