/** The README's main command, end to end: `lsdn lab demo` on the bundled example. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const BIN = new URL('../../bin/lsdn', import.meta.url).pathname;

test('lsdn lab demo: up, check (every pair as expected), down, well under a minute', () => {
  const started = Date.now();
  const r = spawnSync(process.execPath, [BIN, 'lab', 'demo'], { encoding: 'utf8', timeout: 120_000 });
  const seconds = (Date.now() - started) / 1000;
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^42 passed, 0 failed$/m, r.stdout);
  assert.match(r.stderr, /demo passed/);
  assert.ok(seconds < 60, `took ${seconds}s`);
  const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  assert.doesNotMatch(left, /^lsl-demo-/m, 'the demo removes its namespaces');
});
