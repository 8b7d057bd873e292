/**
 * What keeps address serving and the public type safe (pure parts): rogue servers dropped for
 * every virt of a served net, the host guard (inet input/forward), RAs without a default
 * route, the header's host tag, the server's creation order and its blocked step, doctor's
 * dnsmasq line. The kernel side is in test/kernel/addressing.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModelText } from '../../src/file/load.js';
import { validate } from '../../src/validate/validate.js';
import { compileHost } from '../../src/compile/compile.js';
import { HostState, type DhcpObject, type NftTableObject } from '../../src/core/objects.js';
import { parseHeader } from '../../src/kinds/dhcp.js';
import { createServer } from '../../src/kinds/dhcp.js';
import { planChanges } from '../../src/plan/plan.js';
import { formatDoctor, typeSupport, type KernelFeatures } from '../../src/kernel/probe.js';
import { ownedIfname } from '../../src/core/names.js';
import { virtChainName } from '../../src/core/names.js';

const MODEL = `
name: v
settings:
  default: { type: vxlan/e2e }
  pub: { type: public }
physes:
  a: { if: eth0, ip: 192.0.2.1 }
nets:
  six:
    vid: 1
    ipv6: { subnet: "fd00:1::/64" }
    virts:
      nomac: { phys: a, if: t-nomac }
  four:
    vid: 2
    ipv4: { subnet: 10.0.0.0/24 }
    virts:
      open: { phys: a, if: t-open, mac: "02:00:00:00:00:01", antiSpoof: false }
      other: { phys: a, if: t-other, mac: "02:00:00:00:00:02" }
  quiet:
    vid: 3
    virts:
      q: { phys: a, if: t-q, mac: "02:00:00:00:00:03" }
  www:
    settings: pub
    ipv4: { subnet: 198.51.100.0/24, gateway: 198.51.100.1 }
    ipv6: { subnet: "fd00:2::/64" }
    virts:
      w: { phys: a, if: t-w, mac: "02:00:00:00:00:04" }
`;

function load(text = MODEL) {
  const { model, problems } = loadModelText(text, 'review.yaml');
  assert.ok(model, JSON.stringify(problems));
  return { model, problems: [...problems, ...validate(model)] };
}

function table(state: HostState, family: string): NftTableObject {
  const t = [...state.objects.values()].find((o): o is NftTableObject => o.kind === 'nft' && o.family === family);
  assert.ok(t, `no ${family} table`);
  return t;
}

const ROGUE = ['udp sport 67 drop', 'udp sport 547 drop', 'icmpv6 type nd-router-advert drop'];

test('every virt of a served net drops DHCP/DHCPv6 answers and RAs first, without a MAC or anti-spoofing', () => {
  const { model } = load();
  const state = compileHost(model, 'a');
  const br = table(state, 'bridge');
  const out = br.chains.prerouting?.find((l) => l.includes(' vmap ')) ?? ''; // after the MSS clamp
  for (const port of ['t-nomac', 't-open', 't-other', 't-w']) assert.match(out, new RegExp(`"${port}" : jump vout-`), `${port} has no out chain`);
  const quiet = virtChainName('v', 'quiet', 'q', 'out');
  assert.ok(!br.chains[quiet]?.some((l) => ROGUE.includes(l)), 'a virt of an unserved net drops server answers');
  for (const [name, lines] of Object.entries(br.chains)) {
    if (!name.startsWith('vout-') || name === quiet) continue;
    assert.deepEqual(lines.slice(0, 3), ROGUE, `${name} does not start with the rogue-server drops`);
  }
  // The receiving side: answers and RAs reach the virts only from the net's server port.
  const fwd = br.chains.forward ?? [];
  const srv4 = ownedIfname('v', 'd', 'four');
  assert.ok(fwd.includes(`iifname != "${srv4}" oifname { "t-open", "t-other" } udp sport { 547, 67 } drop`), fwd.join('\n'));
  assert.ok(fwd.includes(`iifname != "${srv4}" oifname { "t-open", "t-other" } icmpv6 type nd-router-advert drop`), fwd.join('\n'));
});

test('the host guard: bridges deliver nothing to the host but a public gateway ping; private nets are not routed', () => {
  const { model } = load();
  const inet = table(compileHost(model, 'a'), 'inet');
  const [six, four, quiet, www] = ['six', 'four', 'quiet', 'www'].map((n) => ownedIfname('v', 'b', n)) as [string, string, string, string];
  const input = inet.chains.input ?? [];
  assert.equal(input[0], 'type filter hook input priority filter; policy accept;');
  assert.ok(input.includes(`iifname "${www}" ip daddr 198.51.100.1 icmp type echo-request accept`));
  assert.ok(input.includes(`iifname "${www}" ct state established,related accept`));
  const last = input.at(-1) ?? '';
  for (const b of [six, four, quiet, www]) assert.ok(last.includes(`"${b}"`) && last.endsWith(' drop'), last);
  const forward = inet.chains.forward ?? [];
  for (const b of [six, four, quiet]) assert.ok(forward.includes(`iifname "${b}" oifname != "${b}" drop`), forward.join('\n'));
  assert.ok(!forward.some((l) => l.includes(www)), 'the public bridge is dropped from forwarding');
});

test('router advertisements never announce a default route; ipv6 on a public net is a warning', () => {
  const { model, problems } = load();
  const www = [...compileHost(model, 'a').objects.values()].find((o): o is DhcpObject => o.kind === 'dhcp' && o.alias.endsWith(':www:dhcp'));
  assert.ok(www);
  assert.match(www.config, /^ra-param=lsdn0,mtu:1500,60,0$/m);
  const p = problems.find((x) => x.code === 'public-ipv6-local');
  assert.ok(p, JSON.stringify(problems.map((x) => x.code)));
  assert.equal(p.severity, 'warning');
  assert.equal(p.object, 'net www');
  assert.ok(p.loc?.line, 'not located');
  assert.ok(!problems.some((x) => x.code === 'public-ipv6-local' && x.object !== 'net www'));
});

test('the server\'s config (with the host tag) is written by `netns add`; a taken veth name blocks the step', () => {
  const { model } = load();
  const state = compileHost(model, 'a', { hostTag: 'lab-x' });
  const s = [...state.objects.values()].find((o): o is DhcpObject => o.kind === 'dhcp');
  assert.ok(s);
  assert.equal(parseHeader(s.config)?.host, 'lab-x');
  const first = createServer(s)[0];
  assert.deepEqual(first, { tool: 'svc', line: `netns add ${s.name}`, input: s.config });
  const desired = new HostState();
  desired.add(s);
  const blocked = planChanges(desired, new HostState(), { links: new Set([s.port]) });
  assert.equal(blocked.steps.length, 1);
  assert.match(blocked.steps[0]?.blocked ?? '', new RegExp(`interface ${s.port} exists but is not marked as lsdn's`));
  // A server lsdn reads (its namespace is marked) is recreated, not blocked.
  const actual = new HostState();
  actual.add({ ...s, port: '', bridge: '', alias: '', mtu: 0, up: false, running: false });
  const re = planChanges(desired, actual, { links: new Set([s.port]) });
  assert.equal(re.steps[0]?.action, 'recreate');
  assert.equal(re.steps[0]?.blocked, undefined);
});

test('doctor reports whether dnsmasq is installed', () => {
  const f: KernelFeatures = {
    links: {}, qdiscs: {}, classifiers: {}, actions: {},
    nft: { installed: true, bridgeFamily: true, netdevFamily: true }, bridgeVlanFiltering: false,
    programs: { dnsmasq: false },
  };
  assert.match(formatDoctor(f, typeSupport(f)), /dnsmasq\s+no {2}\(needed to serve addresses/);
  f.programs = { dnsmasq: true };
  assert.match(formatDoctor(f, typeSupport(f)), /dnsmasq\s+yes\n/);
});
