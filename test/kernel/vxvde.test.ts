/**
 * VDE's Local Area Cloud with the real clients (issue 23): examples/vde-cloud.yaml in the lab, a
 * tap joined by Debian's `vde_plug`, a `vdens` namespace and a qemu guest on qemu's `vde` netdev
 * next to lsdn virts on two simulated hosts; the full ping matrix (every member pair, and a
 * second cloud on VNI 2 and one on another group unreachable from all), then what it rests on:
 *
 *   - multi-homed hosts: lsdn's settings `if` and the clients' `/if=` join on eth0 although the
 *     multicast route is on eth1; a client on such a host without `/if=` reaches nobody (the control)
 *   - TCP from an lsdn virt to VDE clients (checksum offload off on the lab's underlay)
 *   - unicast: a flow between two members reaches a third member (almost) never, where the old
 *     datapath (nolearning, everything to the group) delivered every frame to it (rebuilt here by
 *     hand, then lsdn converges back and plans nothing, learnt ports in its maps or not)
 *   - a VDE client restarting on another port is reached again (its new port learnt)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadModelText } from '../../src/file/load.js';
import { labDown, labUp, type LabLayout } from '../../src/lab/lab.js';
import { applyInLab } from '../../src/lab/apply.js';
import { formatMatrix, labCheck } from '../../src/lab/check.js';
import { CLIENT_UNDERLAY_IF, labExtension } from '../../src/lab/extension.js';
import { labStateDir, vmAccel } from '../../src/lab/clients.js';
import { planHost } from '../../src/apply/host.js';
import { isRoot, uniquePrefix } from '../helpers/netns.js';
import { alive } from '../../src/kernel/lock.js';
import { flow, groupOnly, joined, must, ping, sh, vdeCloudMissing } from '../helpers/vde.js';

/** Wait (up to 10 s) until process `pid` has exited. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

const EXAMPLE = new URL('../../examples/vde-cloud.yaml', import.meta.url).pathname;
const skip = !isRoot() ? 'needs root' : false;

async function noChanges(model: Parameters<typeof planHost>[0], layout: LabLayout): Promise<void> {
  for (const phys of model.physes.keys()) {
    const { plan } = await planHost(model, { phys, netns: layout.physNs.get(phys)! });
    assert.deepEqual(plan.steps.map((s) => `${s.action} ${s.key} ${(s.changes ?? []).join(', ')}`), [], `phys ${phys} plans nothing`);
  }
}

describe('VDE Local Area Cloud with lsdn virts (examples/vde-cloud.yaml)', { skip }, () => {
  it('every member reaches every other of its cloud and no other; multi-homed /if, TCP, unicast, client restart', { timeout: 600_000 }, async (t) => {
    const missing = vdeCloudMissing();
    if (missing) return t.skip(missing);
    const prefix = uniquePrefix('vde');
    const extra: ReturnType<typeof spawn>[] = [];
    const extraNs: string[] = [];
    t.after(async () => {
      for (const p of extra) p.kill('SIGKILL');
      for (const ns of extraNs) spawnSync('ip', ['netns', 'del', ns]);
      await labDown(prefix);
    });
    const loaded = loadModelText(readFileSync(EXAMPLE, 'utf8'), EXAMPLE);
    const model = loaded.model!;
    const ext = labExtension(loaded.lab);
    const t0 = Date.now();
    const layout = await labUp(model, { prefix, lab: ext, apply: (p, ns) => applyInLab(model, p, ns), vmBootMs: 400_000 });
    t.diagnostic(`lab with 5 VDE clients (qemu: ${vmAccel().name}) up in ${Date.now() - t0} ms`);
    const host = (c: string) => layout.clientNs.get(c)!;
    const v1 = layout.virtNs.get('lan/v1')!;
    const [a, b] = [layout.physNs.get('a')!, layout.physNs.get('b')!];

    // The matrix: 8 members, 56 pairs, short timeouts for the pairs that must fail.
    const t1 = Date.now();
    const report = await labCheck(model, layout, { timeoutMs: 1000 });
    t.diagnostic(`ping matrix in ${Date.now() - t1} ms`);
    assert.equal(report.failed, 0, formatMatrix(report, layout));
    assert.equal(report.passed, 56, formatMatrix(report, layout));

    // Multi-homed: b's multicast route is on eth1, its vxvde device joins on eth0 (settings if).
    assert.match(must(b, 'ip route show 224.0.0.0/4'), /dev eth1/);
    assert.match(must(b, 'ip -d link show type vxlan'), /dev eth0 /);
    // The control: a vde_plug on a multi-homed host of its own (underlay on eth0, mgmt on eth1,
    // the multicast route on eth1) without /if= reaches nobody; with /if=eth0 it does. Its host
    // has no other VDE client: a socket bound to the group's port also receives what arrives for
    // a group another socket of its namespace joined on eth0 (Linux's IP_MULTICAST_ALL), so on
    // dens's host the control learnt lsdn hosts' addresses from vdens's traffic now and then.
    const ctlNs = `${prefix}-ctl`;
    extraNs.push(ctlNs);
    assert.equal(spawnSync('ip', ['netns', 'add', ctlNs]).status, 0, `ip netns add ${ctlNs}`);
    must(layout.underlayNs, [
      `ip link add ctl0 type veth peer name eth0 netns ${ctlNs}`,
      `ip link add ctl1 type veth peer name eth1 netns ${ctlNs}`,
      'ip link set ctl0 master br0 up',
      'ip link set ctl1 master br-mgmt up',
      `ip -n ${ctlNs} addr add 192.168.77.30/16 dev eth0`,
      `ip -n ${ctlNs} addr add 198.18.0.30/24 dev eth1`,
      `ip -n ${ctlNs} link set lo up && ip -n ${ctlNs} link set eth0 up && ip -n ${ctlNs} link set eth1 up`,
      `ip -n ${ctlNs} route add 224.0.0.0/4 dev eth1`,
    ].join(' && '));
    must(ctlNs, 'ip tuntap add dev vde1 mode tap && ip link set vde1 address 02:00:00:00:77:21 mtu 1450 up && ip addr add 10.77.0.21/24 dev vde1');
    const plugOn = (url: string) => {
      const p = spawn('ip', ['netns', 'exec', ctlNs, 'vde_plug', 'tap://vde1', url], { stdio: 'ignore' });
      extra.push(p);
      return p;
    };
    // Each side waits until the client is in its group, so neither answer can come from a
    // client that had not started yet (a loaded machine takes seconds).
    let ctl = plugOn('vxvde://239.0.0.1');
    assert.ok(await joined(ctlNs, 'eth1', '239.0.0.1'), 'without /if= the client joins 239.0.0.1 on eth1 (the multicast route)');
    assert.equal(sh(ctlNs, 'ping -c 2 -W 1 -I vde1 10.77.0.1').ok, false, 'without /if= the client joins on eth1 and reaches nobody');
    ctl.kill('SIGKILL');
    ctl = plugOn('vxvde://239.0.0.1/if=eth0');
    assert.ok(await joined(ctlNs, 'eth0', '239.0.0.1'), 'with /if=eth0 the client joins 239.0.0.1 on eth0');
    assert.ok(ping(ctlNs, '10.77.0.1 -I vde1', 10), 'with /if=eth0 it reaches lan/v1');
    ctl.kill('SIGKILL');

    // TCP from an lsdn virt into VDE clients (checksums computed on the lab's underlay).
    for (const c of ['plug', 'dens']) {
      const ip = ext.clients.find((x) => x.name === c)!.ips[0]!.split('/')[0]!;
      const ns = c === 'dens' ? undefined : host(c);
      const server = ns
        ? spawn('ip', ['netns', 'exec', ns, 'iperf3', '-s', '-1', '-B', ip], { stdio: 'ignore' })
        : spawn('nsenter', ['-t', readFileSync(`${labStateDir(prefix)}/dens.inner`, 'utf8').trim(), '-n', 'iperf3', '-s', '-1', '-B', ip], { stdio: 'ignore' });
      extra.push(server);
      await new Promise((r) => setTimeout(r, 300));
      const r = sh(v1, `iperf3 -c ${ip} -t 1 -J`);
      assert.ok(r.ok, `TCP lan/v1 -> ${c}: ${r.out.slice(0, 400)}`);
      const bits = (JSON.parse(r.out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
      t.diagnostic(`TCP lan/v1 -> ${c}: ${(bits / 1e6).toFixed(0)} Mbit/s`);
      assert.ok(bits > 1e6, `TCP lan/v1 -> ${c} moves data: ${bits} bit/s`);
    }

    // Unicast now: what third members receive of a 200-ping flow (400 frames) between two others.
    const watch = [host('vni2'), host('dens'), b];
    await noChanges(model, layout); // learnt ports in the maps read back as nothing to change
    const lsdnPair = flow(v1, '10.77.0.2', watch.slice(0, 2));
    const toClient = flow(v1, '10.77.0.10', [host('dens'), b]);
    t.diagnostic(`unicast: lan/v1<->lan/v2 seen by vni2/dens hosts ${lsdnPair.join('/')}; lan/v1<->plug seen by dens host/b ${toClient.join('/')}`);
    for (const n of [...lsdnPair, ...toClient]) assert.ok(n <= 20, `a third member receives (almost) nothing: ${lsdnPair} ${toClient}`);

    // The old datapath, by hand: no learning, no per-MAC entries, no port table: everything to the group.
    for (const ns of [a, b]) groupOnly(ns, 'lsdn_vdecloud');
    const oldPair = flow(v1, '10.77.0.2', watch.slice(0, 2));
    const oldToClient = flow(v1, '10.77.0.10', [host('dens'), b]);
    t.diagnostic(`group only: lan/v1<->lan/v2 seen by vni2/dens hosts ${oldPair.join('/')}; lan/v1<->plug seen by dens host/b ${oldToClient.join('/')}`);
    for (const n of oldPair) assert.ok(n >= 400, `the old datapath floods every frame between lsdn hosts: ${oldPair}`);
    for (const n of oldToClient) assert.ok(n >= 200, `and every frame lsdn sends to a client: ${oldToClient}`);
    // lsdn converges back, and then has nothing to change.
    for (const p of model.physes.values()) await applyInLab(model, p, layout.physNs.get(p.name)!);
    await noChanges(model, layout);
    assert.ok(ping(v1, '10.77.0.2') && ping(v1, '10.77.0.10'), 'converged back: lan/v1 reaches lan/v2 and plug');

    // A client restart: vde_plug of plug comes back on another port; lsdn's unicast follows it.
    const state = JSON.parse(readFileSync(`${labStateDir(prefix)}/plug.json`, 'utf8')) as { procs: { pid: number }[] };
    const portOf = () => /192\.168\.77\.10 \. 0x1 \. 0x20000007710[^:,}]*: (\d+)/.exec(must(a, 'nft list map ip lsdn_vdecloud vxvde-ports-14789'))?.[1];
    assert.ok(ping(v1, '10.77.0.10'));
    const before = portOf();
    assert.ok(before, 'a learnt port');
    const old = state.procs[0]!.pid;
    process.kill(old, 'SIGKILL');
    // The old client is gone (its membership with it) before the new one starts and joins.
    assert.ok(await gone(old), `the old vde_plug ${old} exits on SIGKILL`);
    assert.ok(!(await joined(host('plug'), CLIENT_UNDERLAY_IF, '239.0.0.1', 0)), 'the old client left the group');
    const again = spawn('ip', ['netns', 'exec', host('plug'), 'vde_plug', 'tap://vde0', 'vxvde://239.0.0.1'], { stdio: 'ignore' });
    extra.push(again);
    assert.ok(await joined(host('plug'), CLIENT_UNDERLAY_IF, '239.0.0.1'), 'the restarted client joins the group');
    const t2 = Date.now();
    assert.ok(ping(v1, '10.77.0.10', 10), 'lan/v1 reaches plug after its restart');
    const after = portOf();
    t.diagnostic(`plug restarted: port ${before} -> ${after}, reached again after ${Date.now() - t2} ms`);
    assert.ok(after && after !== before, `the new port is learnt: ${before} -> ${after}`);
  });
});
