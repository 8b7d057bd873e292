/**
 * examples/systemd/: every unit passes `systemd-analyze verify` (in a temporary --root holding
 * the system's own units and each ExecStart binary, so the machine's /etc is not touched), a
 * broken copy does not, and lsdn-apply.service runs at boot as the README says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const DIR = new URL('../../examples/systemd/', import.meta.url).pathname;
const UNITS = existsSync('/usr/lib/systemd/system') ? '/usr/lib/systemd/system' : '/lib/systemd/system';
const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
const units = readdirSync(DIR).filter((f) => f.endsWith('.service'));

function verifyRoot(t: { after: (f: () => void) => void }, texts: Record<string, string>): { code: number | null; stderr: string } {
  const root = mkdtempSync(join(tmpdir(), 'lsdn-systemd-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  cpSync(UNITS, join(root, 'lib/systemd/system'), { recursive: true, dereference: false });
  mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
  for (const [name, text] of Object.entries(texts)) {
    writeFileSync(join(root, 'etc/systemd/system', name), text);
    for (const m of text.matchAll(/^Exec\w+=[-@:+!]*(\/\S+)/gm)) {
      const bin = join(root, m[1]!);
      mkdirSync(dirname(bin), { recursive: true });
      writeFileSync(bin, '#!/bin/sh\n');
      chmodSync(bin, 0o755);
    }
  }
  const r = spawnSync('systemd-analyze', ['verify', `--root=${root}`, ...Object.keys(texts)], { encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr };
}

test('systemd-analyze verify passes on every unit of examples/systemd, and fails on a broken one', { skip: !analyze && 'systemd-analyze is missing (Debian: apt-get install systemd; scripts/setup.sh does)' }, (t) => {
  assert.ok(units.includes('lsdn-apply.service'), units.join(', '));
  const texts = Object.fromEntries(units.map((u) => [u, readFileSync(join(DIR, u), 'utf8')]));
  const ok = verifyRoot(t, texts);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stderr.trim(), '', 'no warnings');
  const broken = verifyRoot(t, { 'lsdn-apply.service': texts['lsdn-apply.service']!.replace('Type=oneshot', 'Type=oneshoot') });
  assert.notEqual(broken.stderr.trim(), '', 'a bad value is reported');
});

test('lsdn-apply.service: oneshot lsdn apply after network-online, before libvirtd, with the env file', () => {
  const u = readFileSync(join(DIR, 'lsdn-apply.service'), 'utf8');
  const keys = (k: string) => [...u.matchAll(new RegExp(`^${k}=(.*)$`, 'gm'))].map((m) => m[1]!);
  assert.deepEqual(keys('Type'), ['oneshot']);
  assert.deepEqual(keys('RemainAfterExit'), ['yes']);
  assert.ok(keys('After').join(' ').split(' ').includes('network-online.target'));
  assert.ok(keys('Wants').join(' ').split(' ').includes('network-online.target'));
  assert.ok(keys('Before').join(' ').split(' ').includes('libvirtd.service'));
  assert.deepEqual(keys('EnvironmentFile'), ['-/etc/default/lsdn']);
  assert.match(keys('ExecStart')[0]!, /^\/usr\/local\/bin\/lsdn apply \$\{LSDN_MODEL\} \$LSDN_APPLY_OPTIONS$/);
  // The env file sets what the unit uses, in systemd's KEY=VALUE syntax.
  const env = readFileSync(join(DIR, 'lsdn.env'), 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#'));
  for (const l of env) assert.match(l, /^[A-Z_][A-Z0-9_]*=\S*$/, l);
  const names = env.map((l) => l.split('=')[0]);
  for (const n of ['LSDN_MODEL', 'LSDN_APPLY_OPTIONS', 'LSDN_LOG_FORMAT', 'LSDN_LOG_LEVEL']) assert.ok(names.includes(n), n);
});
