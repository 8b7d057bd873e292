/** The CLI's contract: exit codes, FILE:LINE:COL problems on stderr, --json, dumps. Runs bin/lsdn (built by the test runner). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = new URL('../../bin/lsdn', import.meta.url).pathname;
const EXAMPLE = new URL('../../examples/cluster.yaml', import.meta.url).pathname;

function lsdn(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tempFile(t: { after: (fn: () => void) => void }, name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'lsdn-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

test('lsdn validate: exit 0 on a valid model', () => {
  const r = lsdn('validate', EXAMPLE);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /valid \(2 nets, 3 physes, 7 virts\)/);
});

test('lsdn validate: exit 2 and FILE:LINE:COL problems on stderr, all of them', (t) => {
  const f = tempFile(t, 'bad.yaml', [
    'settings: { default: { type: vxlan/static } }',
    'physes:',
    '  a: { if: eth0, ip: 192.0.2.1 }',
    '  b: { if: eth0-with-a-very-long-name, ip: 192.0.2.1 }',
    'nets:',
    '  blue:',
    '    vid: 99999999',
    '    virts:',
    '      x: { phys: a, if: t0, mac: "01:00:5e:00:00:01" }',
    '      y: { phys: b, if: t1 }',
  ].join('\n'));
  const r = lsdn('validate', f);
  assert.equal(r.code, 2);
  const lines = r.stderr.trim().split('\n');
  for (const l of lines) assert.match(l, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+:\\d+: (error|warning): `), l);
  assert.match(r.stderr, /:4:\d+: error: phys b: .*15/);
  assert.match(r.stderr, /:4:\d+: error: phys b: .*192\.0\.2\.1/);
  assert.match(r.stderr, /:7:10: error: net blue: .*99999999/);
  assert.match(r.stderr, /:9:\d+: error: virt blue\/x: .*multicast/);
  assert.match(r.stderr, /:10:\d+: error: virt blue\/y: .*MAC/);
});

test('lsdn validate --json prints the problems as JSON', (t) => {
  const f = tempFile(t, 'bad.yaml', 'nets:\n  blue: { vid: 0 }\n');
  const r = lsdn('validate', '--json', f);
  assert.equal(r.code, 2);
  const j = JSON.parse(r.stdout);
  assert.equal(j.valid, false);
  assert.ok(j.problems.some((p: { code: string; loc: { line: number } }) => p.loc.line === 2));
});

test('lsdn validate: exit 1 when the file cannot be read', () => {
  const r = lsdn('validate', '/nonexistent/model.yaml');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ENOENT|no such file/i);
});

test('lsdn dump: canonical yaml, json and LSDN json; unknown format is an error', () => {
  assert.match(lsdn('dump', EXAMPLE).stdout, /^name: demo\n/);
  assert.equal(JSON.parse(lsdn('dump', EXAMPLE, '--format', 'json').stdout).name, 'demo');
  assert.equal(JSON.parse(lsdn('dump', EXAMPLE, '--format', 'lsdn-json').stdout).lsdnName, 'demo');
  const lsctl = lsdn('dump', EXAMPLE, '--format', 'lsctl').stdout;
  assert.match(lsctl, /^namespace import lsdn::\*$/m);
  assert.match(lsctl, /\nif \{\$argc > 0\} \{ claimLocal \[lindex \$argv 0\] \}\ncommit\n$/, 'a runnable script: lsctl FILE PHYS');
  const bad = lsdn('dump', EXAMPLE, '--format', 'xml');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /unknown format "xml"/);
});

test('lsdn --version and --help', () => {
  const v = lsdn('--version');
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+/);
  const h = lsdn('--help');
  assert.equal(h.code, 0);
  for (const verb of ['validate', 'plan', 'apply', 'status', 'destroy', 'dump', 'doctor', 'lab']) assert.match(h.stdout, new RegExp(`\\b${verb}\\b`));
});

test('lsdn trace: exit 0 delivered, 3 dropped, 2 invalid model, 1 other errors; --json', (t) => {
  const ok = lsdn('trace', EXAMPLE, 'tenant-a/web', 'tenant-a/db', '--json');
  assert.equal(ok.code, 0, ok.stderr);
  const j = JSON.parse(ok.stdout);
  assert.equal(j.verdict, 'delivered');
  assert.match(j.reason, /tenant-a\/db/);
  assert.ok(j.hops.length > 3 && j.hops.every((h: { host: string; step: string }) => h.host && h.step));
  assert.ok(j.hops.some((h: { encap?: { vni: number } }) => h.encap?.vni === 100));
  const dropped = lsdn('trace', EXAMPLE, 'tenant-a/web', 'tenant-b/api');
  assert.equal(dropped.code, 3, dropped.stderr);
  assert.match(dropped.stdout, /verdict: dropped: different nets: isolated/);
  const bad = tempFile(t, 'bad.yaml', 'nets:\n  blue: { vid: 0 }\n');
  assert.equal(lsdn('trace', bad, 'blue/a', 'blue/b').code, 2);
  const unknown = lsdn('trace', EXAMPLE, 'tenant-a/nope', 'tenant-a/db');
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no virt "tenant-a\/nope"/);
  assert.doesNotMatch(unknown.stderr, /\n\s+at /);
  assert.equal(lsdn('trace', EXAMPLE, 'tenant-a/web', 'tenant-a/db', '--proto', 'gre').code, 1);
});
