/**
 * The lab section of a model file (src/lab/extension.ts), pure: what it says (clients, their
 * clouds, MTUs and MACs, extra interfaces), its problems located at file:line in the lab's one
 * report, the clouds of the ping matrix, and the commands a client is started with.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadModelText } from '../../src/file/load.js';
import { labExtension, labSegments } from '../../src/lab/extension.js';
import { labLayout, labProblems, labReport } from '../../src/lab/layout.js';
import { expectedReachability, pingScript } from '../../src/lab/check.js';
import { clientTapLines, qemuClientArgs } from '../../src/lab/clients.js';
import { hasErrors, validate } from '../../src/validate/validate.js';

const EXAMPLE = new URL('../../examples/vde-cloud.yaml', import.meta.url);

function load(text: string, file = 'cloud.yaml') {
  const r = loadModelText(text, file);
  assert.ok(r.model, JSON.stringify(r.problems));
  assert.deepEqual(r.problems, []);
  return { model: r.model, ext: labExtension(r.lab) };
}

test('the example: five clients in three clouds, two of them multi-homed; apply and validate ignore the section', () => {
  const { model, ext } = load(readFileSync(EXAMPLE, 'utf8'));
  assert.equal(hasErrors(validate(model)), false);
  assert.deepEqual(ext.problems, []);
  assert.deepEqual(ext.clients.map((c) => `${c.name} ${c.run} ${c.cloud.group}:${c.cloud.port}/${c.cloud.vni} mtu ${c.mtu} ${c.urlIf ?? '-'}`), [
    'plug vde_plug 239.0.0.1:14789/1 mtu 1450 -',
    'dens vdens 239.0.0.1:14789/1 mtu 1450 eth0',
    'vm qemu 239.0.0.1:14789/1 mtu 1450 eth0',
    'vni2 vde_plug 239.0.0.1:14789/2 mtu 1450 -',
    'group2 vde_plug 239.0.0.2:14789/1 mtu 1450 -',
  ]);
  assert.deepEqual(ext.clients[1]?.host, { ip: '192.168.77.11/16', links: [{ name: 'eth1', segment: 'mgmt', ip: '198.18.0.11/24' }], multicast: 'eth1' });
  assert.deepEqual(ext.physes.get('b'), { links: [{ name: 'eth1', segment: 'mgmt', ip: '198.18.0.2/24' }], multicast: 'eth1' });
  assert.deepEqual(labSegments(ext), ['mgmt']);
  const layout = labLayout(model, { prefix: 'X', lab: ext });
  assert.deepEqual(labReport(model, layout), []);
  assert.equal(layout.clientNs.get('dens'), 'X-c-dens');
});

test('the ping matrix: members of one cloud (a vxvde net and the clients of its group, port and VNI) reach each other, nobody else', () => {
  const { model, ext } = load(readFileSync(EXAMPLE, 'utf8'));
  const e = expectedReachability(model, labLayout(model, { prefix: 'X', lab: ext }));
  const want = (from: string, to: string) => e.find((p) => p.from === from && p.to === to)?.expected;
  assert.equal(e.length, 8 * 7);
  assert.equal(e.filter((p) => p.skip).length, 0);
  assert.equal(want('lan/v1', 'qemu:vm'), true);
  assert.equal(want('vdens:dens', 'lan/v2'), true);
  assert.equal(want('vde_plug:plug', 'vdens:dens'), true);
  assert.equal(want('lan2/w1', 'vde_plug:vni2'), true, 'VNI 2 of the group is net lan2');
  assert.equal(want('vde_plug:vni2', 'lan/v1'), false);
  assert.equal(want('qemu:vm', 'lan2/w1'), false);
  for (const p of e.filter((x) => x.from === 'vde_plug:group2' || x.to === 'vde_plug:group2')) assert.equal(p.expected, false);
  assert.equal(e.filter((p) => p.expected).length, 5 * 4 + 2);
});

test('problems of the section are the lab\'s, located at their line: fields, URLs, addresses, interfaces, MACs', () => {
  const text = `name: bad
settings:
  cloud: "vxvde://239.0.0.1/if=eth1"
physes:
  a: { if: eth0, ip: 192.168.77.1 }
nets:
  lan:
    settings: cloud
    virts:
      v1: { phys: a, if: t1, mac: 02:00:00:00:77:01, ip: 10.77.0.1/24 }
lab:
  physes:
    a: { multicast: eth9 }
    zz: {}
  clients:
    c1: { run: vde_plug, url: "vxvde://239.0.0.1/hashsize=4", ip: 10.77.0.9/24, host: { ip: 192.168.77.9 } }
    c2: { run: qemu, url: "vxvde://239.0.0.1", ip: [10.77.0.8/24, 10.77.0.7/24], host: { ip: 192.168.77.8 } }
    c3: { run: vdens, url: "vxvde://239.0.0.1/if=eth1", ip: 10.77.0.6/24, host: { ip: 192.168.77.6 } }
    c4: { run: vdens, url: "vxvde://239.0.0.1", ip: 10.77.0.5/24, mac: 02:00:00:00:77:01, host: { ip: 192.168.77.1 } }
    c5: { run: tap, url: "vxvde://239.0.0.1", ip: 10.77.0.4/24, host: { ip: 192.168.77.4 }, colour: red }
`;
  const { model, ext } = load(text, 'bad.yaml');
  const lines = labProblems(model, labLayout(model, { prefix: 'B', lab: ext }));
  const has = (re: RegExp) => assert.ok(lines.some((l) => re.test(l)), `${re} in\n${lines.join('\n')}`);
  has(/^bad\.yaml:16:\d+: client "c1": unsupported vxvde URL option "hashsize"/);
  has(/^bad\.yaml:17:\d+: client "c2": a qemu guest takes one IPv4 address/);
  has(/^bad\.yaml:18:\d+: client "c3": the URL's if=eth1 is no interface of the client's host/);
  has(/^bad\.yaml:19:\d+: client "c4": address 192\.168\.77\.1 is also phys "a"'s/);
  has(/^bad\.yaml:19:\d+: client "c4": MAC 02:00:00:00:77:01 is also virt lan\/v1's/);
  has(/^bad\.yaml:20:\d+: client "c5": run: /);
  has(/^bad\.yaml:20:\d+: client "c5": unknown field "colour"/);
  has(/^bad\.yaml:13:\d+: phys "a": multicast route interface "eth9" is neither eth0 nor one of its links/);
  has(/^bad\.yaml:14:\d+: phys "zz": no phys "zz" in the model/);
  has(/^bad\.yaml:3:\d+: settings "cloud": net lan joins its group on "eth1", which simulated phys a lacks/);
  const codes = labReport(model, labLayout(model, { prefix: 'B', lab: ext })).map((p) => p.code);
  for (const c of codes) assert.match(c, /^lab-/);
});

test('a client is started with the cloud\'s MTU and its MAC: the tap of vde_plug, the guest\'s NIC on qemu\'s vde netdev', () => {
  const { ext } = load(readFileSync(EXAMPLE, 'utf8'));
  const [plug, , vm] = ext.clients;
  assert.deepEqual(clientTapLines(plug!), [
    'tuntap add dev vde0 mode tap', 'link set vde0 address 02:00:00:00:77:10 mtu 1450', 'address add 10.77.0.10/24 dev vde0', 'link set vde0 up',
  ]);
  const args = qemuClientArgs(vm!, { kernel: '/k', initrd: '/i' }, '/s.sock', '/s.console');
  assert.ok(args.includes('vde,id=n0,sock=vxvde://239.0.0.1/if=eth0'), args.join(' '));
  assert.ok(args.includes('virtio-net-pci,netdev=n0,mac=02:00:00:00:77:12,host_mtu=1450,romfile='), args.join(' '));
  assert.ok(args.some((a) => a.includes('lsdn.ip=10.77.0.12/24 lsdn.shell=1')));
  assert.ok(args.includes('socket,id=con,path=/s.sock,server=on,wait=off,logfile=/s.console'));
});

test("the guest's ping script is one console line with busybox's options", () => {
  const items = [{ id: 3, ip: '10.0.0.1', attempts: 3 }, { id: 4, ip: '10.0.0.2', attempts: 1 }];
  const host = pingScript(items, '0.5');
  assert.match(host, /ping -n -q -c 1 -W 0\.5/);
  const guest = pingScript(items, '0.5', true);
  assert.equal(guest.includes('\n'), false);
  assert.match(guest, /ping -q -c 1 -W 1 "\$fam"/);
  assert.match(guest, /p 3 3 -4 10\.0\.0\.1 0\.2 & p 4 1 -4 10\.0\.0\.2 0\.4 & wait$/);
});
