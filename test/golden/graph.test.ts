/**
 * Golden DOT of `lsdn graph` for the bundled example (src/trace/graph.ts): the hosts, nets,
 * virts and tunnels it draws; review the picture (`dot -Tpng`) before UPDATE_GOLDEN=1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { graphDot, graphModel } from '../../src/trace/graph.js';
import { assertGolden } from './golden.js';
import { loadValid } from '../helpers/model.js';

const EXAMPLE = readFileSync(new URL('../../examples/cluster.yaml', import.meta.url), 'utf8');

test('golden: graph of the bundled example (DOT), whole and for one phys', () => {
  const model = loadValid(EXAMPLE, 'cluster.yaml');
  const dot = graphDot(graphModel(model));
  assert.equal(dot, graphDot(graphModel(loadValid(EXAMPLE, 'cluster.yaml'))), 'deterministic');
  assertGolden('graph-cluster.dot', dot);
  assertGolden('graph-cluster-hv2.dot', graphDot(graphModel(model, 'hv2')));
});

test('graph: one tunnel edge per host pair per net, labelled with type and VNI', () => {
  const g = graphModel(loadValid(EXAMPLE, 'cluster.yaml'));
  assert.deepEqual(g.tunnels.map((t) => `${t.net} ${t.a}-${t.b} ${t.label}`), [
    'tenant-a hv1-hv2 vxlan/e2e VNI 100', 'tenant-a hv1-hv3 vxlan/e2e VNI 100', 'tenant-a hv2-hv3 vxlan/e2e VNI 100',
    'tenant-b hv1-hv2 vxlan/static VNI 200', 'tenant-b hv1-hv3 vxlan/static VNI 200', 'tenant-b hv2-hv3 vxlan/static VNI 200',
  ]);
  const hv2 = graphModel(loadValid(EXAMPLE, 'cluster.yaml'), 'hv2');
  assert.ok(hv2.tunnels.every((t) => t.a === 'hv2' || t.b === 'hv2'));
  assert.equal(hv2.tunnels.length, 4);
});

function big(hosts: number, perHost: number): string {
  const physes = Array.from({ length: hosts }, (_, i) => `  h${i}: { if: eth0, ip: 192.0.2.${i + 1} }`).join('\n');
  const virts = Array.from({ length: hosts * perHost }, (_, k) => `      v${k}: { phys: h${Math.floor(k / perHost)}, if: t${k}, mac: 02:00:00:00:${(k >> 8).toString(16).padStart(2, '0')}:${(k & 255).toString(16).padStart(2, '0')} }`).join('\n');
  return `name: big\nsettings:\n  default: { type: vxlan/e2e }\n  pub: { type: public, uplink: eth0 }\nphyses:\n${physes}\nnets:\n  n:\n    vid: 7\n    virts:\n${virts}\n  out:\n    settings: pub\n    ipv4: { subnet: 10.9.0.0/24, gateway: 10.9.0.1 }\n    virts:\n      o1: { phys: h0, if: o1, mac: 02:00:00:01:00:01 }\n`;
}

test('graph: 40 hosts draw one node per host and one hub per net, not 780 edges; public uplinks reach "outside"', () => {
  const dot = graphDot(graphModel(loadValid(big(40, 3))));
  assert.equal((dot.match(/ -- "hub:n"/g) ?? []).length, 40);
  assert.match(dot, /n: 3 virts/);
  assert.match(dot, /"phys:h0" -- "outside"/);
  assert.doesNotMatch(dot, /"phys:h\d+" -- "phys:h\d+"/);
});

test('graph: a few hosts with many virts of a net collapse them into "N virts"', () => {
  const dot = graphDot(graphModel(loadValid(big(2, 9))));
  assert.match(dot, /"virts:n@h0" \[label="n: 9 virts"/);
  assert.doesNotMatch(dot, /"virt:n\/v0"/);
  assert.match(dot, /"phys:h0" -- "phys:h1" \[label="n: vxlan\/e2e VNI 7"/);
  assert.match(dot, /"uplink:out@h0" \[label="out gateway\\nnat via eth0"/);
});
