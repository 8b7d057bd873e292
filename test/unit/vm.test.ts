/**
 * Virtual machines, pure parts (issue 11): the `tap` virt option through the file format
 * (load, dump, validation codes), the tap objects the compiler makes and the planner's lines
 * (create, recreate on an owner change, refused while a VM holds the tap, never over a
 * foreign interface), the hook's scope, and the qemu/libvirt generators (golden files).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadModelText } from '../../src/file/load.js';
import { dumpYaml } from '../../src/file/dump.js';
import { compileHost } from '../../src/compile/compile.js';
import { HostState, type TapObject } from '../../src/core/objects.js';
import { planChanges } from '../../src/plan/plan.js';
import { formatPlan } from '../../src/apply/format.js';
import { validate } from '../../src/validate/validate.js';
import { findVirt, libvirtInterfaceXml, qemuNetArgs, shellWord } from '../../src/vm/generate.js';
import { isOwnedTap, isTapAlias, tapAlias } from '../../src/core/names.js';
import { netAlias } from '../../src/core/names.js';
import { scopeDesired, virtScope } from '../../src/apply/virt.js';
import { libvirtHookMode, libvirtTargetDevs } from '../../src/cli/vm.js';
import type { Netmodel } from '../../src/model/netmodel.js';
import { assertGolden } from '../golden/golden.js';

const MODEL = `
name: vms
settings:
  default: { type: vxlan/static }
physes:
  a: { if: eth0, ip: 192.0.2.1 }
  b: { if: eth0, ip: 192.0.2.2 }
nets:
  web:
    vid: 10
    virts:
      vm1: { phys: a, if: vm1-tap, mac: 52:54:00:00:00:01, ip: 10.0.0.1/24, tap: true }
      vm2:
        phys: a
        if: vm2-tap
        mac: 52:54:00:00:00:02
        tap: { user: libvirt-qemu, group: kvm, queues: 4, vnetHdr: false }
        rate: { out: { avg: 10mbit, burst: 64kb } }
      vm3: { phys: b, if: vnet3, mac: 52:54:00:00:00:03 }
`;

function load(text = MODEL): Netmodel {
  const { model, problems } = loadModelText(text, 'vms.yaml');
  assert.ok(model, JSON.stringify(problems));
  assert.deepEqual(problems.filter((p) => p.severity === 'error'), []);
  return model;
}

function codes(text: string): { code: string; line?: number }[] {
  const { model, problems } = loadModelText(text, 'vms.yaml');
  const all = [...problems, ...(model ? validate(model) : [])];
  return all.filter((p) => p.severity === 'error').map((p) => ({ code: p.code, ...(p.loc?.line !== undefined ? { line: p.loc.line } : {}) }));
}

describe('the tap option', () => {
  it('loads, dumps back and compiles to tap objects with the overlay MTU on the port', () => {
    const m = load();
    const vm1 = m.net('web')!.virts.get('vm1')!;
    const vm2 = m.net('web')!.virts.get('vm2')!;
    assert.deepEqual(vm1.tap, {});
    assert.deepEqual(vm2.tap, { user: 'libvirt-qemu', group: 'kvm', queues: 4, vnetHdr: false });
    assert.equal(m.net('web')!.virts.get('vm3')!.tap, undefined);
    const again = load(dumpYaml(m));
    assert.deepEqual(again.net('web')!.virts.get('vm1')!.tap, {});
    assert.deepEqual(again.net('web')!.virts.get('vm2')!.tap, vm2.tap);
    assert.match(dumpYaml(m), /tap: true/);

    const state = compileHost(m, 'a', { mtu: new Map([['eth0', 1500]]) });
    const lines = state.sorted().map((o) => JSON.stringify(o));
    const plan = planChanges(state, new HostState(), { links: new Set(['eth0']) });
    assertGolden('vm-taps.txt', [...lines, '', `# ${formatPlan(plan, 'plan from an empty host')}`, ''].join('\n'));
    // The taps are made before their ports are enslaved, and no port step is blocked.
    const keys = plan.steps.map((s) => s.key);
    assert.ok(keys.indexOf('tap vm1-tap') < keys.indexOf('port vm1-tap'));
    assert.deepEqual(plan.steps.filter((s) => s.blocked), []);
    assert.ok(plan.steps.some((s) => s.commands.some((c) => c.line === 'tuntap add dev vm2-tap mode tap user libvirt-qemu group kvm multi_queue')));
  });

  it('recreates a tap whose owner changed, unless a VM holds it; keeps vnet_hdr as the hypervisor set it', () => {
    const m = load();
    const desired = compileHost(m, 'a', { mtu: new Map([['eth0', 1500]]) });
    const actual = new HostState([...desired.objects.values()].map((o) => (o.kind === 'tap' ? { ...o, vnetHdr: true } : o)));
    assert.deepEqual(planChanges(desired, actual).steps, [], 'vnet_hdr is not compared');
    const have = desired.get('tap vm2-tap') as TapObject;
    const changed = new HostState([...actual.objects.values()].filter((o) => o !== actual.get('tap vm2-tap')));
    changed.add({ ...have, user: 'root' });
    let steps = planChanges(desired, changed).steps;
    const tap = steps.find((s) => s.key === 'tap vm2-tap');
    assert.equal(tap?.action, 'recreate');
    assert.deepEqual(tap?.changes, ['user root -> libvirt-qemu']);
    assert.deepEqual(tap?.commands.map((c) => c.line).slice(0, 2), ['link del dev vm2-tap', 'tuntap add dev vm2-tap mode tap user libvirt-qemu group kvm multi_queue']);
    // What hung on the old tap is made again: the port, its flags, its entry and filter.
    for (const k of ['port vm2-tap', 'fdb vm2-tap 52:54:00:00:00:02 master', 'filter vm2-tap ingress 349']) assert.ok(steps.some((s) => s.key === k), k);

    const held = new HostState([...changed.objects.values()].map((o) => (o.kind === 'tap' && o.name === 'vm2-tap' ? { ...o, attached: true } : o)));
    steps = planChanges(desired, held).steps;
    assert.equal(steps.length, 1);
    assert.match(steps[0]?.blocked ?? '', /in use by a running VM/);
  });

  it('never creates a tap over an interface that is not lsdn\'s, nor reads one as lsdn\'s', () => {
    const m = load();
    const desired = compileHost(m, 'a', { mtu: new Map([['eth0', 1500]]) });
    const plan = planChanges(desired, new HostState(), { links: new Set(['eth0', 'vm1-tap']) });
    const step = plan.steps.find((s) => s.key === 'tap vm1-tap');
    assert.match(step?.blocked ?? '', /exists but is not a tap of lsdn's/);
    assert.equal(step?.commands.length, 0);
    assert.equal(tapAlias('vms', { id: 'web/vm1' }), 'lsdn:vms:tap:web/vm1');
    assert.ok(isOwnedTap('tun', 'tap', 'lsdn:vms:tap:web/vm1', 'vms'));
    assert.ok(!isOwnedTap('tun', 'tap', 'lsdn:other:tap:web/vm1', 'vms'));
    assert.ok(!isOwnedTap('veth', undefined, 'lsdn:vms:tap:web/vm1', 'vms'));
    assert.ok(!isOwnedTap('tun', 'tun', 'lsdn:vms:tap:web/vm1', 'vms'));
    assert.ok(!isOwnedTap('tun', 'tap', 'my tap', 'vms'));
    // A net named "tap": its links' aliases ("lsdn:vms:net:tap:vxlan") are a net's, not a tap's.
    assert.ok(!isTapAlias(netAlias('vms', 'tap', 'vxlan')));
    assert.ok(!isOwnedTap('tun', 'tap', netAlias('vms', 'tap', 'x')));
    assert.ok(isTapAlias('lsdn:vms:tap:web/vm1'));
  });

  it('validation: located problems for a bad tap', () => {
    const bad = `
name: vms
settings: { default: { type: vxlan/static } }
physes: { a: { if: eth0, ip: 192.0.2.1 } }
nets:
  web:
    vid: 10
    virts:
      q: { phys: a, if: q0, tap: { queues: 0 } }
      o: { phys: a, if: o0, tap: { user: "bad user" } }
      n: { phys: a, tap: true }
`;
    const got = codes(bad);
    assert.ok(got.some((p) => p.code === 'virt-tap-queues-invalid' && p.line === 9), JSON.stringify(got));
    assert.ok(got.some((p) => p.code === 'virt-tap-owner-invalid' && p.line === 10), JSON.stringify(got));
    assert.ok(got.some((p) => p.code === 'virt-tap-no-if' && p.line === 11), JSON.stringify(got));
    assert.deepEqual(codes(MODEL), []);
    // A tap virt's interface may be missing: apply makes it.
    const { model } = loadModelText(MODEL, 'vms.yaml');
    const host = validate(model!, { physes: ['a'], host: { interfaces: new Set(['eth0']), mtu: new Map([['eth0', 1500]]) } });
    assert.deepEqual(host.filter((p) => p.code === 'interface-missing'), []);
  });
});

describe('the hook\'s scope', () => {
  it('takes only the virt\'s own objects out of the host\'s state', () => {
    const m = load();
    const vm2 = m.net('web')!.virts.get('vm2')!;
    const full = compileHost(m, 'a', { mtu: new Map([['eth0', 1500]]) });
    const scope = virtScope(m, vm2);
    const up = scopeDesired(full, scope, 'up', true).sorted().map((o) => (o.kind === 'nft' ? `nft ${Object.keys(o.chains).join(',')}` : `${o.kind} ${'name' in o ? o.name : 'dev' in o ? o.dev : ''}`));
    assert.ok(up.every((k) => k.includes('vm2-tap') || k.includes(scope.ifb) || k.startsWith('nft ')), up.join('\n'));
    assert.ok(up.includes('tap vm2-tap') && up.includes('port vm2-tap') && up.includes(`link ${scope.ifb}`));
    // Its firewall chains only (vm2 has no inbound rule and accepts by default: no vin- chain).
    assert.deepEqual(up.filter((k) => k.startsWith('nft ')), [`nft ${scope.chains[1]}`]);
    assert.equal(full.get('nft bridge lsdn_vms')?.kind, 'nft');
    // Stopping: an adopted interface leaves the bridge; an lsdn tap stays wired.
    const down = scopeDesired(full, scope, 'down', false).sorted().map((o) => o.kind);
    assert.ok(!down.includes('port') && !down.includes('fdb'));
    assert.ok(scopeDesired(full, scope, 'down', true).get('port vm2-tap'));
  });

  it('libvirt: interfaces by target dev, operations by name', () => {
    const xml = `<domain><devices><interface type='ethernet'><target dev='vm1-tap' managed='no'/></interface>
      <interface type="bridge"><source bridge="br0"/><target dev="vnet7"/></interface><disk><target dev='vda'/></disk></devices></domain>`;
    assert.deepEqual(libvirtTargetDevs(xml), ['vm1-tap', 'vnet7']);
    assert.equal(libvirtHookMode('prepare', 'begin'), 'up');
    assert.equal(libvirtHookMode('started', 'begin'), 'up');
    assert.equal(libvirtHookMode('stopped', 'end'), 'down');
    assert.equal(libvirtHookMode('release', 'end'), 'down');
    assert.equal(libvirtHookMode('migrate', 'begin'), undefined);
    assert.equal(libvirtHookMode('start', 'begin'), undefined);
  });
});

describe('qemu and libvirt generators', () => {
  it('qemu arguments and libvirt XML (golden)', () => {
    const m = load();
    const out: string[] = [];
    for (const ref of ['web/vm1', 'vm2', 'vm3']) {
      const v = findVirt(m, ref);
      out.push(`# ${v.id}`, qemuNetArgs(v).map(shellWord).join(' '), qemuNetArgs(v, { vhost: true, id: 'n0' }).join(' '), libvirtInterfaceXml(v));
    }
    assertGolden('vm-generators.txt', out.join('\n'));
    const args = qemuNetArgs(findVirt(m, 'vm2'));
    assert.deepEqual(args, [
      '-netdev', 'tap,id=net-vm2,ifname=vm2-tap,script=no,downscript=no,queues=4',
      '-device', 'virtio-net-pci,netdev=net-vm2,mac=52:54:00:00:00:02,host_mtu=1450,mq=on,vectors=10',
    ]);
    assert.match(libvirtInterfaceXml(findVirt(m, 'vm1')), /<mtu size='1450'\/>/);
    assert.throws(() => findVirt(m, 'nope'), /no virt "nope"/);
    assert.throws(() => qemuNetArgs(m.net('web')!.virt('loose')), /not connected/);
  });
});
