/** Address serving and public nets: validation codes and the pure pieces (names, dnsmasq config, header). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModelText } from '../../src/file/load.js';
import { Netmodel } from '../../src/model/netmodel.js';
import { validate } from '../../src/validate/validate.js';
import { compileHost } from '../../src/compile/compile.js';
import { isServerNsName, serverHostTag, serverNsName } from '../../src/core/names.js';
import { parseHeader } from '../../src/kinds/dhcp.js';
import { planServer } from '../../src/kinds/dhcp.js';
import type { DhcpObject } from '../../src/core/objects.js';

function problems(text: string, opts: Parameters<typeof validate>[1] = {}) {
  const { model, problems: p } = loadModelText(text, 'serving.yaml');
  assert.ok(model, JSON.stringify(p));
  return [...p, ...validate(model, opts)];
}

const codes = (ps: { code: string }[]) => ps.map((p) => p.code);

const base = (net: string, settings = '{ type: public }') => `
name: v
settings:
  default: { type: vxlan/e2e }
  pub: ${settings}
physes:
  a: { if: eth0, ip: 192.0.2.1 }
nets:
${net}
`;

test('public-subnet-missing: a public net without an ipv4 subnet or gateway', () => {
  const ps = problems(base('  www: { settings: pub, virts: { w: { phys: a, if: t1, mac: 02:00:00:00:00:01 } } }'));
  const p = ps.find((x) => x.code === 'public-subnet-missing');
  assert.ok(p, JSON.stringify(ps));
  assert.equal(p.severity, 'error');
  assert.equal(p.object, 'net www');
  assert.equal(p.loc?.line, 9);
  const noGw = problems(base('  www: { settings: pub, ipv4: { subnet: 10.0.0.0/24 } }'));
  assert.ok(codes(noGw).includes('public-subnet-missing'));
  const ok = problems(base('  www: { settings: pub, ipv4: { subnet: 10.0.0.0/24, gateway: 10.0.0.1 } }'));
  assert.ok(!codes(ok).some((c) => c.startsWith('public-')), JSON.stringify(ok));
});

test('public-mode-invalid and public-uplink-invalid (builder API: the file schema refuses them earlier)', () => {
  const m = new Netmodel('v');
  const s = m.addSettings('public', { name: 'pub', mode: 'bridged' as never, uplink: 'way too long name' });
  const n = m.addNet('www', { settings: s });
  n.setSubnet(4, { prefix: '10.0.0.0/24', gateway: '10.0.0.1' });
  n.attach(m.addPhys('a', { if: 'eth0', ip: '192.0.2.1' }));
  const ps = validate(m);
  assert.ok(codes(ps).includes('public-mode-invalid'), JSON.stringify(ps));
  assert.ok(codes(ps).includes('public-uplink-invalid'), JSON.stringify(ps));
  const file = problems(base('  www: { settings: pub, ipv4: { subnet: 10.0.0.0/24, gateway: 10.0.0.1 } }', '{ type: public, mode: bridged }'));
  assert.ok(file.some((p) => p.severity === 'error'), 'the schema takes only nat|routed');
});

test('public-uplink-missing: the uplink is not on this host (apply), public-uplink-unknown: no interface at all', () => {
  const text = base('  www: { settings: pub, ipv4: { subnet: 10.0.0.0/24, gateway: 10.0.0.1 }, virts: { w: { phys: a, if: t1, mac: 02:00:00:00:00:01 } } }', '{ type: public, uplink: wan0 }');
  const ps = problems(text, { physes: ['a'], host: { interfaces: new Set(['eth0', 't1']) } });
  const p = ps.find((x) => x.code === 'public-uplink-missing');
  assert.ok(p, JSON.stringify(ps));
  assert.match(p.message, /uplink wan0 of phys a does not exist on this host/);
  assert.ok(!codes(problems(text, { physes: ['a'], host: { interfaces: new Set(['eth0', 'wan0', 't1']) } })).includes('public-uplink-missing'));
  const m = new Netmodel('v');
  const s = m.addSettings('public', { name: 'pub' });
  const n = m.addNet('www', { settings: s });
  n.setSubnet(4, { prefix: '10.0.0.0/24', gateway: '10.0.0.1' });
  n.attach(m.addPhys('a', { ip: '192.0.2.1' }));
  assert.ok(codes(validate(m)).includes('public-uplink-unknown'));
});

test('settings-option-unused: mode/uplink on another type', () => {
  const ps = problems(base('  n: { vid: 1 }', '{ type: vxlan/e2e, mode: nat }'));
  assert.ok(ps.some((p) => p.code === 'settings-option-unused' && /mode/.test(p.message)), JSON.stringify(ps));
});

test('dhcp-virt-no-mac: a virt of a net serving DHCPv4 without a MAC', () => {
  const ps = problems(base('  n: { vid: 1, ipv4: { subnet: 10.0.0.0/24 }, virts: { v: { phys: a, if: t1 } } }'));
  const p = ps.find((x) => x.code === 'dhcp-virt-no-mac');
  assert.ok(p, JSON.stringify(ps));
  assert.equal(p.severity, 'warning');
  assert.equal(p.object, 'virt n/v');
  const off = problems(base('  n: { vid: 1, ipv4: { subnet: 10.0.0.0/24, dhcp: false }, virts: { v: { phys: a, if: t1 } } }'));
  assert.ok(!codes(off).includes('dhcp-virt-no-mac'));
});

test('server namespaces: per host tag and (context, net); a lab phys namespace keeps the lab prefix', () => {
  const a = serverNsName('lt1-p-a', 'ctx', 'blue');
  assert.match(a, /^lt1-p-a-d[0-9a-f]{8}$/);
  assert.notEqual(a, serverNsName('lt1-p-a', 'ctx', 'red'));
  assert.notEqual(a, serverNsName('lt1-p-a', 'other', 'blue'));
  assert.equal(serverHostTag(undefined, 'ctx'), 'lsdn-ctx');
  assert.equal(serverHostTag('lt1-p-a', 'ctx'), 'lt1-p-a');
  assert.ok(isServerNsName(a, 'lt1-p-a'));
  assert.ok(!isServerNsName('lt1-p-a-dzz', 'lt1-p-a'));
});

test('servers: only nets with a served subnet and a local virt get one; only local virts are in its hosts file', () => {
  const { model } = loadModelText(base(`  n:
    vid: 1
    ipv4: { subnet: 10.0.0.0/24, gateway: 10.0.0.1 }
    virts:
      v1: { phys: a, if: t1, mac: 02:00:00:00:00:01, ip: 10.0.0.5/24 }
      v2: { phys: b, if: t2, mac: 02:00:00:00:00:02 }
  m: { vid: 2, ipv4: { subnet: 10.0.0.0/24, dhcp: false }, virts: { x: { phys: a, if: t3, mac: 02:00:00:00:00:03 } } }
  e: { vid: 3, ipv4: { subnet: 10.0.0.0/24 } }`).replace('physes:\n', 'physes:\n  b: { if: eth0, ip: 192.0.2.2 }\n'), 's.yaml');
  assert.ok(model);
  const servers = compileHost(model, 'a').sorted().filter((o): o is DhcpObject => o.kind === 'dhcp');
  assert.equal(servers.length, 1);
  const s = servers[0]!;
  assert.equal(s.hosts, '02:00:00:00:00:01,10.0.0.5\n');
  assert.deepEqual(s.addresses, ['10.0.0.254/24']);
  assert.deepEqual(parseHeader(s.config), { host: 'lsdn-v', alias: s.alias, port: s.port, bridge: s.bridge, addresses: s.addresses });
  assert.match(s.config, /^dhcp-range=10\.0\.0\.0,static,255\.255\.255\.0,1h$/m);
  assert.match(s.config, /^dhcp-option=option:router,10\.0\.0\.1$/m);
  assert.doesNotMatch(s.config, /enable-ra/);
  // No gateway: dnsmasq must announce no router at all (it would announce itself).
  const noGw = compileHost(loadModelText(base('  n: { vid: 1, ipv4: { subnet: 10.0.0.0/24 }, virts: { v: { phys: a, if: t1, mac: 02:00:00:00:00:01 } } }'), 's.yaml').model!, 'a')
    .sorted().find((o): o is DhcpObject => o.kind === 'dhcp')!;
  assert.match(noGw.config, /^dhcp-option=option:router$/m);
  assert.equal(planServer(s, s), undefined);
  assert.equal(planServer(s, { ...s, mtu: 1400 })?.action, 'recreate');
  assert.equal(planServer(s, { ...s, running: false })?.action, 'update');
});
