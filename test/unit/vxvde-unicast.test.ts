/**
 * vxvde unicast, the pure side: which FDB entries a host gets toward remote lsdn hosts, when the
 * device learns (IPv4: learning, zero UDP checksums, short ageing; IPv6: none of it), the port
 * learning table (one per host, per group port, merged with public's chains in the context's ip
 * table), and how nftables sets are read back and diffed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileHost } from '../../src/compile/compile.js';
import type { FdbObject, LinkObject, NftTableObject } from '../../src/core/objects.js';
import { canonicalNftLine, parseNftTables, planNftTable } from '../../src/kinds/nft.js';
import { VXVDE_AGEING, vxvdePortLearning } from '../../src/types/vxvde.js';
import { validate } from '../../src/validate/validate.js';
import { loadValid } from '../helpers/model.js';

function model(extra = '', ips = ['192.0.2.1', '192.0.2.2', '192.0.2.3']): string {
  return `name: uc
settings:
  vde: "vxvde://239.0.0.1"
  vde2: "vxvde://239.0.0.2/port=15000"${extra}
physes:
  a: { if: eth0, ip: ${ips[0]} }
  b: { if: eth0, ip: ${ips[1]} }
  c: { if: eth0${ips[2] ? `, ip: ${ips[2]}` : ''} }
nets:
  lan:
    settings: vde
    virts:
      v1: { phys: a, if: t1, mac: 02:00:00:00:00:01 }
      v2: { phys: b, if: t2, mac: 02:00:00:00:00:02 }
      v3: { phys: c, if: t3, mac: 02:00:00:00:00:03 }
      v4: { phys: b, if: t4 }
  other:
    vid: 2
    settings: vde2
    virts:
      o1: { phys: a, if: t5, mac: 02:00:00:00:00:05 }
      o2: { phys: b, if: t6, mac: 02:00:00:00:00:06 }
`;
}

const objs = (text: string, phys: string) => compileHost(loadValid(text), phys).sorted();
const vxlans = (o: ReturnType<typeof objs>) => o.filter((x): x is LinkObject => x.kind === 'link' && x.type === 'vxlan');
const selfEntries = (o: ReturnType<typeof objs>) => o.filter((x): x is FdbObject => x.kind === 'fdb' && x.table === 'self');

test('a VXLAN entry per remote lsdn virt with a MAC and a host address (no flooding between lsdn hosts)', () => {
  const o = objs(model('', ['192.0.2.1', '192.0.2.2', '']), 'a');
  // v2 on b: yes; v4 (no MAC): no; v3 on c (no address): no; o2 on b: on its own net's device.
  assert.deepEqual(selfEntries(o).map((e) => `${e.mac} ${e.dst ?? ''}`).sort(), ['02:00:00:00:00:02 192.0.2.2', '02:00:00:00:00:06 192.0.2.2']);
  for (const e of selfEntries(o)) assert.equal(e.port, undefined, 'lsdn hosts listen on the group port');
});

test('over IPv4 the device learns, sends zero UDP checksums and forgets in 30 s; the host gets one port-learning table', () => {
  const o = objs(model(), 'a');
  for (const l of vxlans(o)) {
    assert.equal(l.attrs.learning, true);
    assert.equal(l.attrs.udpcsum, false);
    assert.equal(l.attrs.ageing, VXVDE_AGEING);
    assert.equal(l.attrs.srcport, `${l.attrs.dstport} ${Number(l.attrs.dstport) + 1}`);
  }
  const tables = o.filter((x): x is NftTableObject => x.kind === 'nft' && x.family === 'ip');
  assert.equal(tables.length, 1);
  assert.deepEqual(tables[0], vxvdePortLearning('uc', [14789, 15000]));
  assert.deepEqual(Object.keys(tables[0]!.sets ?? {}).sort(), ['map vxvde-ports-14789', 'map vxvde-ports-15000', 'set vxvde-seen-14789', 'set vxvde-seen-15000']);
  // Each port's datagrams from another port teach, the device's own unicast is rewritten.
  const inLines = tables[0]!.chains['vxvde-in'] ?? [];
  assert.ok(inLines.includes('udp dport 15000 udp sport != 15000 @th,64,8 0x8 jump vxvde-learn-15000'), inLines.join('\n'));
  assert.deepEqual(tables[0]!.chains['vxvde-rewrite'], [
    '@th,0,32 0x39c539c5 th dport set ip daddr . @th,96,24 . @th,128,48 map @vxvde-ports-14789',
    '@th,0,32 0x3a983a98 th dport set ip daddr . @th,96,24 . @th,128,48 map @vxvde-ports-15000',
  ]);
});

test('over IPv6 nothing learns and no table is made, and validation says why', () => {
  const text = model('', ['2001:db8::1', '2001:db8::2', '2001:db8::3'])
    .replace('"vxvde://239.0.0.1"', '"vxvde://[ff05:56de::1]"').replace('"vxvde://239.0.0.2/port=15000"', '"vxvde://[ff05:56de::2]/port=15000"');
  const o = objs(text, 'a');
  for (const l of vxlans(o)) {
    assert.equal(l.attrs.learning, false);
    assert.equal('udpcsum' in l.attrs, false);
    assert.equal('ageing' in l.attrs, false);
  }
  assert.equal(o.some((x) => x.kind === 'nft' && x.family === 'ip'), false);
  assert.deepEqual(selfEntries(o).map((e) => e.dst).sort(), ['2001:db8::2', '2001:db8::2', '2001:db8::3']);
  const warnings = validate(loadValid(text)).filter((p) => p.code === 'vxvde-ipv6-unicast');
  assert.deepEqual(warnings.map((w) => w.object), ['net lan', 'net other']);
  assert.match(warnings[0]!.message, /IPv6 forbids/);
  assert.equal(validate(loadValid(model())).some((p) => p.code === 'vxvde-ipv6-unicast'), false);
});

test("a host with public and vxvde nets has one ip table holding both types' chains", () => {
  const text = model(`
  pub: { type: public }`) + `  world:
    settings: pub
    ipv4: { subnet: 198.51.100.0/24, gateway: 198.51.100.1 }
    virts:
      p1: { phys: a, if: t7, mac: 02:00:00:00:00:07, ip: 198.51.100.10/24 }
`;
  const tables = objs(text, 'a').filter((x): x is NftTableObject => x.kind === 'nft' && x.family === 'ip');
  assert.equal(tables.length, 1);
  assert.deepEqual(Object.keys(tables[0]!.chains).sort(), ['forward', 'postrouting', 'vxvde-in', 'vxvde-learn-14789', 'vxvde-learn-15000', 'vxvde-out', 'vxvde-rewrite']);
  assert.equal(Object.keys(tables[0]!.sets ?? {}).length, 4);
});

test('nft sets: read back without their elements; a changed declaration makes the table anew, the same one plans nothing', () => {
  const want = vxvdePortLearning('uc', [14789]);
  const listing = [
    'table ip lsdn_uc {',
    ...Object.entries(want.sets ?? {}).flatMap(([k, lines]) => [
      `\t${k} {`, ...lines.map((l) => `\t\t${l}`),
      '\t\telements = { 192.0.2.9 . 0x1 . 0x20000000009 timeout 1m expires 52s : 40001,',
      '\t\t\t     192.0.2.8 . 0x1 . 0x20000000008 timeout 1m expires 41s : 40002 }',
      '\t}',
    ]),
    ...Object.entries(want.chains).flatMap(([c, lines]) => [`\tchain ${c} {`, ...lines.map((l) => `\t\t${l}`), '\t}']),
    '}',
  ].join('\n');
  const [have] = parseNftTables(listing, () => true);
  assert.deepEqual(have, want);
  assert.equal(planNftTable(want, have), undefined);
  const other = vxvdePortLearning('uc', [14789, 15000]);
  const plan = planNftTable(other, have);
  assert.equal(plan?.action, 'recreate');
  assert.deepEqual(plan?.changes, ['map vxvde-ports-15000 added', 'set vxvde-seen-15000 added']);
  assert.equal(plan?.commands[0]?.line, 'delete table ip lsdn_uc');
  assert.equal(plan?.commands[1]?.line, 'add table ip lsdn_uc');
  // Sets before the chains that refer to them.
  const firstChain = plan!.commands.findIndex((c) => c.line.includes(' chain '));
  const lastSet = plan!.commands.map((c) => /\{ (set|map) /.test(c.line)).lastIndexOf(true);
  assert.ok(lastSet > 0 && lastSet < firstChain);
});

test('canonical nft lines sort the elements of anonymous sets, not the commas of raw payload expressions', () => {
  assert.equal(canonicalNftLine('ip saddr { 10.0.0.2, 10.0.0.1 } drop'), 'ip saddr { 10.0.0.1, 10.0.0.2 } drop');
  const learn = 'update @s { ip saddr . @th,96,24 . @th,176,48 : udp sport }';
  assert.equal(canonicalNftLine(learn), learn);
});
