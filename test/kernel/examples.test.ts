/** Every bundled example is valid and really works: `lsdn lab demo FILE` passes on each. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const BIN = new URL('../../bin/lsdn', import.meta.url).pathname;
const DIR = new URL('../../examples/', import.meta.url).pathname;

for (const f of readdirSync(DIR).filter((n) => n.endsWith('.yaml') && n !== 'cluster.yaml')) {
  test(`example ${f}: validate, then lab demo passes`, () => {
    const v = spawnSync(process.execPath, [BIN, 'validate', DIR + f], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
    const r = spawnSync(process.execPath, [BIN, 'lab', 'demo', DIR + f], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^[1-9]\d* passed, 0 failed$/m);
  });
}
