/**
 * A real VM on an lsdn network (issue 11): a distribution kernel with a busybox initramfs
 * (scripts/vm-assets.sh, from Debian packages) boots under qemu (KVM when usable, else TCG)
 * inside simulated host a; its virtio-net NIC is the tap lsdn created for virt blue/vm
 * (`tap: true`), attached with lsdn's own qemu arguments. The guest must reach blue/b1 on host
 * b over the overlay and must not reach red/r1 on host b, which has an address of the same
 * subnet. The guest's console is printed when anything fails.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Kernel } from '../../src/kernel/exec.js';
import { Netmodel } from '../../src/model/netmodel.js';
import { overlayMtu } from '../../src/compile/compile.js';
import { qemuNetArgs } from '../../src/vm/generate.js';
import { readHostState } from '../../src/kernel/read/host.js';
import { planHost } from '../../src/apply/host.js';
import { isRoot } from '../helpers/netns.js';
import { kernelSupport, labFor } from '../helpers/typelab.js';
import { markers, runTestVm, vmAssets } from '../helpers/qemu.js';

const skip = !isRoot() ? 'needs root' : false;

function model(): Netmodel {
  const m = new Netmodel('qemu');
  m.addSettings('vxlan/static');
  m.addPhys('a', { if: 'eth0', ip: '10.0.0.1' });
  m.addPhys('b', { if: 'eth0', ip: '10.0.0.2' });
  const blue = m.addNet('blue', { vid: 71 });
  const red = m.addNet('red', { vid: 72 });
  for (const n of [blue, red]) for (const p of m.physes.values()) n.attach(p);
  blue.virt('vm', { phys: 'a', if: 'ltvm0', mac: '52:54:00:00:71:01', ips: ['10.200.0.1/24'], tap: true });
  blue.virt('b1', { phys: 'b', if: 'ltb1', mac: '02:00:00:00:71:02', ips: ['10.200.0.2/24'] });
  red.virt('r1', { phys: 'b', if: 'ltr1', mac: '02:00:00:00:72:03', ips: ['10.200.0.3/24'] });
  red.virt('r2', { phys: 'a', if: 'ltr2', mac: '02:00:00:00:72:04', ips: ['10.200.0.4/24'] });
  return m;
}

describe('qemu guest on an lsdn tap', { skip }, () => {
  it('pings a virt of its net on another host, not one of another net', { timeout: 150_000 }, async (t) => {
    const { missing } = await kernelSupport();
    if (missing.has('vxlan/static')) return t.skip(missing.get('vxlan/static'));
    const assets = vmAssets();
    if (typeof assets === 'string') return t.skip(assets);
    const t0 = Date.now();
    const m = model();
    const layout = await labFor(t, m, 'qemu');
    const nsA = layout.physNs.get('a') as string;
    const vm = m.net('blue')!.virts.get('vm')!;
    const mtu = overlayMtu(vm.net, vm.phys!) as number;

    // The tap is lsdn's: created by apply, marked, enslaved, with the overlay's MTU.
    const [tap] = await new Kernel({ netns: nsA }).json<{ ifname: string; mtu: number; master?: string; ifalias?: string; linkinfo?: { info_kind?: string; info_data?: { type?: string } } }[]>(
      'ip', ['-d', '-j', 'link', 'show', 'dev', 'ltvm0'],
    );
    assert.equal(tap?.linkinfo?.info_kind, 'tun');
    assert.equal(tap?.linkinfo?.info_data?.type, 'tap');
    assert.equal(tap?.ifalias, 'lsdn:qemu:tap:blue/vm');
    assert.ok(tap?.master?.startsWith('lsb-'), `tap enslaved to lsdn's bridge: ${JSON.stringify(tap)}`);
    assert.equal(tap?.mtu, mtu);

    // red works (r2 on a reaches r1 on b), so the guest's failure to reach r1 is isolation.
    await new Kernel({ netns: layout.virtNs.get('red/r2') as string }).run('ping', ['-c', '1', '-W', '2', '10.200.0.3']);

    const run = await runTestVm({
      netns: nsA,
      assets,
      nicArgs: qemuNetArgs(vm),
      cmdline: 'lsdn.ip=10.200.0.1/24 lsdn.ping=10.200.0.2 lsdn.noping=10.200.0.3 lsdn.wait=60',
      timeoutMs: 100_000,
      // While the VM holds its tap: lsdn sees it attached, and refuses to recreate it under the VM.
      whileUp: async () => {
        const read = await readHostState(new Kernel({ netns: nsA }), { context: 'qemu' });
        assert.equal((read.state.get('tap ltvm0') as { attached?: boolean } | undefined)?.attached, true);
        vm.configure({ tap: { user: 'nobody' } });
        try {
          const p = await planHost(m, { phys: 'a', netns: nsA });
          const step = p.plan.steps.find((s) => s.key === 'tap ltvm0');
          assert.match(step?.blocked ?? '', /in use by a running VM/, JSON.stringify(p.plan.steps));
          assert.deepEqual(p.plan.steps.filter((s) => !s.blocked), [], 'nothing else changes');
        } finally {
          vm.configure({ tap: true });
        }
      },
    });
    const got = markers(run.output);
    const console = `guest console (${run.ms} ms, exit ${run.exitCode}${run.timedOut ? ', timed out' : ''}):\n${run.output}`;
    assert.ok(got.includes('LSDN-DONE'), console);
    assert.ok(got.includes(`LSDN-MTU ${mtu}`), `the guest was told the overlay MTU ${mtu} (host_mtu)\n${console}`);
    assert.ok(got.includes('LSDN-MAC 52:54:00:00:71:01'), console);
    assert.ok(got.includes('LSDN-PING-OK 10.200.0.2'), `guest -> blue/b1 on host b\n${console}`);
    assert.ok(got.includes('LSDN-PING-FAIL 10.200.0.3'), `guest must not reach red/r1\n${console}`);

    // The tap outlives the VM (persistent, lsdn's) and a full apply has nothing left to do.
    const after = await readHostState(new Kernel({ netns: nsA }), { context: 'qemu' });
    const tapObj = after.state.get('tap ltvm0');
    assert.equal(tapObj?.kind, 'tap');
    const again = await planHost(m, { phys: 'a', netns: nsA });
    assert.deepEqual(again.plan.steps, [], 'a second apply after the VM ran has nothing to do');
    t.diagnostic(`VM booted and pinged in ${run.ms} ms; whole test ${Date.now() - t0} ms`);
  });
});
