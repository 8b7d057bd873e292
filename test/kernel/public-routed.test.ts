/**
 * The public type's `routed` mode (issue 10), with real packets: the host forwards between the
 * public net's bridge (the gateway) and its uplink without masquerading, so the outside sees
 * the virt's own address. Proof by difference: while the outside has no route back to the
 * public subnet, the virt's pings get no answer (a masquerading host would make them work);
 * once the outside routes the subnet to the host, they do, and the outside reaches the virt
 * too (routed addresses are reachable from outside, unlike NAT). A private virt of the same
 * host reaches nothing outside either way.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Kernel } from '../../src/kernel/exec.js';
import { OUTSIDE_ADDR } from '../../src/lab/layout.js';
import { nftTableName } from '../../src/core/names.js';
import { isRoot } from '../helpers/netns.js';
import { servingLab } from '../helpers/serving.js';
import { pingMany } from '../helpers/typelab.js';
import { loadValid } from '../helpers/model.js';

const skip = !isRoot()
  ? 'needs root'
  : !existsSync('/usr/sbin/dnsmasq')
    ? 'needs dnsmasq (Debian dnsmasq-base; scripts/setup.sh installs it)'
    : false;
const CONTEXT = 'rtd';
const HOST_IP = '172.16.7.1';
const SUBNET = '192.168.70.0/24';
const W1 = '192.168.70.10';

const MODEL = `
name: ${CONTEXT}
settings:
  default: { type: vxlan/static }
  pub: { type: public, mode: routed }
physes:
  a: { if: eth0, ip: ${HOST_IP} }
  b: { if: eth0, ip: 172.16.7.2 }
nets:
  www:
    settings: pub
    ipv4: { subnet: ${SUBNET}, gateway: 192.168.70.1 }
    virts:
      w1: { phys: a, if: vw1, mac: "02:00:00:00:07:01" }
  blue:
    vid: 10
    ipv4: { subnet: 10.7.0.0/24, gateway: 10.7.0.1 }
    virts:
      b1: { phys: a, if: vb1, mac: "02:00:00:00:07:02" }
      b2: { phys: b, if: vb2, mac: "02:00:00:00:07:03" }
allocations:
  www/w1: ${W1}
  blue/b1: 10.7.0.11
  blue/b2: 10.7.0.12
`;

describe('public net, routed mode (lab)', { skip }, () => {
  const lab = servingLab('rtd', () => loadValid(MODEL, 'routed.yaml'));
  const ns = (id: string) => lab.layout.virtNs.get(id) as string;

  it('does not masquerade: the outside sees the virt itself, and reaches it once it routes the subnet', async () => {
    const outside = lab.layout.serving?.outsideNs as string;
    assert.ok(outside, 'the lab made no outside namespace');
    const table = await new Kernel({ netns: lab.layout.physNs.get('a') }).run('nft', ['list', 'table', 'ip', nftTableName(CONTEXT)]);
    assert.doesNotMatch(table.stdout, /masquerade/, 'routed mode must not masquerade');

    // No route back to the public subnet yet: the replies have nowhere to go.
    const before = await pingMany(ns('www/w1'), [OUTSIDE_ADDR.ip], 1);
    assert.equal(before.get(OUTSIDE_ADDR.ip), false, 'the virt reached the outside without a route back: its address was translated');

    await new Kernel({ netns: outside }).run('ip', ['route', 'add', SUBNET, 'via', HOST_IP], { mutates: true });
    const out = await pingMany(ns('www/w1'), [OUTSIDE_ADDR.ip]);
    assert.equal(out.get(OUTSIDE_ADDR.ip), true, 'the public virt cannot reach the outside through its host');
    const inbound = await pingMany(outside, [W1]);
    assert.equal(inbound.get(W1), true, 'the outside cannot reach the routed public virt');

    // A private virt of the same host still reaches nothing outside, and the outside nothing of it.
    await new Kernel({ netns: outside }).run('ip', ['route', 'add', '10.7.0.0/24', 'via', HOST_IP], { mutates: true });
    const priv = await pingMany(ns('blue/b1'), [OUTSIDE_ADDR.ip], 1);
    assert.equal(priv.get(OUTSIDE_ADDR.ip), false, 'a private virt reached the outside');
    const intoPriv = await pingMany(outside, ['10.7.0.11'], 1);
    assert.equal(intoPriv.get('10.7.0.11'), false, 'the outside reached a private virt');
  });
});
