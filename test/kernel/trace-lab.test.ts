/**
 * `lsdn trace` agrees with real packets (issue 21, item 4): one lab with several network types
 * (vxlan/e2e, vxlan/static and vxlan/mcast sharing one subnet, so every cross-net ping is
 * on-link and only isolation stops it; a direct net on its own hosts; the public net) and a
 * firewall of every verdict kind on the e2e net. labCheck pings every pair of virts from their
 * namespaces; for each pair pinged, the trace of the echo request (FROM -> the address pinged)
 * and of its answer (an echo-reply back, from that address) must both say "delivered" exactly
 * when the ping was answered.
 *
 * Two kinds of pair are not compared, and counted: those labCheck skips (an address held twice,
 * another host's segment of the public net), and a public virt's ping of a private address
 * off its subnet, whose trace ends "outside" (routed out of the uplink: the lab's underlay has
 * nobody beyond it, so no answer says nothing about the trace).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { existsSync } from 'node:fs';
import { labCheck, formatMatrix } from '../../src/lab/check.js';
import { assignAddresses } from '../../src/ipam/ipam.js';
import { trace, type TraceResult } from '../../src/trace/trace.js';
import { UsageError } from '../../src/core/errors.js';
import { isRoot } from '../helpers/netns.js';
import { loadValid } from '../helpers/model.js';
import { servingLab } from '../helpers/serving.js';

const skip = !isRoot()
  ? 'needs root'
  : !existsSync('/usr/sbin/dnsmasq')
    ? 'needs dnsmasq (Debian dnsmasq-base; scripts/setup.sh installs it)'
    : false;

const MODEL = `
name: tla
settings:
  default: { type: vxlan/e2e }
  st: { type: vxlan/static, port: 4790 }
  mc: { type: vxlan/mcast, mcastIp: 239.1.9.1 }
  dr: { type: direct }
  pub: { type: public }
physes:
  a: { if: eth0, ip: 172.16.9.1 }
  b: { if: eth0, ip: 172.16.9.2 }
  c: { if: eth0, ip: 172.16.9.3 }
  d: { if: eth0, ip: 172.16.9.4 }
nets:
  e:
    vid: 1
    virts:
      e1: { phys: a, if: ve1, mac: "02:00:00:09:01:01", ip: [10.9.0.1/24, fd09::1/64],
            rules: [ { dir: in, priority: 1, action: drop, srcIp: 10.9.0.3 } ] }
      e2: { phys: a, if: ve2, mac: "02:00:00:09:01:02", ip: 10.9.0.2/24, policy: { in: drop },
            rules: [ { dir: in, priority: 1, action: accept, srcIp: 10.9.0.1 } ] }
      e3: { phys: b, if: ve3, mac: "02:00:00:09:01:03", ip: [10.9.0.3/24, fd09::3/64],
            rules: [ { dir: out, priority: 1, action: drop, dstIp: 10.9.0.4 } ] }
      e4: { phys: b, if: ve4, mac: "02:00:00:09:01:04", ip: 10.9.0.4/24,
            rules: [ { dir: in, priority: 1, action: drop, proto: icmp, icmpType: echo-request } ] }
      e5: { phys: b, if: ve5, mac: "02:00:00:09:01:05", ip: [10.9.0.5/24, fd09::5/64],
            rules: [ { dir: in, priority: 1, action: drop, proto: icmpv6, srcIp: fd09::1 } ] }
  s:
    vid: 2
    settings: st
    virts:
      s1: { phys: a, if: vs1, mac: "02:00:00:09:02:01", ip: 10.9.0.11/24 }
      s2: { phys: b, if: vs2, mac: "02:00:00:09:02:02", ip: 10.9.0.12/24 }
      s3: { phys: b, if: vs3, mac: "02:00:00:09:02:03", ip: 10.9.0.13/24,
            rules: [ { dir: in, priority: 1, action: drop, srcMac: "02:00:00:09:02:01" } ] }
  m:
    vid: 3
    settings: mc
    virts:
      m1: { phys: a, if: vm1, mac: "02:00:00:09:03:01", ip: 10.9.0.21/24 }
      m2: { phys: b, if: vm2, mac: "02:00:00:09:03:02", ip: 10.9.0.22/24 }
  dn:
    settings: dr
    physes: [c, d]
    virts:
      d1: { phys: c, if: vd1, mac: "02:00:00:09:04:01", ip: 10.9.0.31/24 }
      d2: { phys: d, if: vd2, mac: "02:00:00:09:04:02", ip: 10.9.0.32/24, policy: { out: drop } }
  www:
    settings: pub
    ipv4: { subnet: 192.168.90.0/24, gateway: 192.168.90.1 }
    virts:
      w1: { phys: a, if: vw1, mac: "02:00:00:09:05:01" }
      w2: { phys: a, if: vw2, mac: "02:00:00:09:05:02" }
      w3: { phys: b, if: vw3, mac: "02:00:00:09:05:03" }
allocations:
  www/w1: 192.168.90.11
  www/w2: 192.168.90.12
  www/w3: 192.168.90.13
`;

function bare(prefix: string): string {
  return prefix.split('/')[0] as string;
}

describe('trace agrees with real pings (lab: vxlan/e2e, vxlan/static, vxlan/mcast, direct, public, a firewall)', { skip }, () => {
  const lab = servingLab('trl', () => loadValid(MODEL, 'trace-lab.yaml'));

  it('every pinged pair: answered exactly when the traces of the request and its reply say delivered', async () => {
    const { model, layout } = lab;
    const addressing = assignAddresses(model);
    const report = await labCheck(model, layout, { retries: 2 });
    const disagree: string[] = [];
    const seen = { compared: 0, answered: 0, dropped: 0, skipped: 0, outside: 0, noFamily: 0, droppedByRule: 0, isolated: 0, replyOnly: 0 };
    for (const p of report.pairs) {
      if (p.skipped) {
        seen.skipped++;
        continue;
      }
      const fromIps = (layout.virtIps.get(p.from) ?? []).map(bare);
      const v6 = p.toIp.includes(':');
      const back = fromIps.find((ip) => ip.includes(':') === v6);
      let req: TraceResult;
      try {
        req = trace(model, { from: p.from, to: p.toIp, proto: 'icmp' }, addressing);
      } catch (e) {
        // A source without an address of the target's family: trace refuses (nothing to send from).
        if (!(e instanceof UsageError) || !/has no IP address of a common family/.test(e.message)) throw e;
        assert.equal(back, undefined, e.message);
        seen.noFamily++;
        if (p.reachable) disagree.push(`${p.from} -> ${p.to} (${p.toIp}): ping answered, trace refused: ${e.message}`);
        continue;
      }
      const endsOutside = req.verdict === 'delivered' && req.hops.at(-1)?.host === 'outside';
      if (endsOutside) {
        seen.outside++;
        continue;
      }
      let traced = req.verdict === 'delivered';
      let why = req.reason;
      if (traced) {
        assert.ok(back, `${p.from} has no address of ${p.toIp}'s family, yet its ping of it was traced delivered`);
        const rep = trace(model, { from: p.to, to: back, proto: 'icmp', icmpType: 'echo-reply', srcIp: p.toIp }, addressing);
        traced = rep.verdict === 'delivered';
        if (!traced) {
          why = `the reply: ${rep.reason}`;
          seen.replyOnly++;
        }
      }
      seen.compared++;
      if (p.reachable) seen.answered++;
      else seen.dropped++;
      if (!traced && /rule \d+|default of virt/.test(why)) seen.droppedByRule++;
      if (!traced && /isolated/.test(why)) seen.isolated++;
      if (traced !== p.reachable) disagree.push(`${p.from} -> ${p.to} (${p.toIp}): ping ${p.reachable ? 'answered' : 'unanswered'}, trace ${traced ? 'delivered' : `dropped: ${why}`}`);
    }
    console.log(`# trace vs ping: ${JSON.stringify(seen)}`);
    assert.deepEqual(disagree, [], `trace and ping disagree:\n${disagree.join('\n')}\n${formatMatrix(report, layout)}`);
    // The scenario really holds each kind: answered pings, firewall drops (a request's and a
    // reply's), isolation between nets on one subnet.
    assert.ok(seen.answered >= 20, `answered: ${seen.answered}`);
    assert.ok(seen.droppedByRule >= 8, `dropped by a rule or default: ${seen.droppedByRule}`);
    assert.ok(seen.replyOnly >= 3, `dropped on the reply only: ${seen.replyOnly}`);
    assert.ok(seen.isolated >= 50, `isolated: ${seen.isolated}`);
  });
});
