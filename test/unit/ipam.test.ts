/**
 * IP address management (issue 10, part 1): subnets in the file format, the allocator, its
 * validation codes (each located), stability across adding/removing virts (a seeded property
 * test), host-independence, `lsdn allocate` writing the record back into YAML/JSON, and a
 * golden file of a small model's assignment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ipaddr from 'ipaddr.js';
import { loadModelText } from '../../src/file/load.js';
import { dumpJson, dumpYaml } from '../../src/file/dump.js';
import { fileSchema, netSchema } from '../../src/file/schema.js';
import { Netmodel, type SubnetSpec } from '../../src/model/netmodel.js';
import { validate } from '../../src/validate/validate.js';
import type { Problem } from '../../src/core/problem.js';
import {
  allocate, assignAddresses, linkLocalAddress, numToV4, parseRange4, serverAddress, slaacAddress, v4ToNum,
  type VirtAddressing,
} from '../../src/ipam/ipam.js';
import { fileFormat, writeAllocations } from '../../src/ipam/record.js';
import { assertGolden } from '../golden/golden.js';

// --- helpers -------------------------------------------------------------------------------------

function load(text: string, file = 'ipam.yaml'): Netmodel {
  const { model, problems } = loadModelText(text, file);
  assert.ok(model, JSON.stringify(problems));
  assert.deepEqual(problems, [], JSON.stringify(problems));
  return model;
}

function problemsOf(text: string): Problem[] {
  const { model, problems } = loadModelText(text, 'ipam.yaml');
  assert.ok(model, JSON.stringify(problems));
  return [...problems, ...validate(model)];
}

/** The one problem with `code` (fails when there is none or several). */
function one(problems: Problem[], code: string): Problem {
  const found = problems.filter((p) => p.code === code);
  assert.equal(found.length, 1, `expected one ${code}, got: ${JSON.stringify(problems, null, 2)}`);
  return found[0]!;
}

const HEAD = `name: ipam
settings: { default: { type: vxlan/e2e } }
physes:
  hv1: { if: eth0, ip: 192.0.2.1 }
`;

/** A model of net "a" with an ipv4 block (its lines) and virts (their lines). */
function netYaml(ipv4: string[], virts: string[], extra = ''): string {
  return `${HEAD}nets:
  a:
    vid: 10
    ipv4:
${ipv4.map((l) => `      ${l}`).join('\n')}
    virts:
${virts.map((l) => `      ${l}`).join('\n')}
${extra}`;
}

function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `"${needle}" not in the text`);
  return i + 1;
}

function v4(m: Map<string, VirtAddressing>, id: string): string | undefined {
  return m.get(id)?.v4?.ip;
}

// --- addresses and helpers ------------------------------------------------------------------------

test('SLAAC and link-local addresses are the modified EUI-64 of the MAC (RFC 4291)', () => {
  assert.equal(slaacAddress('2001:db8:a::/64', '52:54:00:12:34:56'), '2001:db8:a:0:5054:ff:fe12:3456');
  // The universal/local bit flips: 02:... becomes 00..., and a zero group compresses.
  assert.equal(slaacAddress('2001:db8::', '02:00:00:00:00:01'), '2001:db8::ff:fe00:1');
  assert.equal(linkLocalAddress('02:00:00:00:00:01'), 'fe80::ff:fe00:1');
  assert.equal(linkLocalAddress('00:11:22:33:44:55'), 'fe80::211:22ff:fe33:4455');
  assert.throws(() => slaacAddress('2001:db8::/64', 'nope'), /not a MAC/);
  // The text is canonical: what ipaddr.js (and so normalizeIp and nft) prints.
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % 256;
  for (let i = 0; i < 2000; i++) {
    const mac = Array.from({ length: 6 }, () => (rnd() < 96 ? 0 : rnd()).toString(16).padStart(2, '0')).join(':');
    const groups = Array.from({ length: 4 }, () => (rnd() < 128 ? 0 : rnd() * 256 + rnd()).toString(16));
    const prefix = `${groups.join(':')}::`;
    const a = slaacAddress(prefix, mac);
    assert.equal(a, ipaddr.parse(a).toString(), `${prefix} ${mac}`);
    const bytes = ipaddr.parse(a).toByteArray();
    assert.deepEqual(bytes.slice(0, 8), ipaddr.parse(prefix).toByteArray().slice(0, 8));
    const m = mac.split(':').map((x) => parseInt(x, 16));
    assert.deepEqual(bytes.slice(8), [m[0]! ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]);
  }
});

test('server addresses: the highest host address of an IPv4 subnet, prefix::fffe for IPv6, or the given one', () => {
  const m = new Netmodel('t');
  const n = m.addNet('a');
  assert.equal(serverAddress(n.setSubnet(4, { prefix: '10.0.0.0/24' })!), '10.0.0.254');
  assert.equal(serverAddress(n.setSubnet(4, { prefix: '10.1.0.0/16' })!), '10.1.255.254');
  assert.equal(serverAddress(n.setSubnet(4, { prefix: '10.0.0.0/24', server: '10.0.0.2' })!), '10.0.0.2');
  assert.equal(serverAddress(n.setSubnet(6, { prefix: '2001:db8:a::/64' })!), '2001:db8:a::fffe');
  assert.equal(serverAddress(n.setSubnet(6, { prefix: '2001:db8:a::/64', server: '2001:db8:a:0::53' })!), '2001:db8:a::53');
  assert.throws(() => serverAddress(n.setSubnet(4, { prefix: '10.0.0.1/24' })!), /host bits/);
});

test('ranges: "A-B", prefixes and single addresses; reversed and malformed ones are errors', () => {
  assert.deepEqual(parseRange4('10.0.0.100-10.0.0.199'), { lo: v4ToNum('10.0.0.100'), hi: v4ToNum('10.0.0.199') });
  assert.deepEqual(parseRange4('10.0.0.64/27'), { lo: v4ToNum('10.0.0.64'), hi: v4ToNum('10.0.0.95') });
  assert.deepEqual(parseRange4('10.0.0.7'), { lo: v4ToNum('10.0.0.7'), hi: v4ToNum('10.0.0.7') });
  assert.match((parseRange4('10.0.0.9-10.0.0.1') as { error: string }).error, /reversed/);
  assert.match((parseRange4('10.0.0.300') as { error: string }).error, /not an IPv4/);
  assert.equal(v4ToNum('010.0.0.1'), undefined);
  assert.equal(numToV4(v4ToNum('255.254.3.0')!), '255.254.3.0');
});

// --- the file format ----------------------------------------------------------------------------

const FULL = `${HEAD}nets:
  a:
    vid: 10
    ipv4: { subnet: 10.0.0.0/24, gateway: 10.0.0.1, pools: ["10.0.0.100-10.0.0.199", "10.0.0.64/27"], reserved: [10.0.0.150, "10.0.0.60-10.0.0.63"], dns: [10.0.0.1], dhcp: false, server: 10.0.0.253 }
    ipv6: { subnet: "2001:db8:a::/64", gateway: "2001:db8:a::1", dns: ["2001:db8:a::53"], slaac: true, server: "2001:db8:a::2" }
    virts:
      web: { phys: hv1, if: tap0, mac: "52:54:00:00:00:01" }
      db: { phys: hv1, if: tap1, mac: "52:54:00:00:00:02", ip: [10.0.0.5/24, "2001:db8:a::5/64"] }
allocations:
  a/web: 10.0.0.120
`;

test('file: subnets per net and the allocations section load into the model, located', () => {
  const m = load(FULL);
  const a = m.net('a')!;
  assert.deepEqual(a.ipv4?.spec, {
    prefix: '10.0.0.0/24', gateway: '10.0.0.1', pools: ['10.0.0.100-10.0.0.199', '10.0.0.64/27'],
    reserved: ['10.0.0.150', '10.0.0.60-10.0.0.63'], dns: ['10.0.0.1'], serve: false, server: '10.0.0.253',
  });
  assert.equal(a.ipv4?.family, 4);
  assert.deepEqual(a.ipv6?.spec, { prefix: '2001:db8:a::/64', gateway: '2001:db8:a::1', dns: ['2001:db8:a::53'], serve: true, server: '2001:db8:a::2' });
  assert.equal(a.ipv4?.locOf('subnet')?.line, lineOf(FULL, 'ipv4:'));
  assert.deepEqual([...m.allocations], [['a/web', '10.0.0.120']]);
  assert.equal(m.locOf('allocations:a/web')?.line, lineOf(FULL, 'a/web: 10.0.0.120'));
  const problems = validate(m);
  assert.deepEqual(problems.filter((p) => p.severity === 'error'), []);
});

test('file: yaml and json dumps round-trip subnets and allocations', () => {
  const m = load(FULL);
  for (const dump of [dumpYaml, dumpJson]) {
    const text = dump(m);
    const back = load(text);
    assert.deepEqual(back.net('a')?.ipv4?.spec, m.net('a')?.ipv4?.spec);
    assert.deepEqual(back.net('a')?.ipv6?.spec, m.net('a')?.ipv6?.spec);
    assert.deepEqual([...back.allocations], [...m.allocations]);
    assert.equal(dump(back), text);
  }
  assert.match(dumpYaml(m), /ipv4:\n\s+subnet: 10\.0\.0\.0\/24\n\s+gateway: 10\.0\.0\.1\n\s+pools:/);
  assert.match(dumpYaml(m), /dhcp: false/);
});

test('file: unknown subnet fields, a second ipv4, and a wrong allocations value are located file problems', () => {
  const t1 = netYaml(['subnet: 10.0.0.0/24', 'slaac: true'], ['web: {}']);
  const { problems: p1 } = loadModelText(t1, 'f.yaml');
  assert.equal(one(p1, 'unknown-field').loc?.line, lineOf(t1, 'slaac: true'));
  const t2 = netYaml(['subnet: 10.0.0.0/24'], ['web: {}']).replace('    virts:', '    ipv4: { subnet: 10.1.0.0/24 }\n    virts:');
  const { problems: p2 } = loadModelText(t2, 'f.yaml');
  assert.equal(one(p2, 'duplicate-name').severity, 'error');
  const t3 = netYaml(['subnet: 10.0.0.0/24'], ['web: {}'], 'allocations:\n  a/web: [1]\n');
  const { problems: p3 } = loadModelText(t3, 'f.yaml');
  assert.equal(one(p3, 'invalid-field').loc?.line, lineOf(t3, 'a/web: [1]'));
  assert.ok(netSchema.shape.ipv4 && fileSchema.shape.allocations);
});

// --- the allocator ------------------------------------------------------------------------------

test('allocation: never the network, broadcast, gateway, server, reserved or a static address; only the pools', () => {
  const m = new Netmodel('t');
  const n = m.addNet('a');
  // A /29: .1-.6 usable; .1 gateway, .6 server (default), .2 reserved, .3 static: .4 and .5 left.
  n.setSubnet(4, { prefix: '10.0.0.0/29', gateway: '10.0.0.1', reserved: ['10.0.0.2'] });
  n.virt('s', { ips: ['10.0.0.3/29'] });
  for (const name of ['x', 'y', 'z']) n.virt(name);
  const r = assignAddresses(m);
  assert.deepEqual(r.get('a/s')?.v4, { ip: '10.0.0.3', len: 29, source: 'static' });
  const got = ['x', 'y', 'z'].map((v) => v4(r, `a/${v}`)).filter(Boolean).sort();
  assert.deepEqual(got, ['10.0.0.4', '10.0.0.5']);
  // The one without an address is named.
  const p = one(validate(m), 'subnet-pool-exhausted');
  assert.match(p.message, /no address left for virt z\b/);
  assert.equal(p.object, 'net a');
  const al = allocate(m);
  assert.equal(al.allocations.size, 2);
  assert.ok(al.problems.some((x) => /pool/.test(x) && x.startsWith('error')));
});

test('allocation: pools of ranges and prefixes; the preferred slot is a hash of net/virt, then the next free', () => {
  const m = new Netmodel('t');
  const n = m.addNet('a');
  n.setSubnet(4, { prefix: '10.0.0.0/24', pools: ['10.0.0.100-10.0.0.103', '10.0.0.64/31'] });
  for (let i = 0; i < 6; i++) n.virt(`v${i}`);
  const r = assignAddresses(m);
  const got = [...r.values()].map((a) => a.v4?.ip).sort();
  assert.deepEqual(got, ['10.0.0.100', '10.0.0.101', '10.0.0.102', '10.0.0.103', '10.0.0.64', '10.0.0.65']);
  for (const a of r.values()) assert.equal(a.v4?.source, 'allocated');
  // Same on a second computation, and a lone virt lands on its own hashed slot whatever the others.
  assert.deepEqual([...assignAddresses(m)], [...r]);
  const alone = new Netmodel('t');
  alone.addNet('a').setSubnet(4, { prefix: '10.0.0.0/16' });
  alone.net('a')!.virt('web');
  const other = new Netmodel('t');
  other.addNet('a').setSubnet(4, { prefix: '10.0.0.0/16' });
  other.net('a')!.virt('web');
  other.net('a')!.virt('zzz');
  assert.equal(v4(assignAddresses(alone), 'a/web'), v4(assignAddresses(other), 'a/web'));
});

test('allocation: a recorded allocation is kept; an invalid or clashing one is re-allocated with a warning', () => {
  const m = new Netmodel('t');
  const n = m.addNet('a');
  n.setSubnet(4, { prefix: '10.0.0.0/24', pools: ['10.0.0.100-10.0.0.199'] });
  n.virt('a1');
  n.virt('a2');
  n.virt('a3');
  n.virt('s', { ips: ['10.0.0.150/24'] });
  m.allocations.set('a/a1', '10.0.0.111');
  m.allocations.set('a/a2', '10.0.0.150'); // the static address of s
  m.allocations.set('a/a3', '10.0.0.20'); // outside the pools
  m.allocations.set('a/gone', '10.0.0.120'); // no such virt
  const r = assignAddresses(m);
  assert.deepEqual(r.get('a/a1')?.v4, { ip: '10.0.0.111', len: 24, source: 'recorded' });
  assert.equal(r.get('a/a2')?.v4?.source, 'allocated');
  assert.notEqual(v4(r, 'a/a2'), '10.0.0.150');
  assert.equal(r.get('a/a3')?.v4?.source, 'allocated');
  const problems = validate(m);
  const invalid = problems.filter((p) => p.code === 'allocation-invalid');
  assert.deepEqual(invalid.map((p) => p.object), ['virt a/a2', 'virt a/a3']);
  assert.ok(invalid.every((p) => p.severity === 'warning'));
  assert.match(invalid[0]!.message, /already used/);
  assert.match(invalid[1]!.message, /outside the pools/);
  assert.match(one(problems, 'allocation-stale').message, /no such virt/);
  const al = allocate(m);
  assert.deepEqual(al.added.sort(), ['a/a2', 'a/a3']);
  assert.deepEqual(al.dropped, ['a/a2', 'a/a3', 'a/gone']);
  assert.deepEqual([...al.allocations.keys()], ['a/a1', 'a/a2', 'a/a3']);
});

test('IPv6: static addresses, the SLAAC address on a served /64 and the link-local address', () => {
  const m = load(FULL);
  const r = assignAddresses(m);
  assert.deepEqual(r.get('a/web'), {
    v4: { ip: '10.0.0.120', len: 24, source: 'recorded' },
    v6: [
      { ip: '2001:db8:a:0:5054:ff:fe00:1', len: 64, source: 'slaac' },
      { ip: 'fe80::5054:ff:fe00:1', len: 64, source: 'link-local' },
    ],
  });
  assert.deepEqual(r.get('a/db'), {
    v4: { ip: '10.0.0.5', len: 24, source: 'static' },
    v6: [
      { ip: '2001:db8:a::5', len: 64, source: 'static' },
      { ip: '2001:db8:a:0:5054:ff:fe00:2', len: 64, source: 'slaac' },
      { ip: 'fe80::5054:ff:fe00:2', len: 64, source: 'link-local' },
    ],
  });
  // slaac: false: no SLAAC address, still the link-local one.
  const off = load(FULL.replace('slaac: true', 'slaac: false'));
  assert.deepEqual(assignAddresses(off).get('a/web')?.v6.map((a) => a.source), ['link-local']);
  // No subnet and no IPv6 at all: nothing.
  const none = load(netYaml(['subnet: 10.0.0.0/24'], ['web: { mac: "52:54:00:00:00:01" }']));
  assert.deepEqual(assignAddresses(none).get('a/web')?.v6, []);
});

test('nets without a subnet: only static addresses, nothing allocated', () => {
  const m = new Netmodel('t');
  const n = m.addNet('a');
  n.virt('x', { ips: ['192.168.1.5/24', '10.0.0.1/8'] });
  n.virt('y');
  const r = assignAddresses(m);
  assert.deepEqual(r.get('a/x')?.v4, { ip: '192.168.1.5', len: 24, source: 'static' });
  assert.equal(r.get('a/y')?.v4, undefined);
  assert.equal(allocate(m).allocations.size, 0);
});

// How fast it is, bench/addressing.ts measures (the same two models): no wall clock here.
test('10,000 virts in one net (IPv4 allocation, SLAAC and link-local) each get a distinct address; a full pool leaves exactly the surplus without one', () => {
  const m = new Netmodel('big');
  const n = m.addNet('x');
  n.setSubnet(4, { prefix: '10.0.0.0/16', pools: ['10.0.0.0/17'], reserved: ['10.0.0.0/24'] });
  n.setSubnet(6, { prefix: '2001:db8::/64' });
  for (let i = 0; i < 10000; i++) {
    n.virt(`v${i}`, { mac: `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}` });
  }
  for (let i = 0; i < 5000; i++) m.allocations.set(`x/v${i * 2}`, numToV4(v4ToNum('10.0.1.0')! + i));
  const r = assignAddresses(m);
  assert.equal(r.size, 10000);
  assert.equal(new Set([...r.values()].map((a) => a.v4?.ip)).size, 10000);
  // A full /18: every address but the network, broadcast and the server's taken, 9 virts without one.
  const full = new Netmodel('full');
  const fn = full.addNet('x');
  fn.setSubnet(4, { prefix: '10.0.0.0/18' });
  for (let i = 0; i < 16390; i++) fn.virt(`v${i}`);
  const fr = assignAddresses(full);
  assert.equal([...fr.values()].filter((a) => a.v4).length, 16381);
});

// --- property test: stability and host-independence ----------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NETS: Record<string, SubnetSpec> = {
  // A small pool (8 + 4 addresses less 3 reserved and the server) so that exhaustion and reuse happen.
  a: { prefix: '10.1.0.0/24', gateway: '10.1.0.1', pools: ['10.1.0.100-10.1.0.107', '10.1.0.200/30'], reserved: ['10.1.0.105', '10.1.0.202-10.1.0.203'], server: '10.1.0.104' },
  b: { prefix: '172.16.0.0/27', gateway: '172.16.0.1' },
};

/** The same model declared in another order (virts, nets and recorded entries reversed): another host's view. */
function reordered(m: Netmodel): Netmodel {
  const o = new Netmodel(m.name);
  for (const n of [...m.nets.values()].reverse()) {
    const on = o.addNet(n.name);
    if (n.ipv4) on.setSubnet(4, { ...n.ipv4.spec });
    for (const v of [...n.virts.values()].reverse()) on.virt(v.name, { ips: v.ips });
  }
  for (const [id, ip] of [...m.allocations].reverse()) o.allocations.set(id, ip);
  return o;
}

function excludedOf(spec: SubnetSpec): Set<string> {
  const out = new Set<string>([spec.gateway!, spec.server ?? '']);
  for (const r of spec.reserved ?? []) {
    const rr = parseRange4(r) as { lo: number; hi: number };
    for (let a = rr.lo; a <= rr.hi; a++) out.add(numToV4(a));
  }
  return out;
}

/** Every address of the pools (the whole subnet less network and broadcast when there are none). */
function poolAddresses(spec: SubnetSpec): string[] {
  const out: string[] = [];
  if (spec.pools) {
    for (const p of spec.pools) {
      const r = parseRange4(p) as { lo: number; hi: number };
      for (let a = r.lo; a <= r.hi; a++) out.push(numToV4(a));
    }
  } else {
    const r = parseRange4(spec.prefix) as { lo: number; hi: number };
    for (let a = r.lo + 1; a < r.hi; a++) out.push(numToV4(a));
  }
  return out;
}

function inPools(spec: SubnetSpec, ip: string): boolean {
  const n = v4ToNum(ip)!;
  const pools = spec.pools ?? [spec.prefix];
  return pools.some((p) => {
    const r = parseRange4(p) as { lo: number; hi: number };
    return n >= r.lo && n <= r.hi;
  });
}

test('property: allocations recorded after each step never change while their virt exists; unique, in pools, never excluded; identical on two hosts and in any declaration order', () => {
  const SEQUENCES = 300;
  const STEPS = 60;
  let checkedSteps = 0;
  let starvedSteps = 0;
  for (let s = 0; s < SEQUENCES; s++) {
    const rnd = mulberry32(1000 + s);
    const pick = <T>(a: T[]): T => a[Math.floor(rnd() * a.length)]!;
    const m = new Netmodel('prop');
    for (const [name, spec] of Object.entries(NETS)) m.addNet(name).setSubnet(4, { ...spec });
    let prev = new Map<string, string | undefined>();
    for (let step = 0; step < STEPS; step++) {
      const net = m.net(pick(Object.keys(NETS)))!;
      const spec = NETS[net.name]!;
      const op = rnd();
      const existing = [...net.virts.keys()];
      if (op < 0.55 || existing.length === 0) {
        net.virt(`v${Math.floor(rnd() * 60)}`);
      } else if (op < 0.85) {
        net.virts.get(pick(existing))!.remove();
      } else {
        // A static virt on an address nobody uses (in the pools or not).
        const used = new Set([...assignAddresses(m).values()].map((a) => a.v4?.ip));
        const sub = spec.prefix.split('/');
        const base = v4ToNum(sub[0]!)!;
        const size = 2 ** (32 - Number(sub[1]));
        const free: string[] = [];
        for (let a = base + 1; a < base + size - 1; a++) {
          const ip = numToV4(a);
          if (!used.has(ip) && !excludedOf(spec).has(ip)) free.push(ip);
        }
        if (free.length) net.virt(`s${Math.floor(rnd() * 20)}`, { ips: [`${pick(free)}/${sub[1]}`] });
      }
      // Record (what `lsdn allocate` writes into the file).
      const r = allocate(m);
      m.allocations.clear();
      for (const [id, ip] of r.allocations) m.allocations.set(id, ip);

      const now = assignAddresses(m);
      // Stability: an address once given is kept while the virt exists (and stays non-static).
      for (const [id, ip] of prev) {
        const a = now.get(id);
        if (ip === undefined || !a || a.v4?.source === 'static') continue;
        assert.equal(a.v4?.ip, ip, `seq ${s} step ${step}: ${id} moved from ${ip} to ${a.v4?.ip}`);
      }
      // Every non-static one is recorded, so nothing is "allocated" any more.
      for (const [id, a] of now) if (a.v4) assert.notEqual(a.v4.source, 'allocated', id);
      // Unique per net; in the pools; never gateway, server or reserved; recorded = non-static.
      for (const n of m.nets.values()) {
        const sp = NETS[n.name]!;
        const ex = excludedOf(sp);
        const seen = new Set<string>();
        let starved = false;
        for (const v of n.virts.values()) {
          const a = now.get(v.id)!;
          if (!a.v4) {
            starved = true;
            continue;
          }
          assert.ok(!seen.has(a.v4.ip), `seq ${s} step ${step}: ${a.v4.ip} twice in net ${n.name}`);
          seen.add(a.v4.ip);
          if (a.v4.source !== 'static') {
            assert.ok(inPools(sp, a.v4.ip), `${a.v4.ip} outside the pools of ${n.name}`);
            assert.ok(!ex.has(a.v4.ip), `${a.v4.ip} is excluded in ${n.name}`);
            assert.equal(m.allocations.get(v.id), a.v4.ip);
          } else {
            assert.ok(!m.allocations.has(v.id));
          }
        }
        // A virt is left without an address only when the pools are really full.
        if (starved) {
          starvedSteps++;
          const left = poolAddresses(sp).filter((ip) => !ex.has(ip) && !seen.has(ip));
          assert.deepEqual(left, [], `seq ${s} step ${step}: a virt of ${n.name} got nothing, but ${left.join(', ')} are free`);
        }
      }
      // Another host, reading the same file in another order, computes the same thing.
      const other = assignAddresses(reordered(m));
      assert.deepEqual(new Map([...other].sort()), new Map([...now].sort()));
      // And from scratch (no record at all) the result is order-independent too.
      const fresh = reordered(m);
      fresh.allocations.clear();
      const m2 = reordered(fresh);
      assert.deepEqual(new Map([...assignAddresses(fresh)].sort()), new Map([...assignAddresses(m2)].sort()));

      prev = new Map([...now].map(([id, a]) => [id, a.v4?.ip]));
      checkedSteps++;
    }
  }
  assert.equal(checkedSteps, SEQUENCES * STEPS);
  assert.ok(starvedSteps > 0, 'the sequences should exhaust a pool at least once');
});

// --- validation codes -----------------------------------------------------------------------------

test('validation: malformed subnet, host bits set, wrong family', () => {
  const cases: [string, string][] = [
    ['subnet: 10.0.0/24', 'subnet-invalid'],
    ['subnet: 10.0.0.1/24', 'subnet-host-bits'],
    ['subnet: "2001:db8::/64"', 'subnet-family'],
  ];
  for (const [line, code] of cases) {
    const text = netYaml([line], ['web: {}']);
    const p = one(problemsOf(text), code);
    assert.equal(p.severity, 'error');
    assert.equal(p.object, 'net a');
    assert.equal(p.loc?.line, lineOf(text, line), code);
    assert.equal(p.loc?.file, 'ipam.yaml');
  }
  const v6 = `${HEAD}nets:\n  a:\n    ipv6:\n      subnet: 10.0.0.0/24\n    virts: {}\n`;
  assert.equal(one(problemsOf(v6), 'subnet-family').loc?.line, lineOf(v6, 'subnet: 10.0.0.0/24'));
});

test('validation: gateway, server, dns, pools and reserved malformed or outside the subnet, a reversed pool', () => {
  const cases: [string, string, RegExp][] = [
    ['gateway: 10.0.1.1', 'subnet-address-outside', /gateway 10\.0\.1\.1 is outside/],
    ['gateway: nope', 'subnet-address-invalid', /not an IPv4/],
    ['gateway: 10.0.0.255', 'subnet-address-invalid', /broadcast/],
    ['server: 10.0.9.9', 'subnet-address-outside', /server/],
    ['dns: ["2001:db8::53"]', 'subnet-address-invalid', /dns/],
    ['pools: ["10.0.0.20-10.0.0.10"]', 'subnet-pool-invalid', /reversed/],
    ['pools: ["10.0.0.200-10.0.1.10"]', 'subnet-pool-invalid', /partly outside/],
    ['pools: ["10.0.0.x"]', 'subnet-pool-invalid', /not an IPv4/],
    ['reserved: ["10.1.0.1"]', 'subnet-reserved-invalid', /outside/],
    ['gateway: 10.0.0.254', 'subnet-server-is-gateway', /also the gateway/],
  ];
  for (const [line, code, msg] of cases) {
    const text = netYaml(['subnet: 10.0.0.0/24', line], ['web: {}']);
    const p = one(problemsOf(text), code);
    assert.match(p.message, msg);
    assert.equal(p.object, 'net a');
    assert.equal(p.loc?.line, lineOf(text, line), `${code}: ${line}`);
  }
  // Without DHCP no server runs: its default address is free, a gateway may have it.
  const noDhcp = netYaml(['subnet: 10.0.0.0/24', 'gateway: 10.0.0.254', 'dhcp: false'], ['web: { ip: 10.0.0.253/24 }']);
  assert.deepEqual(problemsOf(noDhcp).filter((p) => p.severity === 'error'), []);
  // DNS servers outside the subnet are normal (a resolver elsewhere).
  const ok = problemsOf(netYaml(['subnet: 10.0.0.0/24', 'dns: [8.8.8.8]'], ['web: {}']));
  assert.deepEqual(ok.filter((p) => p.severity === 'error'), []);
});

test('validation: static addresses outside the subnet, on the gateway, server, network address; prefix mismatch; duplicates', () => {
  const cases: [string, string, 'error' | 'warning'][] = [
    ['ip: 10.9.0.5/24', 'virt-ip-outside-subnet', 'error'],
    ['ip: 10.0.0.1/24', 'virt-ip-gateway', 'error'],
    ['ip: 10.0.0.254/24', 'virt-ip-server', 'error'],
    ['ip: 10.0.0.0/24', 'virt-ip-network', 'error'],
    ['ip: 10.0.0.7/16', 'virt-ip-prefix-mismatch', 'warning'],
  ];
  for (const [ip, code, sev] of cases) {
    const text = netYaml(['subnet: 10.0.0.0/24', 'gateway: 10.0.0.1'], ['web:', `  ${ip}`]);
    const p = one(problemsOf(text), code);
    assert.equal(p.severity, sev);
    assert.equal(p.object, 'virt a/web');
    assert.equal(p.loc?.line, lineOf(text, ip), code);
  }
  const dup = netYaml(['subnet: 10.0.0.0/24'], ['web: { ip: 10.0.0.7/24 }', 'db: { ip: 10.0.0.7/24 }']);
  const p = one(problemsOf(dup), 'virt-ip-duplicate');
  assert.equal(p.object, 'virt a/db');
  const v6 = `${HEAD}nets:\n  a:\n    ipv6:\n      subnet: "2001:db8:a::/64"\n      gateway: "2001:db8:a::1"\n    virts:\n      web:\n        mac: "02:00:00:00:00:01"\n        ip: ["2001:db8:b::5/64", "2001:db8:a::fffe/64", "fe80::5/64"]\n`;
  const probs = problemsOf(v6);
  assert.equal(one(probs, 'virt-ip-outside-subnet').loc?.line, lineOf(v6, 'ip: ['));
  assert.match(one(probs, 'virt-ip-server').message, /prefix::fffe/);
});

test('validation: pool exhausted names the virts that got nothing', () => {
  const text = netYaml(['subnet: 10.0.0.0/24', 'pools: ["10.0.0.10-10.0.0.11"]'], ['a1: {}', 'a2: {}', 'a3: {}', 'a4: {}']);
  const p = one(problemsOf(text), 'subnet-pool-exhausted');
  assert.equal(p.severity, 'error');
  assert.match(p.message, /\(2 allocatable addresses\) have no address left for virts a3, a4$/);
  assert.equal(p.loc?.line, lineOf(text, 'pools:'));
});

test('validation: recorded allocation outside the pools or clashing warns at its line; stale entries warn; unrecorded ones warn naming lsdn allocate', () => {
  const text = netYaml(['subnet: 10.0.0.0/24', 'pools: ["10.0.0.10-10.0.0.20"]'], ['a1: {}', 'a2: { ip: 10.0.0.12/24 }', 'a3: {}', 'a4: {}'],
    'allocations:\n  a/a1: 10.0.0.30\n  a/a2: 10.0.0.12\n  a/a3: 10.0.0.12\n  a/zz: 10.0.0.13\n');
  const probs = problemsOf(text);
  const inv = probs.filter((p) => p.code === 'allocation-invalid');
  assert.deepEqual(inv.map((p) => [p.object, p.loc?.line]), [['virt a/a1', lineOf(text, 'a/a1: 10.0.0.30')], ['virt a/a3', lineOf(text, 'a/a3: 10.0.0.12')]]);
  const stale = probs.filter((p) => p.code === 'allocation-stale');
  assert.deepEqual(stale.map((p) => [p.object, p.loc?.line]), [['allocation a/a2', lineOf(text, 'a/a2: 10.0.0.12')], ['allocation a/zz', lineOf(text, 'a/zz:')]]);
  assert.match(stale[0]!.message, /static address 10\.0\.0\.12/);
  const un = one(probs, 'allocation-unrecorded');
  assert.equal(un.severity, 'warning');
  assert.equal(un.object, 'net a');
  assert.match(un.message, /3 virts a1, a3, a4 have IPv4 addresses allocated but not recorded.*lsdn allocate/);
  // A single unrecorded virt is located at the virt.
  const single = netYaml(['subnet: 10.0.0.0/24'], ['web: {}']);
  assert.equal(one(problemsOf(single), 'allocation-unrecorded').loc?.line, lineOf(single, 'web: {}'));
  assert.deepEqual(problemsOf(single).filter((p) => p.severity === 'error'), []);
});

test('validation: SLAAC needs a /64; a SLAAC virt without a MAC warns; ipv6 pools are refused', () => {
  const bad = `${HEAD}nets:\n  a:\n    ipv6:\n      subnet: "2001:db8:a::/80"\n    virts:\n      web: {}\n`;
  const p = one(problemsOf(bad), 'subnet-slaac-prefix');
  assert.equal(p.severity, 'error');
  assert.equal(p.loc?.line, lineOf(bad, '/80'));
  const off = bad.replace('/80"', '/80"\n      slaac: false');
  assert.deepEqual(problemsOf(off).filter((x) => x.code === 'subnet-slaac-prefix'), []);
  const nomac = bad.replace('/80', '/64');
  const w = one(problemsOf(nomac), 'virt-slaac-no-mac');
  assert.equal(w.severity, 'warning');
  assert.equal(w.object, 'virt a/web');
  assert.equal(w.loc?.line, lineOf(nomac, 'web: {}'));
  const m = new Netmodel('t');
  m.addNet('a').setSubnet(6, { prefix: '2001:db8::/64', pools: ['2001:db8::1-2001:db8::9'] });
  assert.equal(one(validate(m), 'subnet-pool-invalid').object, 'net a');
});

// --- lsdn allocate ------------------------------------------------------------------------------

const COMMENTED = `# The cluster (comment kept)
name: demo
settings:
  default: { type: vxlan/static }   # inline comment, odd spacing kept
physes:
  hv1: { ip: 192.0.2.1, if: eth0 }
nets:
  tenant-a:
    vid: 10
    # addresses of tenant a
    ipv4: { subnet: 10.0.0.0/24, gateway: 10.0.0.1, pools: ["10.0.0.100-10.0.0.199"] }
    virts:
      web: { phys: hv1, if: tap0 }  # the web server
      db: { phys: hv1, if: tap1, ip: 10.0.0.5/24 }
      cache: { phys: hv1, if: tap2 }
# trailing comment
`;

test('record: allocations are written into YAML keeping every comment and byte of the rest; JSON with a 2-space indent', () => {
  const m = load(COMMENTED);
  const r = allocate(m);
  assert.deepEqual(r.added, ['tenant-a/cache', 'tenant-a/web']);
  const text = writeAllocations(COMMENTED, r.allocations, 'yaml');
  assert.ok(text.startsWith(COMMENTED), 'the original text is untouched');
  assertGolden('ipam-allocate.yaml', text);
  const back = load(text);
  assert.deepEqual([...back.allocations], [...r.allocations]);
  assert.equal(allocate(back).added.length, 0);
  // A second write is a no-op; removing a virt drops its line and keeps the rest in place.
  assert.equal(writeAllocations(text, allocate(back).allocations, 'yaml'), text);
  const without = text.replace('      cache: { phys: hv1, if: tap2 }\n', '');
  const m2 = load(without);
  const r2 = allocate(m2);
  assert.deepEqual(r2.dropped, ['tenant-a/cache']);
  assert.equal(r2.allocations.get('tenant-a/web'), r.allocations.get('tenant-a/web'));
  const text2 = writeAllocations(without, r2.allocations, 'yaml');
  assert.equal(text2, without.replace(/ {2}tenant-a\/cache: .*\n/, ''));
  // A section in the middle of the file (flow or block) is replaced where it is, comments around it kept.
  const mid = '# head\nname: x\n# about allocations\nallocations: {}\n# between\nnets: {}\n';
  assert.equal(writeAllocations(mid, new Map([['a/y', '10.0.0.9'], ['a/x', '10.0.0.8']]), 'yaml'),
    '# head\nname: x\n# about allocations\nallocations:\n  a/x: 10.0.0.8\n  a/y: 10.0.0.9\n# between\nnets: {}\n');
  // Nothing left to record: the section goes.
  assert.ok(!/allocations/.test(writeAllocations(COMMENTED, new Map(), 'yaml')));
  // JSON.
  const json = dumpJson(m);
  const jtext = writeAllocations(json, r.allocations, fileFormat(json, 'm.json'));
  assert.deepEqual(JSON.parse(jtext).allocations, Object.fromEntries(r.allocations));
  assert.match(jtext, /\n {2}"allocations": \{\n {4}"tenant-a\/cache": /);
  assert.deepEqual([...load(jtext).allocations], [...r.allocations]);
  // A flow-style top level falls back to a rewrite, still correct.
  const flow = `{ name: demo, nets: { a: { ipv4: { subnet: 10.0.0.0/24 }, virts: { x: {} } } } }\n`;
  const fm = load(flow);
  const ftext = writeAllocations(flow, allocate(fm).allocations, 'yaml');
  assert.deepEqual([...load(ftext).allocations], [...allocate(fm).allocations]);
});

function allocateCli(t: { after: (fn: () => void) => void }, text: string, name = 'model.yaml') {
  const dir = mkdtempSync(join(tmpdir(), 'lsdn-ipam-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, name);
  writeFileSync(file, text);
  // The verb on its own commander program, exit codes as main() maps them.
  const runner = join(dir, 'run.mts');
  const root = new URL('../../', import.meta.url);
  writeFileSync(runner, `
import { createRequire } from 'node:module';
const { Command } = createRequire(${JSON.stringify(new URL('package.json', root).pathname)})('commander');
const { registerAllocate } = await import(${JSON.stringify(new URL('src/cli/allocate.ts', root).href)});
const { Exit } = await import(${JSON.stringify(new URL('src/cli/util.ts', root).href)});
const p = new Command('lsdn').exitOverride();
registerAllocate(p);
try { await p.parseAsync(process.argv.slice(2), { from: 'user' }); } catch (e) { if (e instanceof Exit) process.exit(e.code); throw e; }
`);
  const run = (...a: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', runner, 'allocate', ...a, file], { encoding: 'utf8', cwd: new URL('.', root).pathname });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, text: readFileSync(file, 'utf8') };
  };
  return { run, file };
}

test('lsdn allocate: --check exits 1 without writing, then allocate records, then --check exits 0', (t) => {
  const { run } = allocateCli(t, COMMENTED);
  const c1 = run('--check');
  assert.equal(c1.code, 1, c1.stderr);
  assert.equal(c1.text, COMMENTED);
  assert.match(c1.stdout, /not current.*\n {2}\+ tenant-a\/cache: 10\.0\.0\.\d+\n {2}\+ tenant-a\/web: /);
  const w = run();
  assert.equal(w.code, 0, w.stderr);
  assert.match(w.stdout, /recorded 2 allocations/);
  assert.ok(w.text.startsWith(COMMENTED));
  const c2 = run('--check');
  assert.equal(c2.code, 0, c2.stderr);
  assert.match(c2.stdout, /allocations are current \(2 recorded\)/);
  const j = run('--json', '--check');
  assert.deepEqual(JSON.parse(j.stdout).current, true);
});

test('golden: assignment of a small model', () => {
  const m = load(FULL.replace('      db:', '      cache: { phys: hv1, if: tap2, mac: "52:54:00:00:00:03" }\n      ext: { ip: "2001:db8:a::9/64" }\n      db:'));
  const lines: string[] = [];
  for (const [id, a] of [...assignAddresses(m)].sort()) {
    const fmt = (x: { ip: string; len: number; source: string }) => `${x.ip}/${x.len} ${x.source}`;
    lines.push(`${id}: v4 ${a.v4 ? fmt(a.v4) : '-'}; v6 ${a.v6.map(fmt).join(', ') || '-'}`);
  }
  lines.push(`server v4 ${serverAddress(m.net('a')!.ipv4!)}; server v6 ${serverAddress(m.net('a')!.ipv6!)}`);
  assertGolden('ipam-assign.txt', lines.join('\n') + '\n');
});
