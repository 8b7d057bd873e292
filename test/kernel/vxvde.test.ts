/**
 * vxvde interop with the real thing: Debian's `vde_plug` joins the vxvde cloud from its own
 * namespace on the simulated underlay (a tap:// endpoint), next to lsdn-managed virts on two
 * simulated hosts; pings pass both ways, and virts of other nets stay unreachable from it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { loadModelText } from '../../src/file/load.js';
import { labDown, labUp } from '../../src/lab/lab.js';
import { applyInLab } from '../../src/lab/apply.js';
import { uniquePrefix } from '../helpers/netns.js';

const MODEL = `
name: vde
settings:
  vde: "vxvde://239.0.0.1"
  other: { type: vxlan/e2e }
physes:
  a: { if: eth0, ip: 192.168.77.1 }
  b: { if: eth0, ip: 192.168.77.2 }
nets:
  lan:
    settings: vde
    virts:
      v1: { phys: a, if: t-v1, mac: 02:00:00:00:77:01, ip: 10.77.0.1/24 }
      v2: { phys: b, if: t-v2, mac: 02:00:00:00:77:02, ip: 10.77.0.2/24 }
  iso:
    vid: 5
    settings: other
    virts:
      o1: { phys: a, if: t-o1, mac: 02:00:00:00:78:01, ip: 10.77.0.11/24 }
      o2: { phys: b, if: t-o2, mac: 02:00:00:00:78:02, ip: 10.77.0.12/24 }
`;

function sh(ns: string, cmd: string): { ok: boolean; out: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'sh', '-c', cmd], { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function ping(ns: string, ip: string, tries = 3): boolean {
  for (let i = 0; i < tries; i++) if (sh(ns, `ping -c 1 -W 1 ${ip}`).ok) return true;
  return false;
}

test('a real vde_plug endpoint and lsdn virts share a vxvde net, both ways; other nets stay unreachable', async (t) => {
  if (spawnSync('sh', ['-c', 'command -v vde_plug']).status !== 0) {
    t.skip('vde_plug is not installed (Debian package vdeplug; scripts/setup.sh installs it)');
    return;
  }
  const prefix = uniquePrefix('vde');
  const vdeNs = `${prefix}-vdeplug`;
  const vde: { plug?: ReturnType<typeof spawn> } = {};
  t.after(async () => {
    vde.plug?.kill('SIGKILL');
    await labDown(prefix); // also removes vdeNs (same prefix) and kills what runs inside
  });

  const model = loadModelText(MODEL, 'vde.yaml').model!;
  const layout = await labUp(model, { prefix, apply: (p, ns) => applyInLab(model, p, ns) });

  // The VDE client: its own namespace on the underlay, a tap joined to the cloud by vde_plug.
  const setup = [
    `ip netns add ${vdeNs}`,
    `ip link add name vp0 netns ${vdeNs} type veth peer name vdeport netns ${layout.underlayNs}`,
    `ip -n ${layout.underlayNs} link set vdeport master br0 up`,
    `ip -n ${vdeNs} link set lo up`,
    `ip -n ${vdeNs} link set vp0 up`,
    `ip -n ${vdeNs} addr add 192.168.77.100/16 dev vp0`,
    `ip -n ${vdeNs} route add 224.0.0.0/4 dev vp0`,
    `ip -n ${vdeNs} tuntap add dev vdetap mode tap`,
    `ip -n ${vdeNs} link set vdetap address 02:00:00:00:77:99 up`,
    `ip -n ${vdeNs} addr add 10.77.0.99/24 dev vdetap`,
  ];
  for (const c of setup) {
    const r = spawnSync('sh', ['-c', c], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${c}: ${r.stderr}`);
  }
  vde.plug = spawn('ip', ['netns', 'exec', vdeNs, 'vde_plug', 'vxvde://239.0.0.1', 'tap://vdetap'], { stdio: 'ignore' });

  const v1 = layout.virtNs.get('lan/v1')!;
  const v2 = layout.virtNs.get('lan/v2')!;
  // vde -> lsdn virts on both hosts, and back.
  assert.ok(ping(vdeNs, '10.77.0.1', 5), 'vde_plug endpoint reaches lan/v1 on host a');
  assert.ok(ping(vdeNs, '10.77.0.2'), 'vde_plug endpoint reaches lan/v2 on host b');
  assert.ok(ping(v1, '10.77.0.99'), 'lan/v1 reaches the vde_plug endpoint');
  assert.ok(ping(v2, '10.77.0.99'), 'lan/v2 reaches the vde_plug endpoint');
  // Virts of the other net (same subnet, so only isolation stops them) stay unreachable both ways.
  assert.equal(ping(vdeNs, '10.77.0.11', 1), false, 'iso/o1 must not be reachable from the vde endpoint');
  assert.equal(ping(vdeNs, '10.77.0.12', 1), false, 'iso/o2 must not be reachable from the vde endpoint');
  assert.equal(ping(layout.virtNs.get('iso/o1')!, '10.77.0.99', 1), false, 'the vde endpoint must not be reachable from iso/o1');
});
