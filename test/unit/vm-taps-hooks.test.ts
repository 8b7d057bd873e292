/**
 * Taps and hooks (pure parts):
 *   - tap owners compare as numeric ids (`user: 0` and `root` are one owner): src/kinds/tap.ts;
 *   - a tap no longer wanted is not deleted while a VM holds it (except by destroy);
 *   - the hook refuses a virt the net's address server does not know yet: src/vm/serving.ts;
 *   - validation's address assignment is handed to the compiler (computed once per plan).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelText } from '../../src/file/load.js';
import { compileHost } from '../../src/compile/compile.js';
import { HostState, type DhcpObject, type NftTableObject, type TapObject } from '../../src/core/objects.js';
import { planChanges } from '../../src/plan/plan.js';
import { validate, validateWithAddressing } from '../../src/validate/validate.js';
import { assignAddresses } from '../../src/ipam/ipam.js';
import { tapFromKernel } from '../../src/kinds/tap.js';
import type { IpLink } from '../../src/kinds/iproute.js';
import { normalizeTapOwners, ownerId, parseIdFile, type OwnerIds } from '../../src/kinds/tap.js';
import { readOwnerIds } from '../../src/kernel/owners.js';
import { hostsFilePath, serverOfBridge, servingGaps } from '../../src/vm/serving.js';
import { ownedIfname } from '../../src/core/names.js';
import type { Netmodel } from '../../src/model/netmodel.js';
import { assertGolden } from '../golden/golden.js';

function load(text: string): Netmodel {
  const { model, problems } = loadModelText(text, 'review.yaml');
  assert.ok(model, JSON.stringify(problems));
  assert.deepEqual(problems.filter((p) => p.severity === 'error'), []);
  return model;
}

const PASSWD = 'root:x:0:0:root:/root:/bin/bash\n# a comment\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nlibvirt-qemu:x:64055:108::/var/lib/libvirt:/usr/sbin/nologin\nroot:x:7:7:dup:/:/bin/sh\n+ldap\n';
const GROUP = 'root:x:0:\nkvm:x:108:libvirt-qemu\nnogroup:x:65534:\n';
const OWNERS: OwnerIds = { users: parseIdFile(PASSWD), groups: parseIdFile(GROUP) };

const TAPS = (user: string, group: string) => `
name: rv
settings: { default: { type: vxlan/static } }
physes: { a: { if: eth0, ip: 192.0.2.1 } }
nets:
  web:
    vid: 10
    virts:
      vm1: { phys: a, if: vm1-tap, mac: 52:54:00:00:00:01, tap: { user: ${user}, group: ${group} } }
      vm2: { phys: a, if: vm2-tap, mac: 52:54:00:00:00:02, tap: true }
`;
const FACTS = { mtu: new Map([['eth0', 1500]]) };

/** The actual state after an apply of `model`, with the tap as iproute2 prints it (user/group by name). */
function appliedWithKernelNames(model: Netmodel, user: string, group: string): HostState {
  const desired = compileHost(model, 'a', FACTS);
  return new HostState([...desired.objects.values()].map((o) => {
    if (o.kind !== 'tap' || o.name !== 'vm1-tap') return o;
    const l: IpLink = { ifindex: 9, ifname: o.name, ifalias: o.alias, flags: ['UP'], linkinfo: { info_kind: 'tun', info_data: { type: 'tap', user, group, multi_queue: false, vnet_hdr: true } } } as IpLink;
    return tapFromKernel(l);
  }));
}

describe('tap owners as numeric ids', () => {
  it('parses passwd and group files (first entry of a name wins; comments and NIS lines skipped)', () => {
    assert.deepEqual([...OWNERS.users], [['root', 0], ['nobody', 65534], ['libvirt-qemu', 64055]]);
    assert.deepEqual([...OWNERS.groups], [['root', 0], ['kvm', 108], ['nogroup', 65534]]);
    assert.equal(ownerId(0, OWNERS.users), '0');
    assert.equal(ownerId('007', OWNERS.users), '7');
    assert.equal(ownerId('libvirt-qemu', OWNERS.users), '64055');
    assert.equal(ownerId('ldap-only', OWNERS.users), 'ldap-only', 'unknown to the files: compared as written');
    const dir = mkdtempSync(join(tmpdir(), 'lsdn-etc-'));
    try {
      writeFileSync(join(dir, 'passwd'), PASSWD);
      assert.deepEqual(readOwnerIds(dir).users.get('nobody'), 65534);
      assert.equal(readOwnerIds(dir).groups.size, 0, 'no group file: no groups');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('user: 0 / group: 0 is no change when iproute2 prints "root" (it used to recreate the tap on every apply)', () => {
    const model = load(TAPS('0', '0'));
    const actual = appliedWithKernelNames(model, 'root', 'root');
    // Without the host's users, the numbers and the names differ: the old behaviour.
    assert.equal(planChanges(compileHost(model, 'a', FACTS), actual).steps.find((s) => s.key === 'tap vm1-tap')?.action, 'recreate');
    // With them (what planHost and the hooks pass), both sides are ids: nothing to do.
    const desired = compileHost(model, 'a', { ...FACTS, owners: OWNERS });
    assert.equal((desired.get('tap vm1-tap') as TapObject).user, '0');
    assert.deepEqual(planChanges(desired, normalizeTapOwners(actual, OWNERS)).steps, []);
    assert.equal((actual.get('tap vm1-tap') as TapObject).user, 'root', 'the read state itself is not changed');
  });

  it('names in the model, numbers from the kernel (an id without a name here), and a real change still recreates', () => {
    const model = load(TAPS('libvirt-qemu', 'kvm'));
    const desired = compileHost(model, 'a', { ...FACTS, owners: OWNERS });
    assert.deepEqual(planChanges(desired, normalizeTapOwners(appliedWithKernelNames(model, '64055', '108'), OWNERS)).steps, []);
    assert.deepEqual(planChanges(desired, normalizeTapOwners(appliedWithKernelNames(model, 'libvirt-qemu', 'kvm'), OWNERS)).steps, []);
    const steps = planChanges(desired, normalizeTapOwners(appliedWithKernelNames(model, 'nobody', 'kvm'), OWNERS)).steps;
    const tap = steps.find((s) => s.key === 'tap vm1-tap');
    assert.equal(tap?.action, 'recreate');
    assert.deepEqual(tap?.changes, ['user 65534 -> 64055']);
    assert.ok(tap?.commands.some((c) => c.line === 'tuntap add dev vm1-tap mode tap user 64055 group 108 vnet_hdr'), JSON.stringify(tap?.commands));
  });
});

describe('a tap no longer wanted while a VM holds it', () => {
  const model = load(TAPS('0', '0'));
  const desired = compileHost(model, 'a', FACTS);
  /** `tap:` removed from vm1: its interface is adopted (the hypervisor's) from now on. */
  const adopted = load(TAPS('0', '0').replace(', tap: { user: 0, group: 0 }', ''));
  const want = compileHost(adopted, 'a', FACTS);
  const running = new HostState([...desired.objects.values()].map((o) => (o.kind === 'tap' && o.name === 'vm1-tap' ? { ...o, attached: true } : o)));
  const links = new Set(['eth0', 'vm1-tap', 'vm2-tap', ...[...desired.objects.values()].flatMap((o) => (o.kind === 'link' ? [o.name] : []))]);

  it('is not deleted: the step is blocked and the VM stays wired', () => {
    assert.equal(want.get('tap vm1-tap'), undefined);
    const steps = planChanges(want, running, { links }).steps;
    assertGolden('vm-tap-held.txt', steps.map((s) => JSON.stringify(s)).join('\n') + '\n');
    assert.equal(steps.length, 1, JSON.stringify(steps));
    assert.equal(steps[0]?.key, 'tap vm1-tap');
    assert.equal(steps[0]?.action, 'delete');
    assert.deepEqual(steps[0]?.commands, []);
    assert.match(steps[0]?.blocked ?? '', /running VM holds it/);
  });

  it('is deleted once the VM has stopped; what hangs on the interface waits for the hypervisor\'s', () => {
    const stopped = new HostState([...running.objects.values()].map((o) => (o.kind === 'tap' ? { ...o, attached: false } : o)));
    const steps = planChanges(want, stopped, { links }).steps;
    const del = steps.find((s) => s.key === 'tap vm1-tap');
    assert.deepEqual(del?.commands.map((c) => c.line), ['link del dev vm1-tap']);
    assert.equal(del?.blocked, undefined);
    // The port, its entry and flags are not re-made on a deleted interface: they wait for it.
    const port = steps.find((s) => s.key === 'port vm1-tap');
    assert.match(port?.blocked ?? '', /interface vm1-tap does not exist/);
    for (const s of steps) if (s.key !== 'tap vm1-tap') assert.ok(s.blocked, `${s.key} runs on a deleted tap`);
    // Without host facts too (the planner alone).
    assert.match(planChanges(want, stopped).steps.find((s) => s.key === 'port vm1-tap')?.blocked ?? '', /does not exist/);
  });

  it('destroy deletes it anyway', () => {
    const steps = planChanges(new HostState(), running, { links, destroy: true }).steps;
    const del = steps.find((s) => s.key === 'tap vm1-tap');
    assert.deepEqual(del?.commands.map((c) => c.line), ['link del dev vm1-tap']);
    assert.equal(steps.filter((s) => s.blocked).length, 0);
    // An apply of an empty model does not.
    assert.match(planChanges(new HostState(), running, { links }).steps.find((s) => s.key === 'tap vm1-tap')?.blocked ?? '', /running VM/);
  });
});

const SERVED = (extra: string) => `
name: rv
settings: { default: { type: vxlan/static } }
physes: { a: { if: eth0, ip: 192.0.2.1 } }
nets:
  web:
    vid: 10
    ipv4: { subnet: 10.5.0.0/24, gateway: 10.5.0.1 }
    virts:
      old: { phys: a, if: vold, mac: 02:00:00:00:05:01, ip: 10.5.0.11/24 }
${extra}
`;

describe('the hook refuses a virt its net\'s address server does not know yet', () => {
  // A new virt with no firewall chains of its own (no anti-spoofing, no rules).
  const before = load(SERVED(''));
  const after = load(SERVED('      new: { phys: a, if: vnew, mac: 02:00:00:00:05:02, ip: 10.5.0.12/24, antiSpoof: false }'));
  const bridge = ownedIfname('rv', 'b', 'web');
  const last = compileHost(before, 'a', FACTS);
  const full = compileHost(after, 'a', FACTS);
  const virt = after.virt('web/new')!;
  const fwd = (s: HostState) => (s.get('nft bridge lsdn_rv') as NftTableObject | undefined)?.chains.forward;
  const srv = (s: HostState) => serverOfBridge(s, bridge) as DhcpObject;

  it('finds the net\'s server and its hosts file', () => {
    assert.equal(srv(full).bridge, bridge);
    assert.match(hostsFilePath(srv(full)) ?? '', /\/dhcp\/.+\/hosts$/);
    assert.equal(serverOfBridge(full, 'lsb-nothere'), undefined);
  });

  it('refuses a virt the last apply did not give to the server: hosts file and forward chain', () => {
    const gaps = servingGaps(full, virt, bridge, 'lsdn_rv', { forward: fwd(last), hosts: srv(last).hosts });
    assert.equal(gaps.length, 2, JSON.stringify(gaps));
    assert.match(gaps[0]!, /no DHCP host entry 02:00:00:00:05:02,10\.5\.0\.12/);
    assert.match(gaps[1]!, /firewall does not let the address server's port \S+ talk to vnew/);
    // Nothing at all there yet (no server, no table).
    assert.equal(servingGaps(full, virt, bridge, 'lsdn_rv', { forward: undefined, hosts: undefined }).length, 2);
  });

  it('accepts it once a full apply wrote both (and ignores other virts\' differences)', () => {
    assert.deepEqual(servingGaps(full, virt, bridge, 'lsdn_rv', { forward: fwd(full), hosts: srv(full).hosts }), []);
    // A third virt in the model, not applied yet, does not stop this one.
    const more = load(SERVED('      new: { phys: a, if: vnew, mac: 02:00:00:00:05:02, ip: 10.5.0.12/24, antiSpoof: false }\n      third: { phys: a, if: vthird, mac: 02:00:00:00:05:03, ip: 10.5.0.13/24 }'));
    const moreFull = compileHost(more, 'a', FACTS);
    assert.deepEqual(servingGaps(moreFull, more.virt('web/new')!, bridge, 'lsdn_rv', { forward: fwd(full), hosts: srv(full).hosts }), []);
  });

  it('does nothing on a net without a server', () => {
    const plain = load(SERVED('').replace('    ipv4: { subnet: 10.5.0.0/24, gateway: 10.5.0.1 }\n', '').replace(', ip: 10.5.0.11/24', ''));
    const state = compileHost(plain, 'a', FACTS);
    assert.deepEqual(servingGaps(state, plain.virt('web/old')!, bridge, 'lsdn_rv', { forward: undefined, hosts: undefined }), []);
  });
});

describe('addresses are computed once per plan', () => {
  it('validateWithAddressing returns validate\'s problems and assignAddresses\' result', () => {
    const model = load(SERVED('      new: { phys: a, if: vnew, mac: 02:00:00:00:05:02 }'));
    const { problems, addressing } = validateWithAddressing(model, { physes: ['a'] });
    assert.deepEqual(problems, validate(model, { physes: ['a'] }));
    assert.deepEqual(addressing, assignAddresses(model));
  });

  it('compileHost takes every address from the addressing fact: the same state as computing them, and a made-up fact shows everywhere', () => {
    const model = load(SERVED('      new: { phys: a, if: vnew, mac: 02:00:00:00:05:02 }'));
    const { addressing } = validateWithAddressing(model, { physes: ['a'] });
    const a = compileHost(model, 'a', FACTS).sorted();
    const b = compileHost(model, 'a', { ...FACTS, addressing }).sorted();
    assert.deepEqual(b, a);
    // A different (made-up) assignment shows up in the output: the fact is what the compiler uses.
    const moved = new Map(addressing);
    moved.set('web/new', { ...addressing.get('web/new')!, v4: { ...addressing.get('web/new')!.v4!, ip: '10.5.0.99' } });
    const c = compileHost(model, 'a', { ...FACTS, addressing: moved });
    assert.match(srvHosts(c), /02:00:00:00:05:02,10\.5\.0\.99/);
    assert.doesNotMatch(srvHosts(compileHost(model, 'a', FACTS)), /10\.5\.0\.99/);
    // No part of the compiler assigns addresses of its own: the address server and the
    // firewall's anti-spoofing both have the made-up one, and the computed one is nowhere.
    const computed = addressing.get('web/new')!.v4!.ip;
    assert.notEqual(computed, '10.5.0.99');
    const chains = Object.values((c.get('nft bridge lsdn_rv') as NftTableObject).chains).flat();
    assert.ok(chains.some((l) => l.includes('10.5.0.99')), chains.join('\n'));
    const exact = new RegExp(`(^|[^\\d.])${computed.replace(/\./g, '\\.')}(?![\\d.])`);
    assert.match(JSON.stringify(compileHost(model, 'a', FACTS).sorted()), exact, 'the pattern finds the computed address where it is');
    assert.doesNotMatch(JSON.stringify(c.sorted()), exact, `${computed} is still in the state`);
  });
});

function srvHosts(s: HostState): string {
  return (serverOfBridge(s, ownedIfname('rv', 'b', 'web')) as DhcpObject).hosts;
}
