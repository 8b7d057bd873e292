/**
 * Every bundled example is valid and really works: `lsdn lab demo FILE` passes on each. An
 * example whose network types this kernel cannot run (vlan-and-geneve.yaml on a kernel without
 * 802.1Q or Geneve) skips with the reason here and runs in the test guest (test/vm).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import type { NetworkTypeName } from '../../src/model/netmodel.js';
import { vdeCloudMissing } from '../helpers/vde.js';
import { loadValid } from '../helpers/model.js';
import { skipUnlessRunnable } from '../helpers/typelab.js';
import { limit } from '../helpers/time.js';

const BIN = new URL('../../bin/lsdn', import.meta.url).pathname;
const DIR = new URL('../../examples/', import.meta.url).pathname;

/** The network types the example's nets use. */
function typesOf(file: string): NetworkTypeName[] {
  const model = loadValid(readFileSync(file, 'utf8'), file);
  const types = new Set<NetworkTypeName>();
  for (const n of model.nets.values()) {
    const s = n.effectiveSettings();
    if (s) types.add(s.type);
  }
  return [...types];
}

for (const f of readdirSync(DIR).filter((n) => n.endsWith('.yaml') && n !== 'cluster.yaml')) {
  // vde-cloud.yaml runs VDE's clients, a qemu guest among them (TCG boots in 10-60 s here).
  const vde = f === 'vde-cloud.yaml';
  test(`example ${f}: validate, then lab demo passes`, { timeout: limit(vde ? 400_000 : 150_000) }, async (t) => {
    const v = spawnSync(process.execPath, [BIN, 'validate', DIR + f], { encoding: 'utf8', timeout: limit(60_000) });
    assert.equal(v.status, 0, v.stderr);
    if (await skipUnlessRunnable(t, ...typesOf(DIR + f))) return;
    const missing = vde ? vdeCloudMissing() : undefined;
    if (missing) return t.skip(missing);
    const r = spawnSync(process.execPath, [BIN, 'lab', 'demo', DIR + f], { encoding: 'utf8', timeout: limit(vde ? 360_000 : 120_000) });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^[1-9]\d* passed, 0 failed$/m);
    t.diagnostic(r.stdout.trim().split('\n').at(-1) ?? '');
  });
}
