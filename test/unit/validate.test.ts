import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netmodel, type RuleSpec } from '../../src/model/netmodel.js';
import type { SourceLoc } from '../../src/core/location.js';
import { validate, hasErrors, type ValidateOptions } from '../../src/validate/validate.js';
import { formatProblem, type Problem } from '../../src/core/problem.js';

const L = (line: number, col = 1): SourceLoc => ({ file: 'm.yaml', line, col });

/** A valid two-host vxlan/e2e model: phys a and b, net blue (vid 10) with virt w1 on a and w2 on b. */
function base() {
  const m = new Netmodel('lab').setLoc(L(1), { name: L(1, 7) });
  const s = m.addSettings('vxlan/e2e').setLoc(L(2), { type: L(2, 7) });
  const a = m.addPhys('a', { if: 'eth0', ip: '192.0.2.1' }).setLoc(L(3), { if: L(3, 10), ip: L(3, 20), mtu: L(3, 30), name: L(3, 5) });
  const b = m.addPhys('b', { if: 'eth0', ip: '192.0.2.2' }).setLoc(L(4), { if: L(4, 10), ip: L(4, 20), mtu: L(4, 30) });
  const blue = m.addNet('blue', { vid: 10 }).setLoc(L(5), { vid: L(5, 10), mtu: L(5, 20), settings: L(5, 30) }).attach(a).attach(b);
  const w1 = blue
    .virt('w1', { mac: '02:00:00:00:00:01', phys: a, if: 'tap0' })
    .setLoc(L(6), { mac: L(6, 10), if: L(6, 20), phys: L(6, 30), ips: L(6, 40), mtu: L(6, 50) });
  const w2 = blue
    .virt('w2', { mac: '02:00:00:00:00:02', phys: b, if: 'tap0' })
    .setLoc(L(7), { mac: L(7, 10), if: L(7, 20), phys: L(7, 30), ips: L(7, 40), mtu: L(7, 50) });
  return { m, s, a, b, blue, w1, w2 };
}

interface Expect {
  code: string;
  object: string;
  loc?: SourceLoc;
  /** Text the message must contain (the offending value). */
  mentions: string | string[];
  severity?: 'error' | 'warning';
  /** The exact codes of every problem, when more than the one checked. */
  codes?: string[];
}

/** Validate and check that the problems are exactly `codes` (default: [code]) and describe the one with `code`. */
function expectProblem(m: Netmodel, e: Expect, opts?: ValidateOptions): Problem {
  const problems = validate(m, opts);
  assert.deepEqual(problems.map((p) => p.code), e.codes ?? [e.code], JSON.stringify(problems, null, 1));
  const p = problems.find((x) => x.code === e.code);
  assert.ok(p);
  assert.equal(p.severity, e.severity ?? 'error');
  assert.equal(p.object, e.object);
  assert.deepEqual(p.loc, e.loc);
  for (const s of [e.mentions].flat()) assert.ok(p.message.includes(s), `message ${JSON.stringify(p.message)} lacks ${JSON.stringify(s)}`);
  return p;
}

function ruleOn(spec: RuleSpec, line = 20, fields: Record<string, SourceLoc> = {}) {
  const b = base();
  b.w1.rule('in', spec).setLoc(L(line), fields);
  return b;
}

// --- whole models --------------------------------------------------------------------------------

test('the base model is valid', () => {
  assert.deepEqual(validate(base().m), []);
});

test('a valid multi-host model of several types has no problems', () => {
  const m = new Netmodel('cluster');
  m.addSettings('vxlan/mcast', { name: 'mc', mcastIp: '239.1.1.1', ttl: 8 });
  m.addSettings('vxlan/static', { name: 'st', port: 4790 });
  m.addSettings('vxlan/e2e', { name: 'e2e' });
  m.addSettings('geneve', { name: 'gv' });
  m.addSettings('geneve/e2e', { name: 'gve', port: 6082 });
  m.addSettings('vlan', { name: 'vl' });
  m.addSettings('direct', { name: 'dr' });
  m.addSettings('vxvde', { name: 'vde', vni: 7 });
  const a = m.addPhys('a', { if: 'eth0', ip: '10.0.0.1', mtu: 9000 });
  const b = m.addPhys('b', { if: 'eth0', ip: '10.0.0.2' });
  const c = m.addPhys('c', { if: 'eth1', ip: '10.0.0.3' });
  const nets = [
    m.addNet('mc', { vid: 1, settings: 'mc' }),
    m.addNet('st', { vid: 1, settings: 'st' }),
    m.addNet('e2e', { vid: 2, settings: 'e2e' }),
    m.addNet('gv', { vid: 1, settings: 'gv' }),
    m.addNet('gve', { vid: 1, settings: 'gve' }),
    m.addNet('vl', { vid: 1, settings: 'vl' }),
    m.addNet('vde', { settings: 'vde' }),
  ];
  for (const n of nets) n.attach(a).attach(b);
  m.addNet('dr', { settings: 'dr' }).attach(c);
  let i = 0;
  for (const n of [...nets, m.net('dr')!]) {
    for (const p of n.physes) {
      i++;
      const mac = `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`;
      n.virt(`v${i}`, { mac, phys: p, if: `tap${i}`, ips: [`172.16.0.${i}/24`, `fd00::${i}/64`] });
    }
  }
  const v1 = m.virt('mc/v1')!;
  v1.rule('in', { priority: 10, action: 'drop', srcIp: '172.16.0.0/24' });
  v1.rule('in', { priority: 10, action: 'drop', srcIp: '172.16.1.0/24' });
  v1.rule('out', { priority: 5, action: 'accept', proto: 'tcp', dstPort: '1000-2000', srcMac: '02:00:00:00:00:00/ff:ff:ff:00:00:00' });
  v1.rule('out', { priority: 6, action: 'drop', proto: 'icmpv6', icmpType: 'echo-request', dstIp: 'fd00::/64' });
  v1.rate('in', { avg: 1_000_000, burst: 32_768, peak: 2_000_000 });
  v1.rate('out', { avg: 500_000, burst: 16_384 });
  v1.mtu = 1450;
  assert.deepEqual(validate(m), []);
  const onA = m.virts().filter((v) => v.phys === a).map((v) => v.if!);
  assert.equal(onA.length, nets.length);
  const host = { interfaces: new Set(['eth0', ...onA]), mtu: new Map([['eth0', 1500]]) };
  assert.deepEqual(validate(m, { physes: ['a'], host }), []);
  assert.equal(hasErrors(validate(m)), false);
});

test('many problems are all reported at once, in declaration order, deterministically', () => {
  const build = () => {
    const { m, a, b, blue, w1, w2 } = base();
    m.addSettings('vxlan/mcast', { name: 'mc' }); // settings-mcast-missing
    blue.vid = 0; // net-vid-invalid
    a.ip = '192.0.2.2'; // duplicate of b? a comes first, so b is the duplicate
    b.if = undefined; // phys-if-missing
    w1.mac = 'nope'; // virt-mac-invalid
    w2.mac = 'nope'; // invalid too (no duplicate of an invalid MAC)
    w1.rule('in', { priority: 99999, action: 'drop' }); // rule-priority-invalid
    w2.rate('out', { avg: 0, burst: 0 }); // rate-avg-invalid, rate-burst-invalid
    m.addNet('red', { settings: 'nope' }); // net-settings-unknown, net-no-physes
    return m;
  };
  const problems = validate(build());
  assert.deepEqual(problems.map((p) => `${p.object}: ${p.code}`), [
    'settings mc: settings-mcast-missing',
    'net blue: net-vid-invalid',
    'net red: net-settings-unknown',
    'net red: net-no-physes',
    'phys b: phys-if-missing',
    'phys b: phys-ip-duplicate',
    'virt blue/w1: virt-mac-invalid',
    'rule in 99999 of virt blue/w1: rule-priority-invalid',
    'virt blue/w2: virt-mac-invalid',
    'rate out of virt blue/w2: rate-avg-invalid',
    'rate out of virt blue/w2: rate-burst-invalid',
  ]);
  assert.deepEqual(validate(build()), problems);
  assert.equal(hasErrors(problems), true);
});

test('formatProblem: with and without a location', () => {
  assert.equal(
    formatProblem({ code: 'virt-mac-invalid', severity: 'error', object: 'virt blue/w1', message: 'MAC "x" is malformed', loc: L(6, 10) }),
    'm.yaml:6:10: error: virt blue/w1: MAC "x" is malformed',
  );
  assert.equal(
    formatProblem({ code: 'net-no-physes', severity: 'warning', object: 'net red', message: 'attached to no phys' }),
    'warning: net red: attached to no phys',
  );
});

test('hasErrors ignores warnings', () => {
  assert.equal(hasErrors([{ code: 'x', severity: 'warning', object: 'net a', message: '' }]), false);
  assert.equal(hasErrors([]), false);
});

// --- scope and context ---------------------------------------------------------------------------

test('scope-phys-unknown', () => {
  expectProblem(base().m, { code: 'scope-phys-unknown', object: 'phys zz', mentions: '"zz"' }, { physes: ['a', 'zz'] });
});

test('context-name-invalid', () => {
  const { m } = base();
  m.name = 'bad name';
  expectProblem(m, { code: 'context-name-invalid', object: 'context bad name', loc: L(1, 7), mentions: '"bad name"' });
  m.name = 'x'.repeat(33);
  expectProblem(m, { code: 'context-name-invalid', object: `context ${'x'.repeat(33)}`, loc: L(1, 7), mentions: 'x'.repeat(33) });
});

test('name-invalid', () => {
  const { m, blue } = base();
  m.addPhys('c:d').setLoc(L(9), { name: L(9, 3) }).attach(blue).configure({ if: 'eth0', ip: '192.0.2.3' });
  expectProblem(m, { code: 'name-invalid', object: 'phys c:d', loc: L(9, 3), mentions: '"c:d"' });
});

// --- settings ------------------------------------------------------------------------------------

test('settings-type-unknown', () => {
  const { m, s } = base();
  (s as { type: string }).type = 'vxlan/foo';
  expectProblem(m, { code: 'settings-type-unknown', object: 'settings default', loc: L(2, 7), mentions: '"vxlan/foo"' });
});

test('settings-port-invalid', () => {
  const { m, s } = base();
  s.options.port = 70000;
  s.setLoc(undefined, { port: L(2, 20) });
  expectProblem(m, { code: 'settings-port-invalid', object: 'settings default', loc: L(2, 20), mentions: '70000' });
});

test('settings-option-unused (warning)', () => {
  const { m, s } = base();
  s.options.mcastIp = '239.0.0.5';
  s.setLoc(undefined, { mcastIp: L(2, 30) });
  expectProblem(m, { code: 'settings-option-unused', severity: 'warning', object: 'settings default', loc: L(2, 30), mentions: ['239.0.0.5', 'vxlan/e2e'] });
});

test('settings-mcast-missing', () => {
  const { m, s } = base();
  s.type = 'vxlan/mcast';
  expectProblem(m, { code: 'settings-mcast-missing', object: 'settings default', loc: L(2), mentions: 'mcastIp' });
});

test('settings-mcast-invalid: not multicast, not an address, also for vxvde', () => {
  const { m, s } = base();
  s.type = 'vxlan/mcast';
  s.options.mcastIp = '10.1.1.1';
  s.setLoc(undefined, { mcastIp: L(2, 30) });
  expectProblem(m, { code: 'settings-mcast-invalid', object: 'settings default', loc: L(2, 30), mentions: ['"10.1.1.1"', 'multicast'] });
  s.options.mcastIp = '239.1';
  expectProblem(m, { code: 'settings-mcast-invalid', object: 'settings default', loc: L(2, 30), mentions: '"239.1"' });
  s.type = 'vxvde';
  s.options.mcastIp = '192.0.2.99';
  expectProblem(m, { code: 'settings-mcast-invalid', object: 'settings default', loc: L(2, 30), mentions: '"192.0.2.99"' });
});

test('settings-ttl-invalid', () => {
  const { m, s } = base();
  s.type = 'vxlan/mcast';
  s.options = { mcastIp: '239.1.1.1', ttl: 256 };
  s.setLoc(undefined, { ttl: L(2, 40) });
  expectProblem(m, { code: 'settings-ttl-invalid', object: 'settings default', loc: L(2, 40), mentions: '256' });
});

test('settings-vni-invalid', () => {
  const { m, s } = base();
  s.type = 'vxvde';
  s.options.vni = 16777216;
  s.setLoc(undefined, { vni: L(2, 50) });
  expectProblem(m, { code: 'settings-vni-invalid', object: 'settings default', loc: L(2, 50), mentions: '16777216' });
});

test('settings-iface-invalid', () => {
  const { m, s } = base();
  s.type = 'vxvde';
  s.options.iface = 'a-very-long-interface';
  s.setLoc(undefined, { iface: L(2, 60) });
  expectProblem(m, { code: 'settings-iface-invalid', object: 'settings default', loc: L(2, 60), mentions: '"a-very-long-interface"' });
});

// --- nets ----------------------------------------------------------------------------------------

test('net-settings-unknown (never defined, or removed)', () => {
  const { m, blue } = base();
  blue.setSettings('fast');
  expectProblem(m, { code: 'net-settings-unknown', object: 'net blue', loc: L(5, 30), mentions: ['"fast"', 'not defined'] });
  const f = m.addSettings('vxlan/e2e', { name: 'fast' });
  assert.deepEqual(validate(m), []);
  f.remove();
  // Removing settings leaves the net with the name only, exactly as if it had never been defined.
  expectProblem(m, { code: 'net-settings-unknown', object: 'net blue', loc: L(5, 30), mentions: ['"fast"', 'not defined'] });
});

test('net-settings-missing', () => {
  const { m } = base();
  m.addSettings('vlan', { name: 'vl' });
  m.addSettings('geneve', { name: 'gv' });
  m.settings.delete('default');
  expectProblem(m, { code: 'net-settings-missing', object: 'net blue', loc: L(5, 30), mentions: ['"vl"', '"gv"'] });
});

test('net-vid-missing', () => {
  const { m, blue } = base();
  blue.vid = undefined;
  expectProblem(m, { code: 'net-vid-missing', object: 'net blue', loc: L(5, 10), mentions: 'vxlan/e2e' });
});

test('net-vid-invalid: vlan 1..4094', () => {
  const { m, s, blue } = base();
  s.type = 'vlan';
  blue.vid = 4095;
  expectProblem(m, { code: 'net-vid-invalid', object: 'net blue', loc: L(5, 10), mentions: ['4095', '1..4094'] });
  s.type = 'geneve';
  blue.vid = 16777216;
  expectProblem(m, { code: 'net-vid-invalid', object: 'net blue', loc: L(5, 10), mentions: ['16777216', '1..16777215'] });
});

test('net-id-duplicate: same family, same port, same id; different port or family is fine', () => {
  const { m, a, b } = base();
  m.addSettings('vxlan/static', { name: 'st' });
  m.addNet('red', { vid: 10, settings: 'st' }).setLoc(L(8), { vid: L(8, 10) }).attach(a);
  // vxlan/static and vxlan/e2e also clash on port 4789 on phys a: expected too.
  const p = expectProblem(m, {
    code: 'net-id-duplicate', object: 'net red', loc: L(8, 10), mentions: ['10', '"blue"', '4789'],
    codes: ['net-id-duplicate', 'port-learning-clash'],
  });
  assert.match(p.message, /vxlan/);
  m.settings.get('st')!.options.port = 4790;
  assert.deepEqual(validate(m), []);
  // geneve: another family on its own port: fine.
  m.settings.get('st')!.type = 'geneve';
  m.settings.get('st')!.options.port = undefined;
  m.net('red')!.attach(b);
  m.virt('blue/w1')!.mac = '02:00:00:00:00:01';
  assert.deepEqual(validate(m).map((x) => x.code), []);
});

test('net-id-duplicate: two vlan nets with one vid; vxvde nets with the default vni', () => {
  const { m, s, a, b, blue } = base();
  s.type = 'vlan';
  m.addNet('red', { vid: 10 }).setLoc(L(8), { vid: L(8, 10) }).attach(a).attach(b);
  expectProblem(m, { code: 'net-id-duplicate', object: 'net red', loc: L(8, 10), mentions: ['10', '"blue"'] });
  s.type = 'vxvde';
  blue.vid = undefined;
  m.net('red')!.vid = undefined;
  expectProblem(m, { code: 'net-id-duplicate', object: 'net red', loc: L(8, 10), mentions: ['id 1', 'vni', '14789'] });
});

test('net-mtu-invalid', () => {
  const { m, blue } = base();
  blue.mtu = 67;
  expectProblem(m, { code: 'net-mtu-invalid', object: 'net blue', loc: L(5, 20), mentions: '67' });
});

test('net-no-physes (warning)', () => {
  const { m } = base();
  m.addNet('red', { vid: 11 }).setLoc(L(8));
  expectProblem(m, { code: 'net-no-physes', severity: 'warning', object: 'net red', loc: L(8), mentions: '"red"' });
});

test('net-mixed-ip-family', () => {
  const { m, b } = base();
  b.ip = '2001:db8::2';
  expectProblem(m, { code: 'net-mixed-ip-family', object: 'net blue', loc: L(5), mentions: ['192.0.2.1', '2001:db8::2'] });
});

test('net-mcast-family', () => {
  const { m, s } = base();
  s.type = 'vxlan/mcast';
  s.options.mcastIp = 'ff05::1';
  expectProblem(m, { code: 'net-mcast-family', object: 'net blue', loc: L(5, 30), mentions: ['ff05::1', '192.0.2.1'] });
});

test('mtu-too-large: net and virt mtu over the underlay minus overhead', () => {
  const { m, a, blue, w1 } = base();
  a.mtu = 1500;
  blue.mtu = 1460;
  expectProblem(m, { code: 'mtu-too-large', object: 'net blue', loc: L(5, 20), mentions: ['1460', '1450', 'phys a'] });
  blue.mtu = undefined;
  w1.mtu = 1451;
  expectProblem(m, { code: 'mtu-too-large', object: 'virt blue/w1', loc: L(6, 50), mentions: ['1451', '1450'] });
  // The host's MTU counts for a phys in scope when the model gives none.
  a.mtu = undefined;
  const host = { interfaces: new Set(['eth0', 'tap0']), mtu: new Map([['eth0', 1400]]) };
  w1.mtu = 1351;
  expectProblem(m, { code: 'mtu-too-large', object: 'virt blue/w1', loc: L(6, 50), mentions: ['1351', '1350'] }, { physes: ['a'], host });
  w1.mtu = 1350;
  assert.deepEqual(validate(m, { physes: ['a'], host }), []);
});

// --- physes --------------------------------------------------------------------------------------

test('phys-unattached (warning)', () => {
  const { m } = base();
  m.addPhys('c', { if: 'eth0', ip: '192.0.2.3' }).setLoc(L(9));
  expectProblem(m, { code: 'phys-unattached', severity: 'warning', object: 'phys c', loc: L(9), mentions: '"c"' });
});

test('phys-if-missing (only for physes in scope)', () => {
  const { m, b } = base();
  b.if = undefined;
  expectProblem(m, { code: 'phys-if-missing', object: 'phys b', loc: L(4, 10), mentions: ['"blue"', 'if'] });
  assert.deepEqual(validate(m, { physes: ['a'] }), []);
});

test('phys-if-invalid', () => {
  const { m, a } = base();
  a.if = 'eth0:1';
  expectProblem(m, { code: 'phys-if-invalid', object: 'phys a', loc: L(3, 10), mentions: '"eth0:1"' });
});

test('phys-ip-missing', () => {
  const { m, a } = base();
  a.ip = undefined;
  expectProblem(m, { code: 'phys-ip-missing', object: 'phys a', loc: L(3, 20), mentions: ['"blue"', 'vxlan/e2e'] });
});

test('phys-ip-invalid', () => {
  const { m, a } = base();
  a.ip = '192.0.2';
  expectProblem(m, { code: 'phys-ip-invalid', object: 'phys a', loc: L(3, 20), mentions: '"192.0.2"' });
  a.ip = '239.1.1.1';
  expectProblem(m, { code: 'phys-ip-invalid', object: 'phys a', loc: L(3, 20), mentions: ['"239.1.1.1"', 'unicast'] });
});

test('phys-ip-duplicate (reported on the later phys; IPv6 compared canonically)', () => {
  const { m, a, b } = base();
  a.ip = '2001:db8:0::1';
  b.ip = '2001:DB8::1';
  expectProblem(m, { code: 'phys-ip-duplicate', object: 'phys b', loc: L(4, 20), mentions: ['2001:DB8::1', '"a"'] });
});

test('phys-mtu-invalid', () => {
  const { m, a } = base();
  a.mtu = 70000;
  expectProblem(m, { code: 'phys-mtu-invalid', object: 'phys a', loc: L(3, 30), mentions: '70000' });
});

test('phys-mtu-too-small', () => {
  const { m, a } = base();
  a.mtu = 100;
  expectProblem(m, { code: 'phys-mtu-too-small', object: 'phys a', loc: L(3, 30), mentions: ['100', '50', '"blue"'] });
});

test('phys-mtu-below-ipv6-minimum (warning; IPv6 underlay overhead is 70)', () => {
  const { m, a, b } = base();
  a.ip = '2001:db8::1';
  b.ip = '2001:db8::2';
  a.mtu = 1340;
  expectProblem(m, {
    code: 'phys-mtu-below-ipv6-minimum', severity: 'warning', object: 'phys a', loc: L(3, 30), mentions: ['1340', '70', '1270'],
  });
  a.mtu = 1350;
  assert.deepEqual(validate(m), []);
});

test('direct-net-shared', () => {
  const { m, s, a, blue } = base();
  s.type = 'direct';
  blue.vid = undefined;
  m.addNet('red').attach(a);
  expectProblem(m, { code: 'direct-net-shared', object: 'phys a', loc: L(3), mentions: ['"blue"', '"red"'] });
});

test('direct-net-exclusive', () => {
  const { m, a, b } = base();
  m.addSettings('direct', { name: 'flat' });
  m.addNet('lan', { settings: 'flat' }).attach(a).attach(b);
  const problems = validate(m).filter((p) => p.code === 'direct-net-exclusive');
  assert.deepEqual(problems.map((p) => p.object), ['phys a', 'phys b']);
  assert.match(problems[0]!.message, /"lan".*"blue"/);
});

test('port-family-clash', () => {
  const { m, a, b } = base();
  m.addSettings('geneve/e2e', { name: 'gv', port: 4789 });
  m.addNet('red', { vid: 10, settings: 'gv' }).attach(a).attach(b);
  const p = expectProblem(m, {
    code: 'port-family-clash', object: 'phys a', loc: L(3), mentions: ['"blue"', '"red"', '4789'],
    codes: ['port-family-clash', 'port-family-clash'],
  });
  assert.match(p.message, /geneve\/e2e/);
  assert.equal(validate(m)[1]?.object, 'phys b');
});

test('port-learning-clash', () => {
  const { m, a } = base();
  m.addSettings('vxlan/static', { name: 'st' });
  m.addNet('red', { vid: 11, settings: 'st' }).attach(a);
  expectProblem(m, { code: 'port-learning-clash', object: 'phys a', loc: L(3), mentions: ['"red"', '"blue"', '4789'] });
});

// --- virts ---------------------------------------------------------------------------------------

test('virt-phys-unknown', () => {
  const { m, w1 } = base();
  w1.connect('zz', 'tap0');
  expectProblem(m, { code: 'virt-phys-unknown', object: 'virt blue/w1', loc: L(6, 30), mentions: '"zz"' });
});

test('virt-phys-not-attached', () => {
  const { m, blue, a } = base();
  blue.detach(a);
  expectProblem(m, {
    code: 'virt-phys-not-attached', object: 'virt blue/w1', loc: L(6, 30), mentions: ['"a"', '"blue"'],
    codes: ['phys-unattached', 'virt-phys-not-attached'],
  });
});

test('virt-if-missing (only for physes in scope)', () => {
  const { m, w2 } = base();
  w2.if = undefined;
  expectProblem(m, { code: 'virt-if-missing', object: 'virt blue/w2', loc: L(7, 20), mentions: '"b"' });
  assert.deepEqual(validate(m, { physes: ['a'] }), []);
});

test('virt-if-invalid', () => {
  const { m, w1 } = base();
  w1.if = 'tap 0';
  expectProblem(m, { code: 'virt-if-invalid', object: 'virt blue/w1', loc: L(6, 20), mentions: '"tap 0"' });
});

test('virt-if-duplicate (across nets, on one phys)', () => {
  const { m, a, b } = base();
  const red = m.addNet('red', { vid: 11 }).attach(a).attach(b);
  red.virt('r1', { mac: '02:00:00:00:00:01', phys: a, if: 'tap0' }).setLoc(L(8), { if: L(8, 20) });
  expectProblem(m, { code: 'virt-if-duplicate', object: 'virt red/r1', loc: L(8, 20), mentions: ['"tap0"', 'blue/w1'] });
});

test('virt-if-is-underlay', () => {
  const { m, w1 } = base();
  w1.if = 'eth0';
  expectProblem(m, { code: 'virt-if-is-underlay', object: 'virt blue/w1', loc: L(6, 20), mentions: ['"eth0"', '"a"'] });
});

test('interface-missing: a virt interface absent on this host (only for physes in scope)', () => {
  const { m } = base();
  const host = { interfaces: new Set(['eth0']) };
  expectProblem(m, { code: 'interface-missing', object: 'virt blue/w1', loc: L(6, 20), mentions: '"tap0"' }, { physes: ['a'], host });
  host.interfaces.add('tap0');
  assert.deepEqual(validate(m, { physes: ['a'], host }), []);
});

test('underlay-interface-missing: phys if, or vxvde iface, absent on this host', () => {
  const { m, s } = base();
  const host = { interfaces: new Set(['tap0']) };
  expectProblem(m, { code: 'underlay-interface-missing', object: 'phys a', loc: L(3, 10), mentions: '"eth0"' }, { physes: ['a'], host });
  host.interfaces.add('eth0');
  s.type = 'vxvde';
  s.options.iface = 'mc0';
  s.setLoc(undefined, { iface: L(2, 60) });
  expectProblem(m, { code: 'underlay-interface-missing', object: 'settings default', loc: L(2, 60), mentions: '"mc0"' }, { physes: ['a'], host });
});

test('virt-mac-missing (static types)', () => {
  const { m, s, w2 } = base();
  s.type = 'vxlan/static';
  w2.mac = undefined;
  expectProblem(m, { code: 'virt-mac-missing', object: 'virt blue/w2', loc: L(7, 10), mentions: ['vxlan/static', 'mac'] });
  s.type = 'vxlan/e2e';
  assert.deepEqual(validate(m), []);
});

test('virt-mac-invalid: malformed, multicast, zero', () => {
  const { m, w1 } = base();
  for (const [mac, word] of [['02:00:00:00:00', 'malformed'], ['01:00:5e:00:00:01', 'multicast'], ['00-00-00-00-00-00', 'zero']]) {
    w1.mac = mac;
    expectProblem(m, { code: 'virt-mac-invalid', object: 'virt blue/w1', loc: L(6, 10), mentions: [`"${mac}"`, word!] });
  }
});

test('virt-mac-duplicate (in one net; across nets is fine)', () => {
  const { m, w2, a, b } = base();
  w2.mac = '02:00:00:00:00:01'.toUpperCase();
  expectProblem(m, { code: 'virt-mac-duplicate', object: 'virt blue/w2', loc: L(7, 10), mentions: ['02:00:00:00:00:01'.toUpperCase(), 'blue/w1'] });
  w2.mac = '02:00:00:00:00:02';
  m.addNet('red', { vid: 11 }).attach(a).attach(b).virt('r1', { mac: '02:00:00:00:00:01', phys: a, if: 'tap1' });
  assert.deepEqual(validate(m), []);
});

test('virt-ip-invalid', () => {
  const { m, w1 } = base();
  w1.ips = ['10.0.0.1/24', '10.0.0.2'];
  expectProblem(m, { code: 'virt-ip-invalid', object: 'virt blue/w1', loc: L(6, 40), mentions: '"10.0.0.2"' });
  w1.ips = ['10.0.0.1/33'];
  expectProblem(m, { code: 'virt-ip-invalid', object: 'virt blue/w1', loc: L(6, 40), mentions: '"10.0.0.1/33"' });
});

test('virt-ip-duplicate', () => {
  const { m, w1, w2 } = base();
  w1.ips = ['10.0.0.1/24'];
  w2.ips = ['10.0.0.1/16'];
  expectProblem(m, { code: 'virt-ip-duplicate', object: 'virt blue/w2', loc: L(7, 40), mentions: ['"10.0.0.1/16"', 'blue/w1'] });
});

test('virt-mtu-invalid', () => {
  const { m, w1 } = base();
  w1.mtu = 65536;
  expectProblem(m, { code: 'virt-mtu-invalid', object: 'virt blue/w1', loc: L(6, 50), mentions: '65536' });
});

// --- rules ---------------------------------------------------------------------------------------

test('rule-priority-invalid', () => {
  const { m } = ruleOn({ priority: 32768, action: 'drop' }, 20, { priority: L(20, 5) });
  expectProblem(m, { code: 'rule-priority-invalid', object: 'rule in 32768 of virt blue/w1', loc: L(20, 5), mentions: '32768' });
});

test('rule-action-invalid', () => {
  const { m } = ruleOn({ priority: 1, action: 'reject' as 'drop' }, 20, { action: L(20, 9) });
  expectProblem(m, { code: 'rule-action-invalid', object: 'rule in 1 of virt blue/w1', loc: L(20, 9), mentions: '"reject"' });
});

test('rule-proto-invalid', () => {
  const { m } = ruleOn({ priority: 1, action: 'drop', proto: 'gre' as 'tcp' });
  expectProblem(m, { code: 'rule-proto-invalid', object: 'rule in 1 of virt blue/w1', loc: L(20), mentions: '"gre"' });
});

test('rule-ip-invalid', () => {
  const { m } = ruleOn({ priority: 1, action: 'drop', dstIp: '10.0.0.0/40' }, 20, { dstIp: L(20, 30) });
  expectProblem(m, { code: 'rule-ip-invalid', object: 'rule in 1 of virt blue/w1', loc: L(20, 30), mentions: '"10.0.0.0/40"' });
});

test('rule-mac-invalid', () => {
  const { m } = ruleOn({ priority: 1, action: 'drop', srcMac: '02:00:00:00:00:00/ff:ff' }, 20, { srcMac: L(20, 40) });
  expectProblem(m, { code: 'rule-mac-invalid', object: 'rule in 1 of virt blue/w1', loc: L(20, 40), mentions: '"02:00:00:00:00:00/ff:ff"' });
});

test('rule-too-many-matches', () => {
  const { m } = ruleOn({ priority: 1, action: 'drop', srcIp: '10.0.0.1', dstIp: '10.0.0.2', srcMac: '02:00:00:00:00:09' }, 20, { srcMac: L(20, 50) });
  expectProblem(m, { code: 'rule-too-many-matches', object: 'rule in 1 of virt blue/w1', loc: L(20, 50), mentions: ['srcIp', 'dstIp', 'srcMac'] });
});

test('rule-ip-family-mismatch (addresses, or icmp vs the addresses)', () => {
  const { m, w1 } = ruleOn({ priority: 1, action: 'drop', srcIp: '10.0.0.0/8', dstIp: 'fd00::/8' }, 20, { dstIp: L(20, 30) });
  expectProblem(m, { code: 'rule-ip-family-mismatch', object: 'rule in 1 of virt blue/w1', loc: L(20, 30), mentions: ['10.0.0.0/8', 'fd00::/8'] });
  w1.rules[0]!.spec = { priority: 1, action: 'drop', srcIp: 'fd00::/8', proto: 'icmp' };
  expectProblem(m, { code: 'rule-ip-family-mismatch', object: 'rule in 1 of virt blue/w1', loc: L(20), mentions: ['icmpv6', 'fd00::/8'] });
});

test('rule-port-invalid', () => {
  const { m } = ruleOn({ priority: 1, action: 'drop', proto: 'tcp', dstPort: '2000-1000' }, 20, { dstPort: L(20, 60) });
  expectProblem(m, { code: 'rule-port-invalid', object: 'rule in 1 of virt blue/w1', loc: L(20, 60), mentions: '"2000-1000"' });
  const b = ruleOn({ priority: 1, action: 'drop', proto: 'udp', srcPort: 65536 }, 20, { srcPort: L(20, 60) });
  expectProblem(b.m, { code: 'rule-port-invalid', object: 'rule in 1 of virt blue/w1', loc: L(20, 60), mentions: '65536' });
});

test('rule-port-without-proto', () => {
  const { m } = ruleOn({ priority: 1, action: 'drop', proto: 'icmp', dstPort: 22 }, 20, { dstPort: L(20, 60) });
  expectProblem(m, { code: 'rule-port-without-proto', object: 'rule in 1 of virt blue/w1', loc: L(20, 60), mentions: ['22', '"icmp"'] });
});

test('rule-icmp-without-proto', () => {
  const { m } = ruleOn({ priority: 1, action: 'drop', proto: 'tcp', icmpType: 8 }, 20, { icmpType: L(20, 70) });
  expectProblem(m, { code: 'rule-icmp-without-proto', object: 'rule in 1 of virt blue/w1', loc: L(20, 70), mentions: ['8', '"tcp"'] });
});

test('rule-icmp-type-invalid', () => {
  const { m } = ruleOn({ priority: 1, action: 'drop', proto: 'icmp', icmpType: 'packet-too-big' }, 20, { icmpType: L(20, 70) });
  expectProblem(m, { code: 'rule-icmp-type-invalid', object: 'rule in 1 of virt blue/w1', loc: L(20, 70), mentions: '"packet-too-big"' });
});

test('rule-duplicate (same match after masking; other direction or priority is fine)', () => {
  const { m, w1 } = ruleOn({ priority: 3, action: 'drop', srcIp: '10.0.0.0/24' });
  w1.rule('in', { priority: 3, action: 'drop', srcIp: '10.0.0.7/24' }).setLoc(L(21));
  expectProblem(m, { code: 'rule-duplicate', object: 'rule in 3 of virt blue/w1', loc: L(21), mentions: ['10.0.0.7/24', 'm.yaml:20:1'] });
  w1.rules.pop();
  w1.rule('out', { priority: 3, action: 'drop', srcIp: '10.0.0.0/24' });
  w1.rule('in', { priority: 4, action: 'drop', srcIp: '10.0.0.0/24' });
  assert.deepEqual(validate(m), []);
});

test('rule-layout-mismatch (fields or masks differ within one priority)', () => {
  const { m, w1 } = ruleOn({ priority: 3, action: 'drop', srcIp: '10.0.0.0/24' });
  w1.rule('in', { priority: 3, action: 'drop', srcIp: '10.1.0.0/16' }).setLoc(L(21));
  expectProblem(m, { code: 'rule-layout-mismatch', object: 'rule in 3 of virt blue/w1', loc: L(21), mentions: ['/16', '/24'] });
  w1.rules.pop();
  w1.rule('in', { priority: 3, action: 'drop', srcMac: '02:00:00:00:00:05' }).setLoc(L(22));
  expectProblem(m, { code: 'rule-layout-mismatch', object: 'rule in 3 of virt blue/w1', loc: L(22), mentions: ['srcMac', 'srcIp'] });
  w1.rules.pop();
  w1.rule('in', { priority: 3, action: 'accept', srcIp: '10.2.0.0/24' });
  assert.deepEqual(validate(m), []);
});

// --- rates ---------------------------------------------------------------------------------------

test('rate-avg-invalid', () => {
  const { m, w1 } = base();
  w1.rate('in', { avg: -5, burst: 4096 });
  w1.rates.in!.setLoc(L(30), { avg: L(30, 10) });
  expectProblem(m, { code: 'rate-avg-invalid', object: 'rate in of virt blue/w1', loc: L(30, 10), mentions: '-5' });
});

test('rate-burst-invalid', () => {
  const { m, w1 } = base();
  w1.rate('out', { avg: 1000, burst: 0 });
  w1.rates.out!.setLoc(L(30), { burst: L(30, 20) });
  expectProblem(m, { code: 'rate-burst-invalid', object: 'rate out of virt blue/w1', loc: L(30, 20), mentions: 'burst 0' });
});

test('rate-peak-invalid (negative, or below avg)', () => {
  const { m, w1 } = base();
  w1.rate('in', { avg: 1000, burst: 4096, peak: -1 });
  w1.rates.in!.setLoc(L(30), { peak: L(30, 30) });
  expectProblem(m, { code: 'rate-peak-invalid', object: 'rate in of virt blue/w1', loc: L(30, 30), mentions: '-1' });
  w1.rates.in!.spec.peak = 500;
  expectProblem(m, { code: 'rate-peak-invalid', object: 'rate in of virt blue/w1', loc: L(30, 30), mentions: ['500', '1000'] });
});

test('rate-burst-too-long', () => {
  const { m } = base();
  const v = [...m.virts()][0]!;
  v.rate('in', { avg: 8, burst: 2048 });
  v.rates.in!.setLoc(L(20), { burst: L(20, 30) });
  const problems = validate(m).filter((p) => p.code === 'rate-burst-too-long');
  assert.equal(problems.length, 1);
  assert.deepEqual(problems[0]!.loc, L(20, 30));
  assert.match(problems[0]!.message, /2048 bytes takes 2048 s/);
  v.rate('in', { avg: 8, burst: 274 });
  assert.deepEqual(validate(m).filter((p) => p.code === 'rate-burst-too-long'), [], '274 s still fits');
});

test('rate-burst-below-mtu (warning)', () => {
  const { m, w1 } = base();
  w1.rate('in', { avg: 1000, burst: 1000 });
  w1.rates.in!.setLoc(L(30), { burst: L(30, 20) });
  expectProblem(m, { code: 'rate-burst-below-mtu', severity: 'warning', object: 'rate in of virt blue/w1', loc: L(30, 20), mentions: ['1000', '1500'] });
});

test('virt-policy-invalid', () => {
  const { m, w1 } = base();
  (w1.policy as { in: string }).in = 'reject';
  w1.setLoc(L(6), { policy: L(6, 60) });
  expectProblem(m, { code: 'virt-policy-invalid', object: 'virt blue/w1', loc: L(6, 60), mentions: ['policy in', '"reject"'] });
});

test('virt-stateful-needs-mac', () => {
  const { m, w1 } = base();
  w1.mac = undefined;
  w1.stateful = true;
  w1.setLoc(L(6), { stateful: L(6, 70) });
  expectProblem(m, { code: 'virt-stateful-needs-mac', object: 'virt blue/w1', loc: L(6, 70), mentions: 'stateful' });
});
