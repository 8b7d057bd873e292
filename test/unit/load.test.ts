/** The netmodel file: loading with locations, defaults, located file problems, dumps and round trips. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadModelText } from '../../src/file/load.js';
import { parseVxvdeUrl } from '../../src/types/vxvde.js';
import { dumpJson, dumpLsdnJson, dumpYaml } from '../../src/file/dump.js';
import { validate } from '../../src/validate/validate.js';

const EXAMPLE = readFileSync(new URL('../../examples/cluster.yaml', import.meta.url), 'utf8');

function load(text: string, file = 'm.yaml') {
  return loadModelText(text, file);
}

test('the bundled example loads and validates without problems', () => {
  const { model, problems } = load(EXAMPLE);
  assert.deepEqual(problems, []);
  assert.ok(model);
  assert.deepEqual(validate(model), []);
  assert.equal(model.name, 'demo');
  assert.equal(model.virts().length, 7);
});

test('objects and fields remember file:line:col', () => {
  const { model } = load('nets:\n  blue:\n    vid: 5\n    virts:\n      web: { phys: a, if: t0, mac: "02:00:00:00:00:01" }\nphyses:\n  a: { if: eth0, ip: 192.0.2.1 }\n');
  const web = model!.virt('blue/web')!;
  assert.deepEqual(web.loc, { file: 'm.yaml', line: 5, col: 7 });
  assert.deepEqual(web.locOf('mac'), { file: 'm.yaml', line: 5, col: 36 });
  assert.deepEqual(model!.net('blue')!.locOf('vid'), { file: 'm.yaml', line: 3, col: 10 });
});

test('defaults: a virt on a phys attaches the phys to its net; a numeric net name is its vid; the only settings is the default', () => {
  const { model } = load('settings: { s: { type: vxlan/e2e } }\nnets:\n  "42":\n    virts: { v: { phys: a, if: t0 } }\nphyses:\n  a: { if: eth0, ip: 192.0.2.1 }\n  b: { if: eth0, ip: 192.0.2.2, nets: ["42"] }\n');
  const net = model!.net('42')!;
  assert.equal(net.vid, 42);
  assert.deepEqual([...net.physes].map((p) => p.name).sort(), ['a', 'b']);
  assert.equal(net.effectiveSettings()?.name, 's');
});

test('JSON files use the same schema and are located too', () => {
  const json = JSON.stringify({ nets: { blue: { vid: 'x' } } }, null, 2);
  const { problems } = load(json, 'm.json');
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.code, 'invalid-field');
  assert.deepEqual(problems[0]!.loc, { file: 'm.json', line: 4, col: 14 });
  assert.match(problems[0]!.message, /vid/);
});

test('file problems are all reported at once, located, naming the object', () => {
  const text = [
    'nets:', //                                   1
    '  blue:', //                                 2
    '    vid: ten', //                            3  wrong type
    '    colour: blue', //                        4  unknown field
    '    virts:', //                              5
    '      web: { phys: a, if: t0, rate: { in: { avg: 10parsecs, burst: 1kb } } }', // 6 bad unit
    '  red: { vid: 2, physes: [nowhere] }', //    7  unknown phys
    'physes:', //                                 8
    '  a: { if: eth0, nets: [nonet] }', //        9  unknown net
  ].join('\n');
  const { problems } = load(text);
  const got = problems.map((p) => [p.code, p.object, p.loc?.line, p.loc?.col]);
  assert.deepEqual(got, [
    ['invalid-field', 'net blue', 3, 10],
    ['unknown-field', 'net blue', 4, 5],
    ['rate-invalid', 'virt blue/web', 6, 50],
    ['unknown-phys', 'net red', 7, 27],
    ['unknown-net', 'phys a', 9, 25],
  ]);
  assert.match(problems.find((p) => p.code === 'rate-invalid')!.message, /parsecs/);
});

test('YAML syntax errors and duplicate names are located', () => {
  const syntax = load('nets:\n  blue: { vid: 1\n');
  assert.equal(syntax.model, undefined);
  assert.equal(syntax.problems[0]!.code, 'syntax');
  assert.equal(syntax.problems[0]!.loc?.line, 3, 'the unclosed flow mapping is reported where the file ends');
  const dup = load('nets:\n  blue: { vid: 1 }\n  blue: { vid: 2 }\n');
  assert.equal(dup.problems[0]!.code, 'duplicate-name');
  assert.equal(dup.problems[0]!.loc?.line, 3);
  assert.match(dup.problems[0]!.message, /duplicate name "blue" \(first at line 2\)/);
  // Keys are compared as the names they become: 10 and "10" are one net; flow mappings too.
  const num = load('nets:\n  10: {}\n  "10": {}\n  x: { virts: { v: { mac: "02:00:00:00:00:01", mac: "02:00:00:00:00:02" } } }\n');
  assert.deepEqual(num.problems.map((p) => [p.code, p.loc?.line, p.loc?.col]), [['duplicate-name', 3, 3], ['duplicate-name', 4, 48]]);
  assert.equal(num.model, undefined);
});

test('fields are located in big files too (one walk of the document): the last virt of many', () => {
  const lines = ['nets:', '  x:', '    virts:'];
  for (let i = 0; i < 3000; i++) lines.push(`      v${i}: { mac: "02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}" }`);
  lines.push('      bad: { mac: 1, colour: red }');
  const { problems } = load(lines.join('\n'));
  assert.deepEqual(problems.map((p) => [p.code, p.object, p.loc?.line]).sort(), [['invalid-field', 'virt x/bad', 3004], ['unknown-field', 'virt x/bad', 3004]]);
  assert.equal(problems.find((p) => p.code === 'unknown-field')!.loc?.col, 22);
});

test('vxvde URLs are accepted as settings', () => {
  assert.deepEqual(parseVxvdeUrl('vxvde://234.0.0.1/port=14789'), { type: 'vxvde', mcastIp: '234.0.0.1', port: 14789 });
  assert.deepEqual(parseVxvdeUrl('vxvde:///vni=5/ttl=2/if=eth1'), { type: 'vxvde', vni: 5, ttl: 2, if: 'eth1' });
  assert.match((parseVxvdeUrl('vxvde://g/hashsize=3') as { error: string }).error, /hashsize/);
  const { model } = load('settings: { default: "vxvde://239.1.2.3/port=15000" }\nnets: { lan: { virts: {} } }\n');
  assert.deepEqual(model!.settingsNamed('default')!.options, { port: 15000, mcastIp: '239.1.2.3', ttl: undefined, vni: undefined, iface: undefined });
});

test('rules and rates load with units (1024-based)', () => {
  const { model, problems } = load(
    'nets:\n  n:\n    vid: 1\n    virts:\n      v:\n        rules: [{ dir: in, priority: 10, srcIp: 10.0.0.0/8 }, { dir: out, priority: 5, action: accept, proto: tcp, dstPort: 22 }]\n        rate: { in: { avg: 10mbit, burst: 32kb, peak: 20mbit } }\n',
  );
  assert.deepEqual(problems, []);
  const v = model!.virt('n/v')!;
  assert.equal(v.rules.length, 2);
  assert.equal(v.rules[0]!.spec.action, 'drop', 'drop is the default action');
  assert.deepEqual(v.rates.in!.spec, { avg: 10 * 1024 * 1024, burst: 32 * 1024, peak: 20 * 1024 * 1024 });
});

test('dump yaml/json round-trips: load(dump(m)) dumps identically', () => {
  const text = EXAMPLE.replace('web:   { phys: hv1', 'web:   { rules: [{ dir: in, priority: 3, dstIp: 10.0.0.0/24 }], rate: { out: { avg: 1mbit, burst: 10kb } }, phys: hv1');
  const { model } = load(text);
  const yaml1 = dumpYaml(model!);
  const again = load(yaml1).model!;
  assert.equal(dumpYaml(again), yaml1);
  const json1 = dumpJson(model!);
  assert.equal(dumpJson(load(json1, 'x.json').model!), json1);
  assert.match(yaml1, /avg: 1mbit/);
});

test('dump lsdn-json uses LSDN keys', () => {
  const { model } = load(EXAMPLE);
  const j = JSON.parse(dumpLsdnJson(model!));
  assert.deepEqual(Object.keys(j), ['lsdnName', 'lsdnSettings', 'lsdnPhyses', 'lsdnNets']);
  assert.equal(j.lsdnNets[0].netName, 'tenant-a');
  assert.equal(j.lsdnNets[0].vnetId, 100);
  assert.deepEqual(Object.keys(j.lsdnNets[0].virts[0]).slice(0, 4), ['virtName', 'attrMac', 'phys', 'iface']);
  assert.deepEqual(j.lsdnSettings[1], { settingsName: 'static', settingsType: 'vxlan/static', port: 4790 });
});
