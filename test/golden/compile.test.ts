/**
 * Golden tests of the pure core: the desired state of a host and the plan that builds it from
 * nothing, for every network type (also those this kernel cannot run) and both underlay families.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { compileHost } from '../../src/compile/compile.js';
import { HostState } from '../../src/core/objects.js';
import { planChanges } from '../../src/plan/plan.js';
import { formatPlan } from '../../src/apply/format.js';
import { NETWORK_TYPES } from '../../src/types/registry.js';
import type { Netmodel } from '../../src/model/netmodel.js';
import { assertGolden } from './golden.js';
import { loadValid } from '../helpers/model.js';

function load(text: string): Netmodel {
  return loadValid(text, 'golden.yaml');
}

export function render(model: Netmodel, phys: string): string {
  const state = compileHost(model, phys, { mtu: new Map([['eth0', 1500]]) });
  const lines = state.sorted().map((o) => JSON.stringify(o));
  const plan = planChanges(state, new HostState());
  return [`# desired state of ${phys}`, ...lines, '', `# ${formatPlan(plan, `plan from an empty host`)}`, ...state.warnings.map((w) => `# warning: ${w}`), ''].join('\n');
}

/** Two or three hosts, two nets of one type, static MACs, one virt per host and net. */
function typeModel(type: string, v6 = false): string {
  const ip = (n: number) => (v6 ? `2001:db8::${n}` : `192.0.2.${n}`);
  const settings = type === 'vxlan/mcast' ? `{ type: ${type}, mcastIp: ${v6 ? 'ff05::100' : '239.1.1.1'} }` : `{ type: ${type} }`;
  const direct = type === 'direct';
  // A public net needs an IPv4 subnet with a gateway (the host is the virts' router).
  const subnet = (n: number) => (type === 'public' ? `\n    ipv4: { subnet: 10.${n}.0.0/24, gateway: 10.${n}.0.1 }` : '');
  return `
name: golden
settings:
  default: ${settings}
physes:
  a: { if: eth0, ip: ${ip(1)} }
  b: { if: eth0, ip: ${ip(2)} }
  c: { if: eth0, ip: ${ip(3)} }
nets:
  blue:
    vid: 10${subnet(10)}
    virts:
      a1: { phys: a, if: tap-a1, mac: 02:00:00:00:0a:01 }
      a2: { phys: a, if: tap-a2, mac: 02:00:00:00:0a:02 }
      b1: { phys: b, if: tap-b1, mac: 02:00:00:00:0b:01 }
      c1: { phys: c, if: tap-c1, mac: 02:00:00:00:0c:01 }
${direct ? '' : `  red:
    vid: 20${subnet(20)}
    virts:
      a3: { phys: a, if: tap-a3, mac: 02:00:00:00:0a:01 }
      b2: { phys: b, if: tap-b2, mac: 02:00:00:00:0b:02 }
`}`;
}

for (const type of NETWORK_TYPES) {
  test(`golden: ${type} over IPv4, host a`, () => {
    assertGolden(`type-${type.replace('/', '-')}-v4.txt`, render(load(typeModel(type)), 'a'));
  });
}

for (const type of ['vxlan/e2e', 'vxlan/static', 'geneve'] as const) {
  test(`golden: ${type} over IPv6, host b`, () => {
    assertGolden(`type-${type.replace('/', '-')}-v6.txt`, render(load(typeModel(type, true)), 'b'));
  });
}

test('golden: the bundled example, every host', () => {
  const model = load(readFileSync(new URL('../../examples/cluster.yaml', import.meta.url), 'utf8'));
  for (const phys of model.physes.keys()) assertGolden(`example-${phys}.txt`, render(model, phys));
});

test('compile is deterministic: same model, same state, whatever the order its physes and virts are declared in', () => {
  const text = typeModel('vxlan/static');
  const reordered = text
    .replace(/( {2}a: .*\n)( {2}b: .*\n)( {2}c: .*\n)/, '$3$2$1')
    .replace(/( {6}a1: .*\n)( {6}a2: .*\n)( {6}b1: .*\n)( {6}c1: .*\n)/, '$4$3$2$1');
  // The two models really differ in those orders: of the physes, and of the net's attachments
  // (its virts attach their physes), which is the order of its remotes unless the compiler sorts.
  assert.notEqual(reordered, text);
  const m1 = load(text);
  const m2 = load(reordered);
  assert.deepEqual([...m1.physes.keys()], ['a', 'b', 'c']);
  assert.deepEqual([...m2.physes.keys()], ['c', 'b', 'a']);
  assert.deepEqual([...m1.net('blue')!.physes].map((p) => p.name), ['a', 'b', 'c']);
  assert.deepEqual([...m2.net('blue')!.physes].map((p) => p.name), ['c', 'b', 'a']);
  assert.deepEqual(compileHost(m1, 'a').sorted(), compileHost(m2, 'a').sorted());
  // The whole output (every object, the plan's order, the warnings), byte for byte.
  assert.equal(render(m2, 'a'), render(m1, 'a'));
});

test('interface names are at most 15 characters and stable', () => {
  const m = load(typeModel('geneve'));
  const names = compileHost(m, 'a').sorted().filter((o) => o.kind === 'link').map((o) => (o as { name: string }).name);
  assert.ok(names.length >= 4);
  for (const n of names) assert.ok(n.length <= 15 && n.startsWith('ls'), n);
  assert.deepEqual(names, compileHost(load(typeModel('geneve')), 'a').sorted().filter((o) => o.kind === 'link').map((o) => (o as { name: string }).name));
});

test('vxlan/static: a 40-host net is programmed by FDB entries, not by chained actions', () => {
  const physes = Array.from({ length: 40 }, (_, i) => `  h${i}: { if: eth0, ip: 10.1.${i >> 8}.${(i & 255) + 1} }`).join('\n');
  const virts = Array.from({ length: 40 }, (_, i) => `      v${i}: { phys: h${i}, if: tap0, mac: 02:00:00:00:01:${i.toString(16).padStart(2, '0')} }`).join('\n');
  const m = load(`settings: { default: { type: vxlan/static } }\nphyses:\n${physes}\nnets:\n  big:\n    vid: 7\n    virts:\n${virts}\n`);
  const objs = compileHost(m, 'h0').sorted();
  const flood = objs.filter((o) => o.kind === 'fdb' && o.mac === '00:00:00:00:00:00');
  assert.equal(flood.length, 39, 'one replication entry per remote host');
  const remoteMacs = objs.filter((o) => o.kind === 'fdb' && o.table === 'self' && o.mac !== '00:00:00:00:00:00');
  assert.equal(remoteMacs.length, 39);
});
