/**
 * The netmodel in etcd, against a real etcd started by the test: the push/pull round trip,
 * invalid writes refused (store unchanged, problems located by key), concurrent writers (no
 * change lost, no address given twice), a push larger than one transaction seen all or nothing,
 * the object verbs' refusals, and etcd roles (a host's credentials cannot change the model).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { etcdMissing, startEtcd } from '../helpers/etcd.js';
import { Store } from '../../src/store/etcd.js';
import { readCommitted, readModel, writeModel, replaceWith } from '../../src/store/model.js';
import { addNet, addPhys, addVirt } from '../../src/cluster/change.js';
import { keysToFile, modelToKeys } from '../../src/cluster/layout.js';
import { loadModelFile } from '../../src/file/load.js';
import { modelToFile } from '../../src/file/dump.js';
import { StoreError } from '../../src/core/errors.js';

const BIN = new URL('../../bin/lsdn', import.meta.url).pathname;
const EXAMPLE = new URL('../../examples/cluster.yaml', import.meta.url).pathname;
const skip = etcdMissing();

function lsdn(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A YAML/JSON model text as JSON with every mapping's keys sorted (order-free comparison). */
function canonical(text: string): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sort) : v && typeof v === 'object'
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, sort(x)]))
      : v;
  return JSON.stringify(sort(parse(text)));
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'lsdn-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function store(t: { after: (fn: () => void) => void }, url: string, opts: ConstructorParameters<typeof Store>[0] = {}): Store {
  const s = new Store({ store: url, ...opts });
  t.after(() => s.close());
  return s;
}

test('push, pull, push again: the round trip changes nothing; diff agrees; the stored model is the file\'s', { skip }, async (t) => {
  const etcd = await startEtcd(t);
  const env = { LSDN_STORE: etcd.url };
  const push = lsdn(['push', EXAMPLE], env);
  assert.equal(push.code, 0, push.stderr);
  assert.match(push.stdout, /\+ \/lsdn\/demo\/virt\/tenant-a\/web\n/);
  assert.match(push.stdout, /committed at revision \d+ \(generation 1, 15 key\(s\), 1 transaction\(s\)\)/);
  // One key per object, each value that object in the file schema.
  const web = JSON.parse(etcd.ctl(['get', '--print-value-only', '/lsdn/demo/virt/tenant-a/web'])) as Record<string, unknown>;
  assert.equal(web.phys, 'hv1');

  const pull = lsdn(['pull'], env);
  assert.equal(pull.code, 0, pull.stderr);
  const dump = lsdn(['dump', EXAMPLE]);
  // The same model; objects come back in name order (etcd keeps keys sorted).
  assert.equal(canonical(pull.stdout), canonical(dump.stdout), 'the stored model is exactly the file loader\'s');
  assert.notEqual(pull.stdout, '');
  const dir = tempDir(t);
  writeFileSync(join(dir, 'pulled.yaml'), pull.stdout);
  const again = lsdn(['push', join(dir, 'pulled.yaml')], env);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /no change/);
  assert.equal(lsdn(['diff', EXAMPLE], env).code, 0);
  assert.equal(canonical(lsdn(['pull', '--format', 'json'], env).stdout), canonical(lsdn(['dump', '--format', 'json', EXAMPLE]).stdout));

  // A changed file: diff names the key and exits 2; push --dry-run writes nothing.
  writeFileSync(join(dir, 'moved.yaml'), pull.stdout.replace(/(web:\n(?:\s+\w+: .*\n)*?\s+phys: )hv1/, '$1hv2'));
  const d = lsdn(['diff', join(dir, 'moved.yaml')], env);
  assert.equal(d.code, 2, d.stderr);
  assert.match(d.stdout, /^~ \/lsdn\/demo\/virt\/tenant-a\/web$/m);
  const before = etcd.ctl(['get', '--prefix', '/lsdn/demo/']);
  assert.match(lsdn(['push', '--dry-run', join(dir, 'moved.yaml')], env).stdout, /would change 1 key/);
  assert.equal(etcd.ctl(['get', '--prefix', '/lsdn/demo/']), before);
});

test('an invalid push or object verb is refused: the store unchanged, problems located by key and field', { skip }, async (t) => {
  const etcd = await startEtcd(t);
  const env = { LSDN_STORE: etcd.url };
  assert.equal(lsdn(['push', EXAMPLE], env).code, 0);
  const before = etcd.ctl(['get', '--prefix', '/lsdn/demo/', '-w', 'json']).replace(/"revision":\d+,/, '');
  const dir = tempDir(t);
  const bad = lsdn(['dump', EXAMPLE]).stdout.replace('mac: 02:0a:00:00:00:01', 'mac: zz');
  assert.notEqual(bad, lsdn(['dump', EXAMPLE]).stdout);
  writeFileSync(join(dir, 'bad.yaml'), bad);
  const r = lsdn(['push', join(dir, 'bad.yaml')], env);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /^\/lsdn\/demo\/virt\/tenant-a\/\w+:mac: error: virt tenant-a\/\w+: MAC "zz" is malformed/m);
  assert.match(r.stderr, /nothing was written to \/lsdn\/demo\//);

  const v = lsdn(['virt', 'add', 'tenant-a/new', '--phys', 'nowhere', '--mac', '52:54:00:00:00:99'], env);
  assert.equal(v.code, 2);
  assert.match(v.stderr, /^\/lsdn\/demo\/virt\/tenant-a\/new:phys: error: .*phys "nowhere"/m);
  const rm = lsdn(['phys', 'rm', 'hv1'], env);
  assert.equal(rm.code, 1);
  assert.match(rm.stderr, /phys "hv1" is still used by .*virt tenant-a\/web/);
  const nrm = lsdn(['net', 'rm', 'tenant-b'], env);
  assert.match(nrm.stderr, /net "tenant-b" still has 3 virt\(s\)/);
  assert.equal(etcd.ctl(['get', '--prefix', '/lsdn/demo/', '-w', 'json']).replace(/"revision":\d+,/, ''), before);

  // A value written by hand that is not JSON: located by its key.
  etcd.ctl(['put', '/lsdn/demo/virt/tenant-a/hand', '{not json']);
  const p = lsdn(['pull'], env);
  assert.equal(p.code, 2);
  assert.match(p.stderr, /^\/lsdn\/demo\/virt\/tenant-a\/hand: error: key .*: the value is not JSON/m);
});

test('concurrent writers lose nothing: 10 writers add 100 virts (half allocated), every one stored, no address twice', { skip }, async (t) => {
  const etcd = await startEtcd(t);
  const s = store(t, etcd.url, { context: 'load' });
  await writeModel(s, (f) => {
    f.name = 'load';
    f.settings = { default: { type: 'vxlan/static' } };
    addPhys(f, 'h1', { if: 'eth0', ip: '192.0.2.1' });
    addPhys(f, 'h2', { if: 'eth0', ip: '192.0.2.2' });
    return addNet(f, 'n', { vid: 7, ipv4: { subnet: '10.20.0.0/24' } });
  });
  // Two writers at once, both changes kept.
  await Promise.all([
    writeModel(store(t, etcd.url, { context: 'load' }), (f) => addVirt(f, 'n/first', { phys: 'h1', if: 'tap-first', mac: '52:54:00:00:10:01', ip: '10.20.0.5/24' })),
    writeModel(store(t, etcd.url, { context: 'load' }), (f) => addVirt(f, 'n/second', { phys: 'h2', if: 'tap-second', mac: '52:54:00:00:10:02', ip: '10.20.0.6/24' })),
  ]);
  const writers = Array.from({ length: 10 }, (_, w) => {
    const ws = store(t, etcd.url, { context: 'load' });
    return (async () => {
      let attempts = 0;
      for (let i = 0; i < 10; i++) {
        const n = w * 10 + i;
        const hex = n.toString(16).padStart(2, '0');
        const fields = { phys: n % 2 ? 'h1' : 'h2', if: `tap-v${n}`, mac: `52:54:00:00:20:${hex}`, ...(n % 2 ? {} : { ip: `10.20.0.${100 + n / 2}/24` }) };
        const r = await writeModel(ws, (f) => addVirt(f, `n/v${n}`, fields), { retries: 200 });
        attempts += r.attempts;
      }
      return attempts;
    })();
  });
  const attempts = await Promise.all(writers);
  assert.ok(attempts.reduce((a, b) => a + b) > 100, 'the writers did race (some retried)');
  const { model, problems } = await readModel(s);
  assert.deepEqual(problems.filter((p) => p.severity === 'error'), []);
  const virts = model!.net('n')!.virts;
  assert.equal(virts.size, 102);
  for (let n = 0; n < 100; n++) assert.ok(virts.has(`v${n}`), `v${n} stored`);
  // Allocated addresses: written with their virts, none twice, none a static one.
  const allocated = [...model!.allocations.values()];
  assert.equal(allocated.length, 50, 'the 50 virts without an address got one each');
  const statics = [...virts.values()].flatMap((v) => v.ips.map((ip) => ip.split('/')[0]));
  assert.equal(new Set([...allocated, ...statics]).size, allocated.length + statics.length, 'no address given twice');
});

test('a push larger than one transaction is seen all or nothing, and a dead pusher\'s half is taken over', { skip }, async (t) => {
  const etcd = await startEtcd(t);
  const loaded = await loadModelFile(EXAMPLE);
  const s = store(t, etcd.url, { context: 'demo', maxTxnOps: 4 });
  await writeModel(s, replaceWith(modelToFile(loaded.model!)));
  const first = await readCommitted(s);
  // The next model: every virt moves (16 keys change: 4-op transactions -> several).
  const moved = modelToFile(loaded.model!) as { nets: Record<string, { virts: Record<string, { mac?: string }> }> };
  for (const n of Object.values(moved.nets)) for (const v of Object.values(n.virts)) v.mac = `12${v.mac!.slice(2)}`;
  const wanted = modelToKeys((await import('../../src/cluster/candidate.js')).candidate('/lsdn/demo/', moved).model!, '/lsdn/demo/');
  const seen = new Set<string>();
  let done = false;
  const reader = (async () => {
    const r = store(t, etcd.url, { context: 'demo' });
    while (!done) {
      const snap = await readCommitted(r);
      const same = (a: Map<string, string>, b: Map<string, string>) => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
      if (same(snap.keys, first.keys)) seen.add('old');
      else if (same(snap.keys, wanted)) seen.add('new');
      else seen.add(`a half-written model at ${snap.readRevision}`);
    }
  })();
  const w = await writeModel(s, replaceWith(moved));
  done = true;
  await reader;
  assert.ok(w.txns > 2, `several transactions (${w.txns})`);
  assert.deepEqual([...seen].filter((x) => x !== 'old' && x !== 'new'), []);
  assert.deepEqual((await readCommitted(s)).keys, wanted);

  // A pusher that died after its first part: readers keep the committed model; a later writer takes over.
  etcd.ctl(['put', '/lsdn/demo/pending', JSON.stringify({ id: 'dead', by: 'a dead pusher', at: new Date(Date.now() - 3_600_000).toISOString() })]);
  etcd.ctl(['put', '/lsdn/demo/virt/tenant-a/web', '{"phys":"hv3","if":"a-web","mac":"02:0a:00:00:00:09"}']);
  const during = await readCommitted(s);
  assert.equal(during.pending?.by, 'a dead pusher');
  assert.deepEqual(during.keys, wanted, 'the half-written part is not seen');
  await writeModel(s, replaceWith(modelToFile(loaded.model!)));
  const after = await readCommitted(s);
  assert.equal(after.pending, undefined);
  assert.deepEqual(after.keys, first.keys);
  assert.deepEqual(keysToFile('/lsdn/demo/', after.keys).problems, []);
});

test('etcd roles: a host\'s credentials read the model and write only their status key; an operator\'s write the model', { skip }, async (t) => {
  const etcd = await startEtcd(t);
  const root = { ETCDCTL_USER: 'root:rootpw' };
  // The roles as README's "Cluster mode" section documents them.
  for (const args of [
    ['user', 'add', 'root:rootpw'],
    ['role', 'add', 'lsdn-host'],
    ['role', 'grant-permission', 'lsdn-host', 'read', '--prefix=true', '/lsdn/demo/'],
    ['role', 'grant-permission', 'lsdn-host', 'readwrite', '--prefix=true', '/lsdn/demo/status/'],
    ['role', 'add', 'lsdn-operator'],
    ['role', 'grant-permission', 'lsdn-operator', 'readwrite', '--prefix=true', '/lsdn/demo/'],
    ['user', 'add', 'hv1:hostpw'],
    ['user', 'grant-role', 'hv1', 'lsdn-host'],
    ['user', 'add', 'ops:opspw'],
    ['user', 'grant-role', 'ops', 'lsdn-operator'],
    ['auth', 'enable'],
  ]) etcd.ctl(args);
  const ops = lsdn(['push', EXAMPLE, '--user', 'ops:opspw'], { LSDN_STORE: etcd.url });
  assert.equal(ops.code, 0, ops.stderr);
  const host = lsdn(['virt', 'move', 'tenant-a/web', '--phys', 'hv2', '--context', 'demo'], { LSDN_STORE: etcd.url, ETCDCTL_USER: 'hv1', ETCDCTL_PASSWORD: 'hostpw' });
  assert.equal(host.code, 1);
  assert.match(host.stderr, /etcd refused model write .*permission denied: user hv1 may not change the model under \/lsdn\/demo\/ \(hosts' roles may only write their status key/);
  const hs = store(t, etcd.url, { context: 'demo', user: 'hv1:hostpw' });
  const { model } = await readModel(hs);
  assert.equal(model?.phys('hv1')?.name, 'hv1', 'a host reads the model');
  await assert.rejects(writeModel(hs, (f) => addPhys(f, 'hv9', {})), (e: unknown) => e instanceof StoreError && /permission denied/.test(e.message));
  const ok = await hs.txn([], [{ put: '/lsdn/demo/status/hv1', value: '{}' }], 'status write');
  assert.equal(ok.ok, true, 'a host writes its status key');
  assert.match(etcd.ctl(['get', '/lsdn/demo/virt/tenant-a/web', '--print-value-only'], root), /"phys":"hv1"/);
  await assert.rejects(writeModel(store(t, etcd.url, { context: 'demo', user: 'hv1:wrong' }), (f) => f), (e: unknown) => e instanceof StoreError && /credentials|authentication/i.test(e.message));
});
