/**
 * Address serving with real clients (issue 10): lsdn's per-(host, net) dnsmasq answers a real
 * DHCP client (busybox udhcpc) in a virt's namespace with exactly its planned address, default
 * route and MTU; a virt of another net (same MAC, same subnet) gets no lease; router
 * advertisements give the expected SLAAC address; a virt of the public net reaches the
 * "outside" namespace through its host (NAT), a private one does not. The servers are part
 * of the reconciled state: a second apply is empty, a killed dnsmasq is drift that apply
 * repairs, a new virt only rewrites the hosts file (SIGHUP), destroy and `lab down` remove them.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { Kernel } from '../../src/kernel/exec.js';
import type { Netmodel } from '../../src/model/netmodel.js';
import { labDown, labUp, type LabLayout } from '../../src/lab/lab.js';
import { applyInLab } from '../../src/lab/apply.js';
import { destroyHost, planHost } from '../../src/apply/host.js';
import { formatPlan } from '../../src/cli/format.js';
import { labCheck, formatMatrix } from '../../src/lab/check.js';
import { slaacAddress } from '../../src/ipam/ipam.js';
import { serverDir, serverNsName } from '../../src/services/dhcp.js';
import { serverPid } from '../../src/services/run.js';
import { dhcpLease } from '../../src/services/client.js';
import { OUTSIDE_ADDR } from '../../src/lab/serving.js';
import { deleteNamespacesWithPrefix, ensureNeighbourTableRoom, isRoot, uniquePrefix } from '../helpers/netns.js';
import { pingMany } from '../helpers/typelab.js';
import { loadValid } from '../helpers/model.js';

const skip = !isRoot()
  ? 'needs root'
  : !existsSync('/usr/sbin/dnsmasq')
    ? 'needs dnsmasq (Debian dnsmasq-base; scripts/setup.sh installs it)'
    : !existsSync('/usr/bin/busybox') && !existsSync('/bin/busybox')
      ? 'needs busybox (its udhcpc is the DHCP client; Debian busybox-static)'
      : false;
const CONTEXT = 'adr';
const MAC = { b1: '02:00:00:00:01:01', b2: '02:00:00:00:01:02', w1: '02:00:00:00:03:01', b3: '02:00:00:00:01:03' };

function modelText(extraBlue = ''): string {
  return `
name: ${CONTEXT}
settings:
  default: { type: vxlan/e2e }
  pub: { type: public }
physes:
  a: { if: eth0, ip: 172.16.0.1 }
  b: { if: eth0, ip: 172.16.0.2 }
nets:
  blue:
    vid: 10
    ipv4: { subnet: 10.1.0.0/24, gateway: 10.1.0.1, dns: [10.1.0.53] }
    ipv6: { subnet: "fd00:1::/64" }
    virts:
      b1: { phys: a, if: vb1, mac: "${MAC.b1}" }
      b2: { phys: b, if: vb2, mac: "${MAC.b2}" }
${extraBlue}
  red:
    vid: 20
    ipv4: { subnet: 10.1.0.0/24, dhcp: false }
    virts:
      r1: { phys: a, if: vr1, mac: "${MAC.b1}" }
  www:
    settings: pub
    ipv4: { subnet: 192.168.50.0/24, gateway: 192.168.50.1 }
    virts:
      w1: { phys: a, if: vw1, mac: "${MAC.w1}" }
allocations:
  blue/b1: 10.1.0.11
  blue/b2: 10.1.0.12
  blue/b3: 10.1.0.13
  red/r1: 10.1.0.11
  www/w1: 192.168.50.10
`;
}

function load(extra = ''): Netmodel {
  return loadValid(modelText(extra), 'addressing.yaml');
}

describe('address serving: DHCPv4, SLAAC, public net (lab)', { skip }, () => {
  let prefix: string;
  let layout: LabLayout;
  let model: Netmodel;
  let runDir: string;
  const ns = (id: string) => layout.virtNs.get(id) as string;
  const phys = (p: string) => layout.physNs.get(p) as string;
  const server = (p: string, net: string) => serverNsName(phys(p), CONTEXT, net);

  before(async () => {
    ensureNeighbourTableRoom();
    runDir = mkdtempSync(`${tmpdir()}/lsdn-run-`);
    chmodSync(runDir, 0o755); // dnsmasq drops to nobody and rereads its hosts file there
    process.env.LSDN_RUN_DIR = runDir;
    prefix = uniquePrefix('adr');
    model = load();
    const t0 = Date.now();
    layout = await labUp(model, { prefix, apply: (p, n) => applyInLab(model, p, n) });
    console.log(`# lab with servers and DHCP/SLAAC clients up in ${Date.now() - t0} ms`);
  });

  after(async () => {
    try {
      if (prefix) await labDown(prefix);
    } finally {
      if (prefix) deleteNamespacesWithPrefix(`${prefix}-`);
      if (runDir) rmSync(runDir, { recursive: true, force: true });
      delete process.env.LSDN_RUN_DIR;
    }
  });

  it('a virt running udhcpc gets its planned address, default route and MTU', async () => {
    const lease = await dhcpLease(ns('blue/b1'));
    assert.ok(lease, 'no lease');
    assert.equal(lease.ip, '10.1.0.11');
    assert.equal(lease.mask, 24);
    assert.equal(lease.router, '10.1.0.1');
    assert.equal(lease.mtu, 1450); // the overlay MTU of vxlan on a 1500 underlay
    assert.deepEqual(lease.dns, ['10.1.0.53']);
    const k = new Kernel({ netns: ns('blue/b1') });
    const route = await k.json<{ dst: string; gateway?: string }[]>('ip', ['-4', 'route', 'show', 'default']);
    assert.equal(route[0]?.gateway, '10.1.0.1');
    const link = await k.json<{ mtu: number }[]>('ip', ['link', 'show', 'dev', 'eth0']);
    assert.equal(link[0]?.mtu, 1450);
    // The other host's virt got its lease (in labUp) from its own host's server: host a's server never saw it.
    const b2 = await dhcpLease(ns('blue/b2'));
    assert.equal(b2?.ip, '10.1.0.12');
    const log = readFileSync(`${serverDir(server('a', 'blue'))}/log`, 'utf8');
    assert.match(log, new RegExp(`DHCPACK\\(lsdn0\\) 10.1.0.11 ${MAC.b1}`));
    assert.doesNotMatch(log, new RegExp(MAC.b2), `host a's server saw b2's requests:\n${log}`);
    // And b1 and b2 talk over their leased addresses.
    const r = await pingMany(ns('blue/b1'), ['10.1.0.12']);
    assert.equal(r.get('10.1.0.12'), true);
  });

  it('a virt of another net (same MAC, same subnet) gets no lease', async () => {
    const t0 = Date.now();
    assert.equal(await dhcpLease(ns('red/r1'), 'eth0', 2), undefined);
    console.log(`# red/r1: no lease after ${Date.now() - t0} ms`);
    // Its net serves nothing: no server namespace for red on either host.
    assert.ok(!existsSync(`/run/netns/${server('a', 'red')}`));
  });

  it('router advertisements give the expected SLAAC address (and the host takes none)', async () => {
    const want = slaacAddress('fd00:1::/64', MAC.b1);
    const addrs = await new Kernel({ netns: ns('blue/b1') }).json<{ addr_info: { local: string; scope: string }[] }[]>('ip', ['-6', 'addr', 'show', 'dev', 'eth0']);
    const global = addrs.flatMap((l) => l.addr_info).filter((a) => a.scope === 'global').map((a) => a.local);
    assert.deepEqual(global, [want]);
    const host = await new Kernel({ netns: phys('a') }).json<{ addr_info: { local: string; scope: string }[] }[]>('ip', ['-6', 'addr', 'show']);
    const hostGlobal = host.flatMap((l) => l.addr_info).filter((a) => a.scope === 'global' && a.local.startsWith('fd00:1:'));
    assert.deepEqual(hostGlobal, [], 'the host configured an address from the tenant prefix');
    const r = await pingMany(ns('blue/b2'), [want]);
    assert.equal(r.get(want), true);
  });

  it('a public virt reaches the outside through its host; a private virt does not', async () => {
    const pub = await pingMany(ns('www/w1'), [OUTSIDE_ADDR.ip]);
    assert.equal(pub.get(OUTSIDE_ADDR.ip), true, 'public virt cannot reach the outside');
    const priv = await pingMany(ns('blue/b1'), [OUTSIDE_ADDR.ip], 1);
    assert.equal(priv.get(OUTSIDE_ADDR.ip), false, 'private virt reached the outside');
    // Nor does the public virt reach into a private net (no route, and forwarding into it is dropped).
    const into = await pingMany(ns('www/w1'), ['10.1.0.11'], 1);
    assert.equal(into.get('10.1.0.11'), false);
    const report = await labCheck(model, layout);
    assert.equal(report.failed, 0, formatMatrix(report, layout));
  });

  it('a second apply is empty; a killed dnsmasq is drift that apply repairs', async () => {
    for (const p of ['a', 'b']) {
      const hp = await planHost(model, { phys: p, netns: phys(p) });
      assert.equal(hp.plan.steps.length, 0, formatPlan(hp.plan, `second plan of ${p}`));
    }
    const pid = serverPid(server('a', 'blue'));
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 50 && serverPid(server('a', 'blue')) !== undefined; i++) await new Promise((r) => setTimeout(r, 20));
    const drift = await planHost(model, { phys: 'a', netns: phys('a') });
    assert.deepEqual(drift.plan.steps.map((s) => `${s.action} ${s.key}: ${s.changes?.join(', ')}`), [`update dhcp ${server('a', 'blue')}: dnsmasq not running`]);
    await applyInLab(model, model.phys('a')!, phys('a'));
    assert.ok(serverPid(server('a', 'blue')));
    const lease = await dhcpLease(ns('blue/b1'));
    assert.equal(lease?.ip, '10.1.0.11');
    const again = await planHost(model, { phys: 'a', netns: phys('a') });
    assert.equal(again.plan.steps.length, 0, formatPlan(again.plan, 'after repair'));
  });

  it('a new virt only rewrites the hosts file and signals dnsmasq (no restart)', async () => {
    const before = serverPid(server('a', 'blue'));
    const bigger = load('      b3: { phys: a, if: vb3, mac: "02:00:00:00:01:03" }');
    // The virt's interface: a veth whose other end stands for the VM.
    const vm = `${prefix}-vm3`;
    const root = new Kernel();
    await root.run('ip', ['netns', 'add', vm]);
    try {
      await root.run('ip', ['-n', phys('a'), 'link', 'add', 'vb3', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', vm]);
      await root.run('ip', ['-n', vm, 'link', 'set', 'eth0', 'address', MAC.b3, 'up']);
      const hp = await planHost(bigger, { phys: 'a', netns: phys('a') });
      const step = hp.plan.steps.find((s) => s.key === `dhcp ${server('a', 'blue')}`);
      assert.ok(step, formatPlan(hp.plan, 'plan'));
      assert.deepEqual(step.changes, [`host ${MAC.b3},10.1.0.13 added`]);
      assert.deepEqual(step.commands.map((c) => c.line), [`write ${server('a', 'blue')} hosts`, `reload ${server('a', 'blue')}`]);
      await applyInLab(bigger, bigger.phys('a')!, phys('a'));
      assert.equal(serverPid(server('a', 'blue')), before, 'dnsmasq was restarted');
      const lease = await dhcpLease(vm);
      assert.equal(lease?.ip, '10.1.0.13');
      await applyInLab(model, model.phys('a')!, phys('a'));
    } finally {
      await root.run('ip', ['netns', 'del', vm]).catch(() => undefined);
    }
  });

  it('destroy removes the servers: namespaces, processes and runtime dirs', async () => {
    const s = server('b', 'blue');
    const pid = serverPid(s);
    assert.ok(pid);
    const { report } = await destroyHost({ netns: phys('b'), context: CONTEXT });
    assert.ok(report.ok);
    assert.ok(!existsSync(`/run/netns/${s}`));
    assert.ok(!existsSync(serverDir(s)));
    assert.ok(!existsSync(`/proc/${pid}/cmdline`) || !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dnsmasq'));
    // lab down takes host a's servers (namespaces under the lab's prefix) with it.
    const aServers = [server('a', 'blue'), server('a', 'www')];
    const pids = aServers.map(serverPid);
    assert.ok(pids.every((p) => p !== undefined));
    await labDown(prefix);
    for (const n of aServers) assert.ok(!existsSync(`/run/netns/${n}`));
    for (const p of pids) assert.ok(!existsSync(`/proc/${p}/cmdline`) || readFileSync(`/proc/${p}/cmdline`, 'utf8') === '');
    assert.deepEqual(readdirSync(`${runDir}/dhcp`).filter((d) => d.startsWith(prefix)), []);
  });
});
