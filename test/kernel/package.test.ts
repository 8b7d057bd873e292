/**
 * Packaging: `npm pack` gives a tarball that `npm install -g` installs OFFLINE, with a fresh
 * empty npm cache (the runtime dependencies are bundled in it), into a temporary prefix; then
 * `lsdn` and `lsctl` run from PATH in another directory, `lsdn --version` says the package's
 * version, and `lsdn lab demo` finds the bundled example through the package, not the cwd.
 * (The test runner has just built dist/, so the pack runs without its prepack build.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, uniquePrefix } from '../helpers/netns.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };

function run(cmd: string, args: string[], opts: SpawnSyncOptions & { env: NodeJS.ProcessEnv }) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 180_000, ...opts });
  return { code: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

test('npm pack + npm install -g offline with an empty cache: lsdn and lsctl on PATH, lab demo from any directory', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lsdn-pkg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [cache, prefix, elsewhere] = ['cache', 'prefix', 'elsewhere'].map((d) => join(dir, d)) as [string, string, string];
  for (const d of [cache, prefix, elsewhere]) mkdirSync(d);
  writeFileSync(join(dir, 'npmrc'), '');
  // No npm settings of the caller (npm test sets npm_config_*), no user config, no network.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  Object.assign(env, { npm_config_userconfig: join(dir, 'npmrc'), npm_config_cache: cache, npm_config_offline: 'true', npm_config_update_notifier: 'false' });

  const packed = run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, env });
  assert.equal(packed.code, 0, packed.stderr);
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  assert.equal(tgz, `lsdn-${pkg.version}.tgz`, packed.stdout);
  const listing = run('tar', ['-tzf', join(dir, tgz)], { env }).stdout.split('\n');
  for (const dep of Object.keys(pkg.dependencies)) assert.ok(listing.includes(`package/node_modules/${dep}/package.json`), `${dep} is bundled`);
  for (const f of ['bin/lsdn', 'bin/lsctl', 'dist/cli/main.js', 'examples/cluster.yaml', 'src/lsctl/prelude.tcl', 'examples/systemd/lsdn-apply.service']) {
    assert.ok(listing.includes(`package/${f}`), `${f} is in the package`);
  }
  assert.ok(!listing.some((f) => f.startsWith('package/test/') || /^package\/src\/.*\.ts$/.test(f)), 'no tests or TypeScript sources');

  const inst = run('npm', ['install', '-g', '--prefix', prefix, '--offline', '--cache', cache, '--no-audit', '--no-fund', `./${tgz}`], { cwd: dir, env });
  assert.equal(inst.code, 0, `${inst.stdout}\n${inst.stderr}`);
  assert.doesNotMatch(inst.stderr, /\bwarn\b/i, 'a clean install');
  for (const b of ['lsdn', 'lsctl']) accessSync(join(prefix, 'bin', b), constants.X_OK);
  const PATH = `${join(prefix, 'bin')}:${env.PATH ?? ''}`;
  const onPath = { cwd: elsewhere, env: { ...env, PATH } };

  const v = run('lsdn', ['--version'], onPath);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout.trim(), pkg.version);
  const help = run('lsctl', ['--help'], onPath);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /usage: lsctl SCRIPT/);
  const which = run('sh', ['-c', 'command -v lsdn'], onPath);
  assert.equal(which.stdout.trim(), join(prefix, 'bin', 'lsdn'));

  if (!isRoot()) {
    t.diagnostic('not root: lsdn lab demo skipped');
    return;
  }
  const demo = run('lsdn', ['lab', 'demo', '--prefix', uniquePrefix('pkg')], onPath);
  assert.equal(demo.code, 0, `${demo.stdout}\n${demo.stderr}`);
  assert.match(demo.stdout, /^42 passed, 0 failed$/m);
  assert.match(demo.stderr, /demo passed/);
});
