/**
 * lsdn watch under store faults, in the lab (one `lsdn watch` process per simulated host):
 * - a compaction past a disconnected watcher's revision (the flannel failure): the watcher
 *   resyncs and converges on the latest model, no update missed;
 * - etcd unreachable under a running ping: nothing torn down, no packet lost beyond noise, the
 *   watchers say they are disconnected, and the next change after it returns converges.
 *   The outage is LSDN_TEST_OUTAGE_S seconds (default 8; the figure is 30).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { etcdMissing, startEtcd, waitHealthy, type Etcd } from '../helpers/etcd.js';
import { isRoot, uniquePrefix } from '../helpers/netns.js';
import { loadModelFile } from '../../src/file/load.js';
import { ClusterLab } from '../../src/cli/lab-cluster.js';
import { labCheck } from '../../src/lab/check.js';

const BIN = new URL('../../bin/lsdn', import.meta.url).pathname;
const EXAMPLE = new URL('../../examples/cluster.yaml', import.meta.url).pathname;
const skip = etcdMissing() ?? (isRoot() ? undefined : 'needs root (namespaces)');
const OUTAGE_S = Number(process.env.LSDN_TEST_OUTAGE_S ?? 8);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function upLab(t: TestContext, etcd: Etcd, tag: string): Promise<ClusterLab> {
  const model = (await loadModelFile(EXAMPLE)).model!;
  // No periodic resync during the test: only the watch (and its repair paths) may converge.
  const lab = await ClusterLab.up(model, { store: etcd.url, prefix: uniquePrefix(tag), env: { LSDN_WATCH_RESYNC_MS: '600000', LSDN_WATCH_BACKOFF_MS: '500' } });
  t.after(() => lab.down());
  return lab;
}

function lsdn(etcd: Etcd, args: string[]): string {
  const r = spawnSync(process.execPath, [BIN, ...args, '--store', etcd.url], { encoding: 'utf8' });
  assert.equal(r.status, 0, `lsdn ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

function status(etcd: Etcd): { code: number | null; rows: { phys: string; applied: number; current?: number }[]; out: string } {
  const s = spawnSync(process.execPath, [BIN, 'cluster', 'status', '--store', etcd.url, '--json'], { encoding: 'utf8' });
  return { code: s.status, rows: s.status === 0 || s.status === 2 ? (JSON.parse(s.stdout) as { rows: { phys: string; applied: number }[] }).rows : [], out: s.stdout + s.stderr };
}

/** The store's current revision (etcdctl's header). */
function revision(etcd: Etcd): number {
  return (JSON.parse(etcd.ctl(['get', '/', '--limit', '1', '-w', 'json'])) as { header: { revision: number } }).header.revision;
}

/** VXLAN ids of a namespace's links. */
function vnis(netns: string): number[] {
  const links = JSON.parse(spawnSync('ip', ['-n', netns, '-d', '-j', 'link', 'show'], { encoding: 'utf8' }).stdout) as { linkinfo?: { info_kind?: string; info_data?: { id?: number } } }[];
  return links.filter((l) => l.linkinfo?.info_kind === 'vxlan').map((l) => l.linkinfo!.info_data!.id!).sort((a, b) => a - b);
}

/** A namespace's link names (what "nothing torn down" compares). */
function linkNames(netns: string): string[] {
  return (JSON.parse(spawnSync('ip', ['-n', netns, '-j', 'link', 'show'], { encoding: 'utf8' }).stdout) as { ifname: string }[]).map((l) => l.ifname).sort();
}

async function restart(etcd: Etcd): Promise<void> {
  const m = etcd.members[0]!;
  await m.start();
  await waitHealthy(m.client, m.proc, m.log);
}

test('a compaction past a disconnected watcher\'s revision: it resyncs and converges on the latest model', { skip }, async (t) => {
  const etcd = await startEtcd(t);
  const lab = await upLab(t, etcd, 'cfc');
  const w = lab.watchers.get('hv1')!;
  const before = revision(etcd);

  // hv1's watcher frozen, etcd restarted under it (its connection is gone, it does not know yet).
  w.proc.kill('SIGSTOP');
  t.after(() => { w.proc.kill('SIGCONT'); });
  await etcd.members[0]!.kill();
  await restart(etcd);
  // Several changes while it is away, then the history it would resume from is compacted away.
  lsdn(etcd, ['net', 'add', 'tenant-c', '--vid', '300', '--attach', 'hv1']);
  lsdn(etcd, ['net', 'add', 'tenant-d', '--vid', '400', '--attach', 'hv1']);
  const beforeLast = revision(etcd);
  lsdn(etcd, ['net', 'add', 'tenant-e', '--vid', '500', '--attach', 'hv1', '--attach', 'hv2']);
  const latest = revision(etcd);
  assert.ok(latest > before + 2);
  etcd.ctl(['compact', String(latest)]);
  w.proc.kill('SIGCONT');

  // Every host applied the model written last (the only model write after beforeLast).
  await lab.waitApplied(beforeLast + 1, ['hv1', 'hv2', 'hv3'], 30_000, (s) => s.seen > beforeLast && s.applied === s.seen && s.result === 'ok');
  const log = w.log.join('');
  // etcd 3.4 cancels the compacted watch (compact_revision set, cancel_reason empty).
  assert.match(log, /the watch ended \(Watcher canceled/, `hv1's watch was canceled for the compaction:\n${log.slice(-1500)}`);
  // The kernel holds every change made while it was away (tenants c, d, e: VNIs 300, 400, 500).
  const ids = vnis(w.netns);
  for (const vni of [300, 400, 500]) assert.ok(ids.includes(vni), `vni ${vni} applied on hv1: ${ids.join(',')}`);
  assert.ok(vnis(lab.watchers.get('hv2')!.netns).includes(500), 'tenant-e applied on hv2');
  // The watch made anew after the cancel carries the next change (no periodic resync here).
  const beforeNext = revision(etcd);
  lsdn(etcd, ['net', 'add', 'tenant-f', '--vid', '600', '--attach', 'hv1']);
  await lab.waitApplied(beforeNext + 1, ['hv1'], 30_000, (s) => s.seen > beforeNext && s.applied === s.seen && s.result === 'ok');
  assert.ok(vnis(w.netns).includes(600), 'tenant-f applied on hv1');
  const s = status(etcd);
  assert.equal(s.code, 0, s.out);
  assert.equal((await labCheck(lab.model, lab.layout)).failed, 0);
});

test(`etcd unreachable for ${OUTAGE_S} s under a running ping: nothing torn down, watchers say so, the next change converges`, { skip }, async (t) => {
  const etcd = await startEtcd(t);
  const lab = await upLab(t, etcd, 'cfu');
  const from = lab.layout.virtNs.get('tenant-a/web')!;
  const nss = [...lab.watchers.values()].map((w) => w.netns);
  const linksBefore = nss.map(linkNames);

  // A ping from tenant-a/web (hv1) to tenant-a/db (hv2) across the whole outage, 5 a second.
  const count = Math.ceil((OUTAGE_S + 4) * 5);
  const ping = spawn('ip', ['netns', 'exec', from, 'ping', '-i', '0.2', '-W', '1', '-c', String(count), '10.0.0.2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => { ping.kill(); });
  let pingOut = '';
  ping.stdout.on('data', (d: Buffer) => { pingOut += d.toString(); });
  const pingDone = new Promise<number | null>((r) => ping.once('exit', r));
  await sleep(1000);

  await etcd.members[0]!.kill();
  await sleep(OUTAGE_S * 1000);
  for (const w of lab.watchers.values()) {
    assert.match(w.log.join(''), /the store is unreachable/, `${w.phys}'s watcher says it is disconnected:\n${w.log.join('').slice(-800)}`);
  }
  assert.deepEqual(nss.map(linkNames), linksBefore, 'nothing torn down during the outage');
  await restart(etcd);
  await pingDone;
  const m = /(\d+) packets transmitted, (\d+) received/.exec(pingOut);
  assert.ok(m, pingOut);
  const lost = Number(m[1]) - Number(m[2]);
  assert.ok(lost <= 2, `${lost} of ${m[1]} pings lost across the outage:\n${pingOut.slice(-600)}`);
  assert.deepEqual(nss.map(linkNames), linksBefore, 'nothing torn down after the outage');

  // The next change converges everywhere.
  const beforeAdd = revision(etcd);
  lsdn(etcd, ['net', 'add', 'tenant-c', '--vid', '300', '--attach', 'hv1', '--attach', 'hv2']);
  await lab.waitApplied(beforeAdd + 1, ['hv1', 'hv2', 'hv3'], 30_000, (s) => s.seen > beforeAdd && s.applied === s.seen && s.result === 'ok');
  for (const p of ['hv1', 'hv2']) assert.ok(vnis(lab.watchers.get(p)!.netns).includes(300), `tenant-c applied on ${p}`);
  const s = status(etcd);
  assert.equal(s.code, 0, s.out);
  assert.equal((await labCheck(lab.model, lab.layout)).failed, 0);
});
