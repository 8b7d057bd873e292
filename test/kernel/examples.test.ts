/** Every bundled example is valid and really works: `lsdn lab demo FILE` passes on each. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { vdeCloudMissing } from '../helpers/vde.js';

const BIN = new URL('../../bin/lsdn', import.meta.url).pathname;
const DIR = new URL('../../examples/', import.meta.url).pathname;

for (const f of readdirSync(DIR).filter((n) => n.endsWith('.yaml') && n !== 'cluster.yaml')) {
  // vde-cloud.yaml runs VDE's clients, a qemu guest among them (TCG boots in 10-60 s here).
  const vde = f === 'vde-cloud.yaml';
  test(`example ${f}: validate, then lab demo passes`, { timeout: vde ? 400_000 : 150_000 }, (t) => {
    const v = spawnSync(process.execPath, [BIN, 'validate', DIR + f], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
    const missing = vde ? vdeCloudMissing() : undefined;
    if (missing) return t.skip(missing);
    const r = spawnSync(process.execPath, [BIN, 'lab', 'demo', DIR + f], { encoding: 'utf8', timeout: vde ? 360_000 : 120_000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^[1-9]\d* passed, 0 failed$/m);
  });
}
