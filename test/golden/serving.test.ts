/**
 * Golden tests of address serving (pure): the compiled dnsmasq servers (config, hosts file),
 * the public net's routing table and forwarding, and the plans that create them and change
 * them (a new virt: hosts file + SIGHUP; new options: restart; a removed net: delete).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileHost } from '../../src/compile/compile.js';
import { HostState } from '../../src/core/objects.js';
import { planChanges } from '../../src/plan/plan.js';
import { formatPlan } from '../../src/apply/format.js';
import { assertGolden } from './golden.js';
import { loadValid } from '../helpers/model.js';
import { render } from './compile.test.js';

function model(extra = '', gateway = '10.1.0.1', routed = false) {
  return loadValid(`
name: srv
settings:
  default: { type: vxlan/static }
  pub: { type: public${routed ? ', mode: routed' : ''} }
physes:
  a: { if: eth0, ip: 192.0.2.1 }
  b: { if: eth0, ip: 192.0.2.2 }
nets:
  blue:
    vid: 10
    ipv4: { subnet: 10.1.0.0/24, gateway: ${gateway}, dns: [10.1.0.53] }
    ipv6: { subnet: "2001:db8:1::/64", dns: ["2001:db8::53"] }
    virts:
      a1: { phys: a, if: tap-a1, mac: 02:00:00:00:0a:01 }
      a2: { phys: a, if: tap-a2, mac: 02:00:00:00:0a:02, ip: 10.1.0.5/24 }
      b1: { phys: b, if: tap-b1, mac: 02:00:00:00:0b:01 }
${extra}
  www:
    settings: pub
    ipv4: { subnet: 198.51.100.0/24, gateway: 198.51.100.1 }
    virts:
      w1: { phys: a, if: tap-w1, mac: 02:00:00:00:0c:01, policy: { in: drop } }
allocations:
  blue/a1: 10.1.0.11
  blue/a3: 10.1.0.13
  blue/b1: 10.1.0.12
  www/w1: 198.51.100.10
`, 'serving.yaml');
}

test('golden: address servers (DHCPv4 + SLAAC) and a public net (nat), host a', () => {
  assertGolden('serving-a.txt', render(model(), 'a'));
});

test('golden: a public net in routed mode, host a', () => {
  const state = compileHost(model('', '10.1.0.1', true), 'a', { mtu: new Map([['eth0', 1500]]) });
  const lines = state.sorted().filter((o) => o.kind === 'nft' && o.family === 'ip').map((o) => JSON.stringify(o));
  assertGolden('serving-routed-a.txt', lines.join('\n') + '\n');
});

test('golden: plans of server changes (new virt, new gateway, net removed)', () => {
  const facts = { mtu: new Map([['eth0', 1500]]) };
  const base = compileHost(model(), 'a', facts);
  const out: string[] = [];
  const step = (title: string, desired: HostState) => out.push(formatPlan(planChanges(desired, base), title));
  step('a virt added', compileHost(model('      a3: { phys: a, if: tap-a3, mac: 02:00:00:00:0a:03 }'), 'a', facts));
  step('the gateway changed', compileHost(model('', '10.1.0.2'), 'a', facts));
  const noBlue = model();
  noBlue.nets.get('blue')!.remove();
  step('net blue removed', compileHost(noBlue, 'a', facts));
  const killed = new HostState([...base.objects.values()].map((o) => (o.kind === 'dhcp' && o.name.endsWith(base.sorted().find((x) => x.kind === 'dhcp')!.name.slice(-9)) ? { ...o, running: false } : o)));
  out.push(formatPlan(planChanges(base, killed), 'dnsmasq died'));
  assert.equal(planChanges(base, base).steps.length, 0);
  assertGolden('serving-changes.txt', out.join('\n\n') + '\n');
});
