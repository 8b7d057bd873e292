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
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { Kernel } from '../../src/kernel/exec.js';
import type { Netmodel } from '../../src/model/netmodel.js';
import { labDown } from '../../src/lab/lab.js';
import { applyInLab } from '../../src/lab/apply.js';
import { applyHost, destroyHost, planHost } from '../../src/apply/host.js';
import { compileHost } from '../../src/compile/compile.js';
import { ownedIfname } from '../../src/core/names.js';
import { createServer } from '../../src/kinds/dhcp.js';
import { readServers } from '../../src/kernel/read/servers.js';
import { formatPlan } from '../../src/apply/format.js';
import { labCheck, formatMatrix } from '../../src/lab/check.js';
import { slaacAddress } from '../../src/ipam/ipam.js';
import { serverDir } from '../../src/services/dhcp.js';
import { serverNsName } from '../../src/core/names.js';
import { runServiceCommands, serverPid } from '../../src/kernel/services.js';
import { serviceCommand as svc } from '../../src/core/plan.js';
import { dhcpLease } from '../../src/lab/dhcp-client.js';
import { OUTSIDE_ADDR } from '../../src/lab/layout.js';
import { isRoot } from '../helpers/netns.js';
import { servingLab } from '../helpers/serving.js';
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
const MAC = { b1: '02:00:00:00:01:01', b2: '02:00:00:00:01:02', w1: '02:00:00:00:03:01', b3: '02:00:00:00:01:03', rg: '02:00:00:00:01:09' };

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
      rg: { phys: a, if: vrg, mac: "${MAC.rg}", antiSpoof: false }
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
  const lab = servingLab('adr', () => load());
  const ns = (id: string) => lab.layout.virtNs.get(id) as string;
  const phys = (p: string) => lab.layout.physNs.get(p) as string;
  const server = (p: string, net: string) => serverNsName(phys(p), CONTEXT, net);

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
    const report = await labCheck(lab.model, lab.layout);
    assert.equal(report.failed, 0, formatMatrix(report, lab.layout));
  });

  it('a second apply is empty; a killed dnsmasq is drift that apply repairs', async () => {
    for (const p of ['a', 'b']) {
      const hp = await planHost(lab.model, { phys: p, netns: phys(p) });
      assert.equal(hp.plan.steps.length, 0, formatPlan(hp.plan, `second plan of ${p}`));
    }
    const pid = serverPid(server('a', 'blue'));
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 50 && serverPid(server('a', 'blue')) !== undefined; i++) await new Promise((r) => setTimeout(r, 20));
    const drift = await planHost(lab.model, { phys: 'a', netns: phys('a') });
    assert.deepEqual(drift.plan.steps.map((s) => `${s.action} ${s.key}: ${s.changes?.join(', ')}`), [`update dhcp ${server('a', 'blue')}: dnsmasq not running`]);
    await applyInLab(lab.model, lab.model.phys('a')!, phys('a'));
    assert.ok(serverPid(server('a', 'blue')));
    const lease = await dhcpLease(ns('blue/b1'));
    assert.equal(lease?.ip, '10.1.0.11');
    const again = await planHost(lab.model, { phys: 'a', netns: phys('a') });
    assert.equal(again.plan.steps.length, 0, formatPlan(again.plan, 'after repair'));
  });

  it('a new virt only rewrites the hosts file and signals dnsmasq (no restart)', async () => {
    const before = serverPid(server('a', 'blue'));
    const bigger = load('      b3: { phys: a, if: vb3, mac: "02:00:00:00:01:03" }');
    // The virt's interface: a veth whose other end stands for the VM.
    const vm = `${lab.prefix}-vm3`;
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
      await applyInLab(lab.model, lab.model.phys('a')!, phys('a'));
    } finally {
      await root.run('ip', ['netns', 'del', vm]).catch(() => undefined);
    }
  });

  it('a rogue DHCP server and router advertisements from a virt (anti-spoofing off) reach no other virt', async () => {
    // The net's real server is paused, so that only the rogue one could answer.
    const real = serverPid(server('a', 'blue'));
    assert.ok(real);
    const rogueDir = mkdtempSync(`${tmpdir()}/lsdn-rogue-`);
    await new Kernel({ netns: ns('blue/rg') }).run('ip', ['-6', 'addr', 'add', 'fd00:99::1/64', 'dev', 'eth0', 'nodad']);
    const rogue = spawn('ip', ['netns', 'exec', ns('blue/rg'), 'dnsmasq', '-k', '-u', 'root', '--port=0', '--bind-interfaces', '--interface=eth0',
      '--dhcp-range=10.1.0.100,10.1.0.110,1h', '--no-ping', '--dhcp-option=3,10.1.0.66', '--enable-ra', '--dhcp-range=fd00:99::,ra-only',
      `--dhcp-leasefile=${rogueDir}/leases`, `--pid-file=${rogueDir}/pid`, '--log-dhcp', `--log-facility=${rogueDir}/log`], { stdio: 'ignore' });
    process.kill(real, 'SIGSTOP');
    try {
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(rogue.exitCode, null, 'the rogue dnsmasq did not start');
      const lease = await dhcpLease(ns('blue/b1'), 'eth0', 4);
      assert.equal(lease, undefined, `b1 took a lease from the rogue server: ${JSON.stringify(lease)}`);
      // The rogue saw the requests (it really ran and answered).
      assert.match(readFileSync(`${rogueDir}/log`, 'utf8'), /DHCP(DISCOVER|OFFER)|available DHCP range/);
      await new Promise((r) => setTimeout(r, 3000)); // dnsmasq sends its first RAs at once, then every few seconds
      const addrs = await new Kernel({ netns: ns('blue/b1') }).json<{ addr_info: { local: string }[] }[]>('ip', ['-6', 'addr', 'show', 'dev', 'eth0']);
      const rogue6 = addrs.flatMap((l) => l.addr_info).map((a) => a.local).filter((a) => a.startsWith('fd00:99:'));
      assert.deepEqual(rogue6, [], 'b1 configured an address from the rogue router advertisement');
      const routes = await new Kernel({ netns: ns('blue/b1') }).json<{ dst: string }[]>('ip', ['-6', 'route', 'show']);
      assert.ok(!routes.some((r) => r.dst.startsWith('fd00:99:')), 'b1 learned a route from the rogue router advertisement');
    } finally {
      process.kill(real, 'SIGCONT');
      rogue.kill('SIGTERM');
      rmSync(rogueDir, { recursive: true, force: true });
    }
    // The real server still answers.
    assert.equal((await dhcpLease(ns('blue/b1')))?.ip, '10.1.0.11');
  });

  it('virts cannot reach the host: a private virt not its bridge, a public virt only its gateway', async () => {
    const bridge = ownedIfname(CONTEXT, 'b', 'blue');
    const host = await new Kernel({ netns: phys('a') }).json<{ addr_info: { local: string; scope: string }[] }[]>('ip', ['-6', 'addr', 'show', 'dev', bridge]);
    const ll = host.flatMap((l) => l.addr_info).find((a) => a.scope === 'link')?.local;
    assert.ok(ll, 'the bridge has no link-local address');
    const priv = await pingMany(ns('blue/b1'), [`${ll}%eth0`], 2);
    assert.equal(priv.get(`${ll}%eth0`), false, 'a private virt reached the host on its bridge (link-local)');
    const pub = await pingMany(ns('www/w1'), ['192.168.50.1', '172.16.0.1'], 2);
    assert.equal(pub.get('192.168.50.1'), true, 'a public virt cannot ping its gateway');
    assert.equal(pub.get('172.16.0.1'), false, "a public virt reached another of its host's addresses");
  });

  it('a crash right after `netns add` leaves a server the next apply recreates', async () => {
    const desired = compileHost(lab.model, 'a', { hostTag: phys('a'), runDir: lab.runDir });
    const s = desired.get(`dhcp ${server('a', 'www')}`);
    assert.ok(s && s.kind === 'dhcp');
    // Remove the server, then replay its creation up to the crash: only the first command ran.
    const pid = serverPid(s.name);
    if (pid) process.kill(pid, 'SIGKILL');
    await new Kernel({ netns: phys('a') }).run('ip', ['link', 'del', 'dev', s.port]);
    const k = new Kernel({ netns: phys('a') });
    assert.deepEqual(await runServiceCommands(k, [svc({ op: 'netns-del', ns: s.name }), svc({ op: 'clean', ns: s.name })]), []);
    const first = createServer(s)[0]!;
    assert.equal(first.line, `netns add ${s.name}`);
    assert.deepEqual(await runServiceCommands(k, [first]), []);
    const hp = await planHost(lab.model, { phys: 'a', netns: phys('a') });
    const step = hp.plan.steps.find((x) => x.key === `dhcp ${s.name}`);
    assert.ok(step && !step.blocked && step.action === 'recreate', formatPlan(hp.plan, 'after the crash'));
    await applyInLab(lab.model, lab.model.phys('a')!, phys('a'));
    assert.equal((await dhcpLease(ns('www/w1')))?.ip, '192.168.50.10');
    const again = await planHost(lab.model, { phys: 'a', netns: phys('a') });
    assert.equal(again.plan.steps.length, 0, formatPlan(again.plan, 'after the repair'));
  });

  it("a namespace with a server's name that is not lsdn's is never used; a server of `--netns lsdn-X` is not root's", async () => {
    // Not lsdn's: apply fails that server's step and creates no veth for it.
    const hostB = phys('b');
    const foreign = serverNsName(hostB, CONTEXT, 'blue');
    const k = new Kernel({ netns: hostB });
    const hp = await planHost(lab.model, { phys: 'b', netns: hostB });
    assert.equal(hp.plan.steps.length, 0, formatPlan(hp.plan, 'b before'));
    // Take the server of blue on b away (as destroy would), and put a foreign namespace in its place.
    const have = compileHost(lab.model, 'b', { hostTag: hostB, runDir: lab.runDir }).get(`dhcp ${foreign}`);
    assert.ok(have && have.kind === 'dhcp');
    await k.run('ip', ['link', 'del', 'dev', have.port]);
    assert.deepEqual(await runServiceCommands(k, [svc({ op: 'stop', ns: foreign }), svc({ op: 'netns-del', ns: foreign }), svc({ op: 'clean', ns: foreign })]), []);
    await new Kernel().run('ip', ['netns', 'add', foreign]);
    try {
      const r = await applyHost(lab.model, { phys: 'b', netns: hostB });
      const res = r.report.results.find((x) => x.step.key === `dhcp ${foreign}`);
      assert.equal(res?.status, 'failed');
      assert.match(res?.error ?? '', /exists but is not lsdn's/);
      const links = await k.json<{ ifname: string }[]>('ip', ['link', 'show']);
      assert.ok(!links.some((l) => l.ifname === have.port), 'a veth was created for a foreign namespace');
      assert.ok(!existsSync(serverDir(foreign)), 'a marker was written for a foreign namespace');
    } finally {
      await new Kernel().run('ip', ['netns', 'del', foreign]).catch(() => undefined);
    }
    await applyInLab(lab.model, lab.model.phys('b')!, hostB);
    // A server of `apply --netns lsdn-<x>` (x's header) is not read by a root-namespace reader of all contexts.
    const tag = `lsdn-${lab.prefix}`;
    const fake = serverNsName(tag, 'other', 'n');
    const cfg = compileHost(loadValid(modelText().replace(`name: ${CONTEXT}`, 'name: other'), 'x.yaml'), 'a', { hostTag: tag, runDir: lab.runDir });
    const obj = [...cfg.objects.values()].find((o) => o.kind === 'dhcp');
    assert.ok(obj && obj.kind === 'dhcp');
    await runServiceCommands(new Kernel(), [svc({ op: 'netns-add', ns: fake }, obj.config)]);
    try {
      assert.ok(existsSync(`/run/netns/${fake}`));
      const all = readServers(new Kernel(), undefined, new Map());
      assert.ok(!all.some((o) => o.name === fake), 'the root reader took a --netns server for its own');
      const mine = readServers(new Kernel({ netns: tag }), undefined, new Map());
      assert.ok(mine.some((o) => o.name === fake), 'the --netns reader does not see its own server');
    } finally {
      await new Kernel().run('ip', ['netns', 'del', fake]).catch(() => undefined);
      rmSync(serverDir(fake), { recursive: true, force: true });
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
    // A runtime dir left behind (crash between `netns del` and `clean`, or an external `ip netns del`) is deleted too.
    mkdirSync(serverDir(s), { recursive: true });
    const desiredB = compileHost(lab.model, 'b', { hostTag: phys('b'), runDir: lab.runDir }).get(`dhcp ${s}`);
    assert.ok(desiredB?.kind === 'dhcp');
    writeFileSync(`${serverDir(s)}/dnsmasq.conf`, desiredB.config);
    const leftover = await destroyHost({ netns: phys('b'), context: CONTEXT });
    assert.ok(leftover.report.ok);
    assert.ok(!existsSync(serverDir(s)), 'the leftover runtime dir was not deleted');
    // lab down takes host a's servers (namespaces under the lab's prefix) with it.
    const aServers = [server('a', 'blue'), server('a', 'www')];
    const pids = aServers.map(serverPid);
    assert.ok(pids.every((p) => p !== undefined));
    await labDown(lab.prefix);
    for (const n of aServers) assert.ok(!existsSync(`/run/netns/${n}`));
    for (const p of pids) assert.ok(!existsSync(`/proc/${p}/cmdline`) || readFileSync(`/proc/${p}/cmdline`, 'utf8') === '');
    assert.deepEqual(readdirSync(`${lab.runDir}/dhcp`).filter((d) => d.startsWith(lab.prefix)), []);
  });
});
