/**
 * Golden traces (src/trace): the path and verdict of frames for every network type (a virt on
 * the same host, on another host, broadcast, isolation between nets sharing MACs and subnets),
 * every kind of firewall verdict, rate shapers and the public net (gateway, NAT, routed, its
 * per-host segments). The trace walks the compiled host states, so these change when the
 * datapath does: review the diff, then UPDATE_GOLDEN=1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { NETWORK_TYPES } from '../../src/types/registry.js';
import type { Netmodel } from '../../src/model/netmodel.js';
import { trace, type TraceRequest } from '../../src/trace/trace.js';
import { formatTrace } from '../../src/trace/format.js';
import { UsageError } from '../../src/core/errors.js';
import { assertGolden } from './golden.js';
import { loadValid } from '../helpers/model.js';

function traces(model: Netmodel, reqs: TraceRequest[]): string {
  return reqs.map((r) => {
    const t = trace(model, r);
    const flags = [r.proto && `--proto ${r.proto}`, r.dport !== undefined && `--dport ${r.dport}`, r.srcIp && `--src-ip ${r.srcIp}`, r.srcMac && `--src-mac ${r.srcMac}`].filter(Boolean).join(' ');
    return `$ lsdn trace FILE ${r.from} ${r.to}${flags ? ` ${flags}` : ''}\n${formatTrace(t)}`;
  }).join('\n');
}

/** Three hosts, two nets of one type sharing a subnet (and a MAC: blue/a1 and red/a3). */
function typeModel(type: string): string {
  const settings = type === 'vxlan/mcast' ? `{ type: ${type}, mcastIp: 239.1.1.1 }` : `{ type: ${type} }`;
  const direct = type === 'direct';
  const pub = type === 'public';
  const subnet = pub ? '\n    ipv4: { subnet: 10.10.0.0/24, gateway: 10.10.0.1 }' : '';
  const ip = (n: number) => (pub ? `10.10.0.${n}/24` : `10.0.0.${n}/24`);
  return `
name: golden
settings:
  default: ${settings}
physes:
  a: { if: eth0, ip: 192.0.2.1 }
  b: { if: eth0, ip: 192.0.2.2 }
  c: { if: eth0, ip: 192.0.2.3 }
nets:
  blue:
    vid: 10${subnet}
    virts:
      a1: { phys: a, if: tap-a1, mac: 02:00:00:00:0a:01, ip: ${ip(11)} }
      a2: { phys: a, if: tap-a2, mac: 02:00:00:00:0a:02, ip: ${ip(12)} }
      b1: { phys: b, if: tap-b1, mac: 02:00:00:00:0b:01, ip: ${ip(21)} }
      c1: { phys: c, if: tap-c1, mac: 02:00:00:00:0c:01, ip: ${ip(31)} }
${direct ? '' : `  red:
    vid: 20${pub ? '\n    ipv4: { subnet: 10.20.0.0/24, gateway: 10.20.0.1 }' : ''}
    virts:
      a3: { phys: a, if: tap-a3, mac: 02:00:00:00:0a:01, ip: ${pub ? '10.20.0.11/24' : ip(11)} }
      b2: { phys: b, if: tap-b2, mac: 02:00:00:00:0b:02, ip: ${pub ? '10.20.0.22/24' : ip(22)} }
`}`;
}

for (const type of NETWORK_TYPES) {
  test(`golden trace: ${type}`, () => {
    const m = loadValid(typeModel(type), 'golden.yaml');
    const pub = type === 'public';
    const reqs: TraceRequest[] = [
      { from: 'blue/a1', to: 'blue/a2' },
      { from: 'blue/a1', to: 'blue/b1' },
      { from: 'blue/a2', to: 'ff:ff:ff:ff:ff:ff' },
    ];
    if (type !== 'direct') reqs.push({ from: 'blue/b1', to: 'red/a3' }, { from: 'red/b2', to: pub ? '10.20.0.11' : '10.0.0.11' });
    const text = traces(m, reqs);
    assertGolden(`trace-type-${type.replace('/', '-')}.txt`, text);
    // The verdicts, independently of the text: within a host always; across hosts unless public.
    assert.equal(trace(m, { from: 'blue/a1', to: 'blue/a2' }).verdict, 'delivered');
    assert.equal(trace(m, { from: 'blue/a1', to: 'blue/b1' }).verdict, pub ? 'dropped' : 'delivered');
    if (type !== 'direct') assert.equal(trace(m, { from: 'blue/b1', to: 'red/a3' }).verdict, 'dropped');
  });
}

const FIREWALL = `
name: fw
settings: { default: { type: vxlan/static } }
physes:
  a: { if: eth0, ip: 192.0.2.1 }
  b: { if: eth0, ip: 192.0.2.2 }
nets:
  blue:
    virts:
      web:
        phys: a
        if: tap-web
        mac: 02:00:00:00:00:01
        ip: 10.0.0.1/24
        policy: { in: drop }
        rules:
          - { dir: in, priority: 10, action: accept, proto: tcp, dstPort: 443 }
          - { dir: in, priority: 20, action: accept, proto: icmp, icmpType: echo-request, srcIp: 10.0.0.0/28 }
          - { dir: in, action: drop, proto: tcp, dstPort: 22, priority: 5 }
        rate: { in: { avg: 10mbit, burst: 64kb } }
      db:
        phys: b
        if: tap-db
        mac: 02:00:00:00:00:02
        ip: 10.0.0.2/24
        stateful: true
        policy: { out: drop }
        rules:
          - { dir: out, priority: 10, action: accept, proto: tcp, dstPort: 443, dstIp: 10.0.0.1 }
        rate: { out: { avg: 1mbit, burst: 16kb } }
      ops:
        phys: b
        if: tap-ops
        mac: 02:00:00:00:00:03
        ip: 10.0.0.40/24
    vid: 10
`;

test('golden trace: every kind of firewall verdict, rate shapers', () => {
  const m = loadValid(FIREWALL, 'fw.yaml');
  const reqs: TraceRequest[] = [
    { from: 'blue/db', to: 'blue/web', proto: 'tcp', dport: 443 }, // rule 1 of web accepts (after db's rule 1)
    { from: 'blue/db', to: 'blue/web', proto: 'tcp', dport: 22 }, // db's default drop (out)
    { from: 'blue/ops', to: 'blue/web', proto: 'tcp', dport: 22 }, // rule 3 of web drops (priority 5, before the others)
    { from: 'blue/ops', to: 'blue/web' }, // icmp from outside 10.0.0.0/28: web's default (in: drop)
    { from: 'blue/ops', to: 'blue/db', proto: 'tcp', dport: 5432 }, // db is stateful: a new inbound connection
    { from: 'blue/ops', to: 'blue/web', srcIp: '10.0.0.9' }, // anti-spoofing of ops: IP
    { from: 'blue/ops', to: 'blue/web', srcMac: '02:00:00:00:00:99' }, // anti-spoofing of ops: MAC
    { from: 'blue/ops', to: 'blue/web', proto: 'arp' }, // ARP passes web's drop default
    { from: 'blue/ops', to: 'blue/db', proto: 'udp', dport: 53 },
  ];
  assertGolden('trace-firewall.txt', traces(m, reqs));
  const verdicts = reqs.map((r) => trace(m, r));
  assert.deepEqual(verdicts.map((v) => v.verdict), ['delivered', 'dropped', 'dropped', 'dropped', 'dropped', 'dropped', 'dropped', 'delivered', 'dropped']);
  assert.match(verdicts[1]!.reason, /default of virt blue\/db \(policy out: drop\)/);
  assert.match(verdicts[2]!.reason, /rule 3 of virt blue\/web \(in\)/);
  assert.match(verdicts[3]!.reason, /default of virt blue\/web \(policy in: drop\)/);
  assert.match(verdicts[4]!.reason, /stateful filtering of virt blue\/db: a new inbound connection/);
  assert.match(verdicts[5]!.reason, /anti-spoofing of virt blue\/ops because the IPv4 source is not the virt's \(10\.0\.0\.40\)/);
  assert.match(verdicts[6]!.reason, /anti-spoofing of virt blue\/ops because the Ethernet source is not the virt's MAC/);
  // The deciding line is the compiled one, with its origin.
  const hop = verdicts[2]!.hops.find((h) => h.origin?.kind === 'rule');
  assert.equal(hop?.line, 'tcp dport 22 drop');
  assert.equal(hop?.origin?.rule, 3);
});

const PUBLIC = `
name: pub
settings:
  default: { type: vxlan/e2e }
  nat: { type: public }
  routed: { type: public, mode: routed, uplink: up0 }
physes:
  a: { if: eth0, ip: 192.0.2.1 }
  b: { if: eth0, ip: 192.0.2.2 }
nets:
  internet:
    settings: nat
    ipv4: { subnet: 198.51.100.0/24, gateway: 198.51.100.1 }
    virts:
      p1: { phys: a, if: pub-1, mac: 02:00:00:00:01:01, ip: 198.51.100.11/24 }
      p2: { phys: b, if: pub-2, mac: 02:00:00:00:01:02, ip: 198.51.100.12/24 }
      p3: { phys: a, if: pub-3, mac: 02:00:00:00:01:03, ip: 198.51.100.13/24, policy: { out: drop } }
  dmz:
    settings: routed
    ipv4: { subnet: 203.0.113.0/24, gateway: 203.0.113.1 }
    virts:
      d1: { phys: a, if: dmz-1, mac: 02:00:00:00:02:01, ip: 203.0.113.11/24 }
  tenant:
    vid: 100
    ipv4: { subnet: 10.0.0.0/24, gateway: 10.0.0.1 }
    virts:
      t1: { phys: a, if: ten-1, mac: 02:00:00:00:03:01, ip: 10.0.0.11/24 }
      t2: { phys: b, if: ten-2, mac: 02:00:00:00:03:02, ip: 10.0.0.12/24 }
`;

test('golden trace: the public net (gateway, NAT, routed, one segment per host) and a private net', () => {
  const m = loadValid(PUBLIC, 'pub.yaml');
  const reqs: TraceRequest[] = [
    { from: 'internet/p1', to: '8.8.8.8' },
    { from: 'internet/p1', to: '198.51.100.1' },
    { from: 'internet/p1', to: '198.51.100.1', proto: 'tcp', dport: 22 },
    { from: 'internet/p1', to: 'internet/p2' },
    { from: 'internet/p1', to: 'internet/p3' },
    { from: 'internet/p3', to: '8.8.8.8' },
    { from: 'dmz/d1', to: '8.8.8.8', proto: 'tcp', dport: 443 },
    { from: 'tenant/t1', to: '8.8.8.8' },
    { from: 'internet/p1', to: 'tenant/t1' },
  ];
  assertGolden('trace-public.txt', traces(m, reqs));
  assert.deepEqual(reqs.map((r) => trace(m, r).verdict), ['delivered', 'delivered', 'dropped', 'dropped', 'delivered', 'dropped', 'delivered', 'dropped', 'dropped']);
});

test('golden trace: the bundled example', () => {
  const m = loadValid(readFileSync(new URL('../../examples/cluster.yaml', import.meta.url), 'utf8'), 'cluster.yaml');
  const reqs: TraceRequest[] = [
    { from: 'tenant-a/web', to: 'tenant-a/db' },
    { from: 'tenant-b/web', to: 'tenant-b/api', proto: 'tcp', dport: 443 },
    { from: 'tenant-a/web', to: '10.0.0.12' },
    { from: 'tenant-b/web', to: '02:0b:00:00:00:09' },
    { from: 'tenant-b/web', to: 'ff:ff:ff:ff:ff:ff' },
  ];
  assertGolden('trace-example.txt', traces(m, reqs));
});

test('trace: an ICMP type (a ping\'s echo-reply) is judged by the rules that match it', () => {
  const m = loadValid(FIREWALL, 'fw.yaml');
  // web pings ops: its request passes (web has no out rules, ops no in rules); ops's answer is
  // no echo-request from 10.0.0.0/28, so web's rule 2 does not accept it and web's default
  // (in: drop; web is not stateful) drops it: the ping is not answered.
  const req = trace(m, { from: 'blue/web', to: 'blue/ops' });
  assert.equal(req.verdict, 'delivered');
  assert.match(req.packet, /^ICMP echo-request 10\.0\.0\.1 -> 10\.0\.0\.40$/);
  const rep = trace(m, { from: 'blue/ops', to: 'blue/web', icmpType: 'echo-reply' });
  assert.equal(rep.verdict, 'dropped');
  assert.match(rep.packet, /^ICMP echo-reply 10\.0\.0\.40 -> 10\.0\.0\.1$/);
  assert.match(rep.reason, /default of virt blue\/web \(policy in: drop\)/);
  assert.equal(trace(m, { from: 'blue/ops', to: 'blue/web', icmpType: 0 }).packet, rep.packet);
  assert.match(trace(m, { from: 'blue/db', to: 'blue/web', icmpType: 42 }).packet, /ICMP type 42 /);
  assert.throws(() => trace(m, { from: 'blue/db', to: 'blue/web', icmpType: 'nope' }), /"nope" is no ICMP type/);
  assert.throws(() => trace(m, { from: 'blue/db', to: 'blue/web', proto: 'tcp', icmpType: 0 }), /ICMP type is for --proto icmp/);
});

test('trace: requests that name nothing traceable are usage errors', () => {
  const m = loadValid(FIREWALL, 'fw.yaml');
  assert.throws(() => trace(m, { from: 'blue/nope', to: 'blue/web' }), UsageError);
  assert.throws(() => trace(m, { from: 'blue/web', to: 'blue/nope' }), /no virt "blue\/nope"/);
  assert.throws(() => trace(m, { from: 'blue/web', to: 'what' }), /neither a virt/);
  assert.throws(() => trace(m, { from: 'blue/web', to: 'blue/db', srcIp: 'x' }), UsageError);
});

test('trace: every pair of virts of every example traces, and every pair across nets is dropped', () => {
  const dir = new URL('../../examples/', import.meta.url);
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml'))) {
    const m = loadValid(readFileSync(new URL(f, dir), 'utf8'), f);
    const vs = m.virts().filter((v) => v.phys && v.if);
    for (const a of vs) {
      for (const b of vs) {
        if (a === b) continue;
        const r = trace(m, { from: a.id, to: b.id });
        assert.ok(r.hops.length > 0 && r.reason, `${f}: ${a.id} -> ${b.id}`);
        if (a.net !== b.net) assert.equal(r.verdict, 'dropped', `${f}: ${a.id} -> ${b.id} crosses nets`);
      }
    }
  }
});
