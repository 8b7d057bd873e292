/** The README's main command, end to end: `lsdn lab demo` on the bundled example. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const BIN = new URL('../../bin/lsdn', import.meta.url).pathname;

test('lsdn lab demo: up, check (every pair as expected), down', (t) => {
  const started = Date.now();
  const r = spawnSync(process.execPath, [BIN, 'lab', 'demo'], { encoding: 'utf8', timeout: 120_000 });
  const seconds = (Date.now() - started) / 1000;
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^42 passed, 0 failed$/m, r.stdout);
  assert.match(r.stderr, /demo passed/);
  t.diagnostic(`lsdn lab demo took ${seconds.toFixed(1)} s`);
  const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  assert.doesNotMatch(left, /^lsl-demo-/m, 'the demo removes its namespaces');
});

test('a virt moved without reapplying makes `lsdn lab check` fail and name exactly its pairs; applying fixes it', async (t) => {
  const { mkdtempSync, writeFileSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { loadModelText } = await import('../../src/file/load.js');
  const { labUp, labDown, labLayout } = await import('../../src/lab/lab.js');
  const { labMoveVirt } = await import('../../src/lab/move.js');
  const { applyInLab } = await import('../../src/lab/apply.js');
  const { uniquePrefix } = await import('../helpers/netns.js');

  const prefix = uniquePrefix('mv');
  const dir = mkdtempSync(join(tmpdir(), 'lsdn-lab-'));
  t.after(async () => {
    await labDown(prefix);
    rmSync(dir, { recursive: true, force: true });
  });
  const text = readFileSync(new URL('../../examples/cluster.yaml', import.meta.url), 'utf8');
  const file = join(dir, 'cluster.yaml');
  writeFileSync(file, text);
  const model = loadModelText(text, file).model!;
  const layout = await labUp(model, { prefix, apply: (p, ns) => applyInLab(model, p, ns) });

  // The VM b-api migrates hv2 -> hv3 (its interface follows), but nobody applies the model.
  const api = model.virt('tenant-b/api')!;
  api.connect(model.phys('hv3')!, 'b-api');
  await labMoveVirt(layout, api, { phys: 'hv2', if: 'b-api' });
  writeFileSync(file, text.replace('api:    { phys: hv2', 'api:    { phys: hv3'));

  const check = () => spawnSync(process.execPath, [BIN, 'lab', 'check', file, '--prefix', prefix], { encoding: 'utf8', timeout: 60_000 });
  const broken = check();
  assert.equal(broken.status, 1, broken.stdout + broken.stderr);
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(broken.stdout);
  assert.ok(summary, broken.stdout);
  // tenant-b/api can neither reach nor be reached by its two net-mates: exactly 4 pairs.
  assert.equal(Number(summary[2]), 4, broken.stdout);
  const unexpected = broken.stdout.split('\n').filter((l) => /!!|unexpected/i.test(l) && /tenant-b\/api/.test(l));
  assert.ok(unexpected.length > 0, `the report names tenant-b/api:\n${broken.stdout}`);

  // Apply the moved model on every simulated host: the check passes again.
  for (const phys of model.physes.values()) await applyInLab(model, phys, layout.physNs.get(phys.name)!);
  const fixed = check();
  assert.equal(fixed.status, 0, fixed.stdout + fixed.stderr);
  assert.match(fixed.stdout, /^42 passed, 0 failed$/m);
  assert.equal(labLayout(model, { prefix }).prefix, prefix);

  // Full-size frames cross hosts: the VM side has the overlay MTU (1450), DF set, no fragmentation.
  const web = layout.virtNs.get('tenant-a/web')!;
  const mtu = spawnSync('ip', ['-n', web, '-j', 'link', 'show', 'eth0'], { encoding: 'utf8' });
  assert.equal(JSON.parse(mtu.stdout)[0].mtu, 1450);
  const big = spawnSync('ip', ['netns', 'exec', web, 'ping', '-c', '2', '-W', '1', '-M', 'do', '-s', '1422', '10.0.0.2'], { encoding: 'utf8' });
  assert.equal(big.status, 0, big.stdout + big.stderr);
});
