#!/usr/bin/env node
// Runs the test suite: type-checks and builds (so bin/lsdn runs the current code), then every
// test/**/*.test.ts under node:test with tsx. Arguments narrow it to sub-folders of test/
// (e.g. `node scripts/test.mjs unit golden`). Then the VM step (see vmStep below).
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
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
// The VM step (test/vm/run.ts): the kernel tests of test/vm/guest-tests.ts run in a test guest
// with a full distribution kernel when this kernel lacks a network type (LSDN_VM_STEP=off|on
// forces it); only for the whole suite or its kernel tests.
function vmStep() {
  const mode = process.env.LSDN_VM_STEP ?? 'auto';
  if (mode === 'off') return { run: false, why: 'LSDN_VM_STEP=off' };
  if (mode === 'on') return { run: true, why: 'LSDN_VM_STEP=on' };
  if (dirs.length && !dirs.includes('kernel')) return { run: false, why: 'no kernel tests chosen' };
  if (process.getuid?.() !== 0) return { run: false, why: 'not root (the kernel tests skip too)' };
  const d = spawnSync(process.execPath, [join(root, 'bin/lsdn'), 'doctor', '--json'], { encoding: 'utf8' });
  if (d.status !== 0) return { run: false, why: `lsdn doctor failed: ${d.stderr.trim()}` };
  const lacking = JSON.parse(d.stdout).types.filter((t) => !t.ok).map((t) => t.type);
  return lacking.length
    ? { run: true, why: `this kernel lacks ${lacking.join(', ')}` }
    : { run: false, why: 'this kernel runs every network type' };
}
const vm = vmStep();
const t0 = Date.now();
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, LSDN_TEST: '1', ...(vm.run ? { LSDN_VM_STEP_PLANNED: '1' } : {}) },
});
console.log(`# host tests (Linux ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}): ${((Date.now() - t0) / 1000).toFixed(0)} s, exit ${r.status}`);
if (!vm.run) {
  console.log(`# VM step not run: ${vm.why}`);
  process.exit(r.status ?? 1);
}
console.log(`# VM step (${vm.why}): npm run test:kernels`);
const v = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'test/vm/run.ts'), '--allow-skip'], { cwd: root, stdio: 'inherit' });
process.exit(r.status || v.status || (r.status === null || v.status === null ? 1 : 0));
