/**
 * Live migration (issue 11): the model moves a running virt from host a to host b, the lab
 * moves its interface (src/lab/move.ts, as a migrated VM's tap appears on the destination),
 * every host applies, and traffic from a third host reaches it at once: well under the
 * bridge's 300 s MAC ageing, without waiting for anything to expire.
 *
 *  - vxlan/static (no learning anywhere): apply reprograms every host's FDB from the model,
 *    so the order of updates suffices: nothing needs to be announced.
 *  - vxlan/e2e (learning): remote hosts learnt the VM's MAC behind host a. lsdn relies on the
 *    announcement qemu makes from the destination after a migration (self-announce: frames
 *    from the guest's MAC, `announce-self`); here the guest side sends the equivalent
 *    (a gratuitous ARP from the VM's MAC, busybox arping -U), and the third host's VXLAN FDB
 *    must point at host b right after it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Kernel } from '../../src/kernel/exec.js';
import type { NetworkTypeName } from '../../src/model/netmodel.js';
import { labMoveVirt } from '../../src/lab/move.js';
import { isRoot } from '../helpers/netns.js';
import { applyAll, buildModel, fdbOf, labFor, physIp, pingMany, skipUnlessRunnable } from '../helpers/typelab.js';

const skip = !isRoot() ? 'needs root' : false;
const X = { mac: '02:00:00:00:99:01', ip: '10.0.0.1' };

for (const type of ['vxlan/static', 'vxlan/e2e'] as NetworkTypeName[]) {
  describe(`migration on ${type}`, { skip }, () => {
    it('traffic reaches the VM at its new host right after both hosts apply', { timeout: 60_000 }, async (t) => {
      if (await skipUnlessRunnable(t, type)) return;
      const learning = type === 'vxlan/e2e';
      if (learning && spawnSync('busybox', ['arping', '--help']).error) return t.skip('busybox (busybox-static) is needed to announce the VM');
      const model = buildModel({
        name: 'mig',
        settings: { default: { type } },
        physes: ['a', 'b', 'c'],
        underlay: 4,
        nets: [{
          name: 'n', vid: 90, virts: [
            { name: 'x', phys: 'a', mac: X.mac, ips: [`${X.ip}/24`], if: 'ltx' },
            { name: 'y', phys: 'c', mac: '02:00:00:00:99:02', ips: ['10.0.0.2/24'], if: 'lty' },
            { name: 'z', phys: 'b', mac: '02:00:00:00:99:03', ips: ['10.0.0.3/24'], if: 'ltz' },
          ],
        }],
      });
      const layout = await labFor(t, model, `mig${learning ? 'l' : 's'}`);
      const yNs = layout.virtNs.get('n/y') as string;
      const cNs = layout.physNs.get('c') as string;
      assert.ok((await pingMany(yNs, [X.ip])).get(X.ip), 'y reaches x before the move');
      const remoteOfX = async () => (await fdbOf(cNs)).filter((e) => e.mac === X.mac && e.dst !== undefined).map((e) => e.dst);
      assert.deepEqual(await remoteOfX(), [physIp(0, 4)], "host c sends x's frames to host a");

      // The migration: the model says b, the interface appears there, every host applies.
      const x = model.net('n')!.virts.get('x')!;
      x.connect(model.phys('b')!, 'ltx');
      const t0 = Date.now();
      await labMoveVirt(layout, x, { phys: 'a', if: 'ltx' });
      await applyAll(model, layout);
      if (learning) {
        // What qemu's self-announce does on the destination: a frame from the guest's MAC.
        await new Kernel({ netns: layout.virtNs.get('n/x') as string }).run('busybox', ['arping', '-U', '-c', '1', '-I', 'eth0', X.ip]);
      }
      assert.deepEqual(await remoteOfX(), [physIp(1, 4)], "host c now sends x's frames to host b");
      const reached = (await pingMany(yNs, [X.ip], 3)).get(X.ip);
      const ms = Date.now() - t0;
      assert.ok(reached, `y reaches x on its new host within 3 pings of 1 s (${ms} ms after the move)`);
      t.diagnostic(`${type}: move + apply of 3 hosts${learning ? ' + announce' : ''} + first answer: ${ms} ms`);
    });
  });
}
