#!/usr/bin/env node
// Runs the test suite: type-checks and builds (so bin/lsdn runs the current code), then every
// test/**/*.test.ts under node:test with tsx. Arguments narrow it to sub-folders of test/
// (e.g. `node scripts/test.mjs unit golden`).
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dirs = process.argv.slice(2);

function find(dir) {
  const out = [];
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (e.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const step = (what, cmd, args) => {
  console.log(`# ${what}`);
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
};
step('build (tsc)', 'npx', ['tsc', '-p', 'tsconfig.build.json']);
if (dirs.length === 0) {
  step('type-check tests and tools (tsc)', 'npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']);
  step('lint (eslint)', 'npx', ['eslint', '.']);
  step('JSON Schema up to date', 'npx', ['tsx', 'scripts/gen-schema.ts', '--check']);
}
const files = (dirs.length ? dirs.map((d) => join(root, 'test', d)) : [join(root, 'test')]).flatMap(find);
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, LSDN_TEST: '1' },
});
process.exit(r.status ?? 1);
