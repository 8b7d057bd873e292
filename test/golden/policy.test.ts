/**
 * Golden tests of security policy (issue 6), pure: the firewall tables, qdiscs and filters a
 * host's virts compile to, the plan that builds them, and the plans of changes to them (one
 * rule, stateful off, a rate changed or removed, everything removed): proportional, one nft
 * transaction per table. Plus the helpers that make a no-op apply empty (canonical nft lines,
 * tc's rounding) and the file format of the new fields.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dumpYaml } from '../../src/file/dump.js';
import { compileHost } from '../../src/compile/compile.js';
import { HostState, type QdiscObject } from '../../src/core/objects.js';
import { planChanges } from '../../src/plan/plan.js';
import { formatPlan } from '../../src/apply/format.js';
import type { Netmodel } from '../../src/model/netmodel.js';
import { canonicalNftLine } from '../../src/kinds/nft.js';
import { ruleLine } from '../../src/policy/firewall.js';
import { virtChainName } from '../../src/core/names.js';
import { sameQdisc, tbfLimitFromLatency } from '../../src/kinds/qdisc.js';
import { tbfQdisc } from '../../src/policy/shaping.js';
import { parseTcRate } from '../../src/kinds/qdisc.js';
import { splitJsonValues } from '../../src/kinds/iproute.js';
import { assertGolden } from './golden.js';
import { loadValid } from '../helpers/model.js';

function load(text: string): Netmodel {
  return loadValid(text, 'golden.yaml');
}

const FACTS = { mtu: new Map([['eth0', 1500]]) };

interface Variant {
  /** Rules of web (in). */
  webRule?: string;
  webStateful?: boolean;
  dbRate?: string;
  /** No policy at all: no rules, rates, stateful; anti-spoofing off. */
  bare?: boolean;
}

function policyModel(v: Variant = {}): string {
  if (v.bare) {
    return `
name: golden
settings: { default: { type: vxlan/e2e } }
physes:
  a: { if: eth0, ip: 192.0.2.1 }
  b: { if: eth0, ip: 192.0.2.2 }
nets:
  blue:
    vid: 10
    virts:
      web: { phys: a, if: tap-web, mac: 02:00:00:00:0a:01, ip: [10.0.0.1/24, 2001:db8::1/64], antiSpoof: false }
      db:  { phys: a, if: tap-db,  mac: 02:00:00:00:0a:02, ip: 10.0.0.2/24, antiSpoof: false }
      nomac: { phys: a, if: tap-nomac, ip: fd00::5/64, antiSpoof: false }
      open: { phys: a, if: tap-open, mac: 02:00:00:00:0a:04, antiSpoof: false }
      far: { phys: b, if: tap-far, mac: 02:00:00:00:0b:01, ip: 10.0.0.3/24, antiSpoof: false }
`;
  }
  return `
name: golden
settings: { default: { type: vxlan/e2e } }
physes:
  a: { if: eth0, ip: 192.0.2.1 }
  b: { if: eth0, ip: 192.0.2.2 }
nets:
  blue:
    vid: 10
    virts:
      web:
        phys: a
        if: tap-web
        mac: 02:00:00:00:0a:01
        ip: [10.0.0.1/24, 2001:db8::1/64]
        stateful: ${v.webStateful ?? true}
        rules:
          - { dir: in, priority: 10, action: accept, proto: tcp, dstPort: 443 }
          - { dir: in, priority: 5, action: drop, ${v.webRule ?? 'srcIp: 10.0.0.128/25'} }
          - { dir: in, priority: 20, action: drop, srcMac: "02:00:00:00:00:00/ff:ff:ff:00:00:00" }
          - { dir: out, priority: 1, action: drop, dstIp: "2001:db8::/64", proto: udp, srcPort: 1000-2000 }
          - { dir: out, priority: 2, action: drop, proto: icmp, icmpType: 13 }
          - { dir: out, priority: 3, action: accept, dstMac: 02:00:00:00:0b:01 }
      db:
        phys: a
        if: tap-db
        mac: 02:00:00:00:0a:02
        ip: 10.0.0.2/24
        policy: { in: drop, out: drop }
        rules:
          - { dir: in, priority: 1, action: accept, srcIp: 10.0.0.1, proto: tcp, dstPort: 5432 }
          - { dir: out, priority: 1, action: accept, proto: icmpv6, icmpType: echo-request }
        ${v.dbRate ?? 'rate: { in: { avg: 20mbit, burst: 32kb }, out: { avg: 10mbit, burst: 16kb, peak: 40mbit } }'}
      nomac: { phys: a, if: tap-nomac, ip: fd00::5/64 }
      open: { phys: a, if: tap-open, mac: 02:00:00:00:0a:04, antiSpoof: false }
      far: { phys: b, if: tap-far, mac: 02:00:00:00:0b:01, ip: 10.0.0.3/24, stateful: true, rate: { in: { avg: 1mbit, burst: 4kb } } }
`;
}

function render(model: Netmodel, phys: string): string {
  const state = compileHost(model, phys, FACTS);
  const plan = planChanges(state, new HostState());
  return [`# desired state of ${phys}`, ...state.sorted().map((o) => JSON.stringify(o)), '', `# ${formatPlan(plan, 'plan from an empty host')}`, ''].join('\n');
}

/** The plan from the compiled state of `from` (as if applied) to `to`, on host a. */
function change(from: Netmodel, to: Netmodel, what: string): string {
  const plan = planChanges(compileHost(to, 'a', FACTS), compileHost(from, 'a', FACTS));
  return `# ${formatPlan(plan, what)}\n`;
}

test('golden: policy on host a (rules, default drop, stateful, anti-spoofing, rates) and b', () => {
  const m = load(policyModel());
  assertGolden('policy-a.txt', render(m, 'a'));
  assertGolden('policy-b.txt', render(m, 'b'));
});

test('golden: policy changes are proportional: one chain, one qdisc, one transaction', () => {
  const m = load(policyModel());
  const out = [
    change(m, load(policyModel({ webRule: 'srcIp: 10.0.0.64/26' })), 'one rule of web changed'),
    change(m, load(policyModel({ webStateful: false })), 'web no longer stateful'),
    change(m, load(policyModel({ dbRate: 'rate: { in: { avg: 30mbit, burst: 32kb }, out: { avg: 10mbit, burst: 16kb, peak: 40mbit } }' })), "db's in rate changed"),
    change(m, load(policyModel({ dbRate: 'rate: { in: { avg: 20mbit, burst: 32kb } }' })), "db's out rate removed"),
    change(m, load(policyModel({ bare: true })), 'every policy removed'),
    change(load(policyModel({ bare: true })), m, 'every policy added to a running host'),
  ];
  assertGolden('policy-changes.txt', out.join('\n'));
});

test('one changed rule: one step, flush + refill of that chain only', () => {
  const m = load(policyModel());
  const plan = planChanges(compileHost(load(policyModel({ webRule: 'srcIp: 10.0.0.64/26' })), 'a', FACTS), compileHost(m, 'a', FACTS));
  const chain = virtChainName('golden', 'blue', 'web', 'in');
  assert.deepEqual(plan.steps.map((s) => [s.action, s.key, s.changes]), [['update', 'nft bridge lsdn_golden', [`chain ${chain} replaced`]]]);
  assert.deepEqual(plan.steps[0]!.commands.map((c) => c.line.split(' {')[0]), [`flush chain bridge lsdn_golden ${chain}`, 'table bridge lsdn_golden']);
});

test('an unchanged model plans nothing', () => {
  const m = load(policyModel());
  for (const p of ['a', 'b']) assert.deepEqual(planChanges(compileHost(m, p, FACTS), compileHost(load(policyModel()), p, FACTS)).steps, []);
});

test('canonical nft lines: set elements sorted, quoted strings kept whole', () => {
  assert.equal(canonicalNftLine('  ip saddr != { 10.0.0.9, 0.0.0.0, 10.0.0.10 } drop '), 'ip saddr != { 0.0.0.0, 10.0.0.10, 10.0.0.9 } drop');
  assert.equal(
    canonicalNftLine('iifname vmap { "b,x" : jump vout-2, "a" : jump vout-1 }'),
    'iifname vmap { "a" : jump vout-1, "b,x" : jump vout-2 }',
  );
  assert.equal(canonicalNftLine('type filter hook forward priority 0; policy accept;'), 'type filter hook forward priority 0; policy accept;');
});

test('rules render as nft prints them', () => {
  const r = (spec: object) => ruleLine({ priority: 1, action: 'drop', ...spec });
  assert.equal(r({ srcIp: '10.0.0.7/24' }), 'ip saddr 10.0.0.0/24 drop');
  assert.equal(r({ dstIp: '2001:DB8::1/128' }), 'ip6 daddr 2001:db8::1 drop');
  assert.equal(r({ srcMac: '02:00:00:00:00:01' }), 'ether saddr 02:00:00:00:00:01 drop');
  assert.equal(r({ dstMac: '02:00:00:AB:00:01/ff:ff:ff:00:00:00' }), 'ether daddr & ff:ff:ff:00:00:00 == 02:00:00:00:00:00 drop');
  assert.equal(r({ proto: 'tcp', srcPort: 5, dstPort: '7-9' }), 'tcp sport 5 tcp dport 7-9 drop');
  assert.equal(r({ proto: 'icmpv6' }), 'meta l4proto ipv6-icmp drop');
  assert.equal(r({ proto: 'icmp', icmpType: 8 }), 'icmp type echo-request drop');
  assert.equal(r({ proto: 'icmp', icmpType: 42 }), 'icmp type 42 drop');
  assert.equal(r({ proto: 'sctp', action: 'accept' }), 'meta l4proto sctp accept');
});

test('tbf read back through tc rounding compares equal; a real change does not', () => {
  const want = tbfQdisc('tap0', { avg: 20 * 1024 * 1024, burst: 32768, peak: 40 * 1024 * 1024 }, 1500);
  // What tc printed for exactly this qdisc (kernel 6.18, iproute2 6.1): burst 32765, minburst 1509, lat 50001 µs, peakrate 41943Kbit.
  const rate = (want.rate ?? 0) / 8;
  const have: QdiscObject = {
    ...want, burst: 32765, mtu: 1509, peakrate: parseTcRate('41943Kbit'),
    limit: tbfLimitFromLatency(50001, rate, 32765, parseTcRate('41943Kbit')! / 8, 1509),
  };
  assert.ok(sameQdisc(have, want), JSON.stringify({ have, want }));
  assert.ok(!sameQdisc({ ...have, rate: (have.rate ?? 0) + 8 }, want), 'the rate is exact');
  assert.ok(!sameQdisc({ ...have, burst: 40000 }, want));
  assert.ok(!sameQdisc({ ...have, peakrate: undefined, mtu: undefined }, want));
  assert.equal(parseTcRate('20Mibit'), 20 * 1024 * 1024);
  assert.equal(parseTcRate('999bit'), 999);
  assert.deepEqual(splitJsonValues('[{"a":"]["}]\n[]\n[1]'), [[{ a: '][' }], [], [1]]);
});

test('the file format: policy, stateful, antiSpoof load and dump back', () => {
  const m = load(`
nets:
  n:
    vid: 1
    virts:
      a: { mac: 02:00:00:00:00:01, policy: drop, stateful: true }
      b: { mac: 02:00:00:00:00:02, policy: { out: drop }, antiSpoof: false }
      c: { mac: 02:00:00:00:00:03 }
settings: { default: { type: vxlan/e2e } }
`);
  const v = (n: string) => m.virt(`n/${n}`)!;
  assert.deepEqual([v('a').policy, v('a').stateful, v('a').antiSpoof], [{ in: 'drop', out: 'drop' }, true, true]);
  assert.deepEqual([v('b').policy, v('b').stateful, v('b').antiSpoof], [{ in: 'accept', out: 'drop' }, false, false]);
  assert.deepEqual([v('c').policy, v('c').stateful, v('c').antiSpoof], [{ in: 'accept', out: 'accept' }, false, true]);
  const y = dumpYaml(m);
  assert.match(y, /a:\n\s+mac: 02:00:00:00:00:01\n\s+policy: drop\n\s+stateful: true\n/);
  assert.match(y, /b:\n\s+mac: 02:00:00:00:00:02\n\s+policy:\n\s+out: drop\n\s+antiSpoof: false\n/);
  assert.match(y, /c:\n\s+mac: 02:00:00:00:00:03\n/);
  const again = load(y);
  assert.deepEqual(dumpYaml(again), y);
});
