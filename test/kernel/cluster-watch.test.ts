/**
 * lsdn watch against a real etcd, in the lab: one `lsdn watch` process per simulated host.
 * Converges on push; a move converges and the VM answers from every peer, hosts it does not
 * concern read no kernel; `cluster status` agrees (exit 0/2); a model written by hand that is
 * invalid is refused by every watcher and reported; a SIGKILLed watcher restarted converges;
 * its metrics scrape.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { etcdMissing, freePort, startEtcd } from '../helpers/etcd.js';
import { isRoot, uniquePrefix } from '../helpers/netns.js';
import { loadModelFile } from '../../src/file/load.js';
import { ClusterLab, stopWatcher } from '../../src/cli/lab-cluster.js';
import { labCheck } from '../../src/lab/check.js';

const BIN = new URL('../../bin/lsdn', import.meta.url).pathname;
const EXAMPLE = new URL('../../examples/cluster.yaml', import.meta.url).pathname;
const skip = etcdMissing() ?? (isRoot() ? undefined : 'needs root (namespaces)');

test('watchers converge the lab from the store; moves, invalid models, a killed watcher, status and metrics', { skip }, async (t) => {
  const etcd = await startEtcd(t);
  const model = (await loadModelFile(EXAMPLE)).model!;
  const metricsPort = await freePort();
  const lab = await ClusterLab.up(model, { store: etcd.url, prefix: uniquePrefix('cw'), env: { LSDN_WATCH_RESYNC_MS: '600000' } });
  t.after(() => lab.down());
  const status = () => spawnSync(process.execPath, [BIN, 'cluster', 'status', '--store', etcd.url, '--json'], { encoding: 'utf8' });

  let s = status();
  assert.equal(s.status, 0, s.stdout + s.stderr);
  assert.equal((JSON.parse(s.stdout) as { rows: unknown[] }).rows.length, 3);
  const first = await labCheck(model, lab.layout);
  assert.equal(first.failed, 0);

  // A move: every host applies it, the VM answers every peer; a host it does not concern reads no kernel.
  const m = await lab.move('tenant-a/web', 'hv2');
  assert.ok(m.kernelReads >= 1 && m.kernelReads < 3, `hv3 holds no change for this move (kernel reads: ${m.kernelReads})`);
  assert.equal((await labCheck(lab.model, lab.layout)).failed, 0);
  const st = await lab.statuses();
  assert.ok(st.get('hv3')!.unchanged >= 1);

  // Invalid, by hand: refused by every watcher, the last good model stays, status says so.
  const good = m.revision;
  etcd.ctl(['put', '/lsdn/demo/virt/tenant-a/hand', '{"phys":"hv1","if":"a-hand","mac":"nope"}']);
  await lab.waitApplied(good, undefined, 20_000, (x) => x.result === 'invalid');
  s = status();
  assert.equal(s.status, 2);
  const rows = (JSON.parse(s.stdout) as { rows: { applied: number; problems?: string[] }[] }).rows;
  for (const r of rows) {
    assert.equal(r.applied, good);
    assert.match(r.problems?.join('\n') ?? '', /\/lsdn\/demo\/virt\/tenant-a\/hand:mac: error/);
  }
  assert.equal((await labCheck(lab.model, lab.layout)).failed, 0, 'the last good model stays applied');
  etcd.ctl(['del', '/lsdn/demo/virt/tenant-a/hand']);
  await lab.waitApplied(good, undefined, 20_000, (x) => x.result === 'ok');

  // A watcher SIGKILLed, the model changed while it is dead, restarted: it converges; with metrics.
  const w = lab.watchers.get('hv1')!;
  await stopWatcher(w, 'SIGKILL');
  const add = spawnSync(process.execPath, [BIN, 'net', 'add', 'tenant-c', '--vid', '300', '--attach', 'hv1', '--store', etcd.url], { encoding: 'utf8' });
  assert.equal(add.status, 0, add.stderr);
  assert.equal(status().status, 2, 'hv1 is behind (its status lives on until its lease expires)');
  lab.watchers.delete('hv1');
  lab.startWatcher('hv1', w.netns);
  const rev = (await lab.statuses()).get('hv2')!.seen;
  await lab.waitApplied(rev, ['hv1', 'hv2', 'hv3'], 30_000, (x) => x.applied >= rev && x.result === 'ok');
  assert.equal((await labCheck(lab.model, lab.layout)).failed, 0);
  await stopWatcher(lab.watchers.get('hv1')!);
  lab.watchers.delete('hv1');
  (lab as unknown as { opts: { watchArgs?: string[] } }).opts.watchArgs = ['--metrics', `127.0.0.1:${metricsPort}`];
  lab.startWatcher('hv1', w.netns);
  let text = '';
  for (let i = 0; i < 150 && !/lsdn_watch_applied_revision [1-9]/.test(text); i++) {
    await new Promise((r) => setTimeout(r, 100));
    text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text(), () => '');
  }
  assert.match(text, /lsdn_watch_applied_revision [1-9]\d*/);
  assert.match(text, /lsdn_watch_store_connected 1/);
  assert.match(text, /lsdn_watch_apply_duration_seconds_count\{full="true"\} [1-9]/);
  assert.match(text, /lsdn_watch_steps_total\{result="done"\} \d+/);
  assert.match(text, /lsdn_watch_drift_objects \d+/);
  assert.equal(status().status, 0);
});
