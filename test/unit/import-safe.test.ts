/**
 * `lsdn import` runs the script in a safe Tcl interpreter: only the lsdn commands, `source`
 * of files in the script's directory, argv/argc, env (a copy) and exit; no exec, open, file,
 * socket; a time limit. `lsctl` (runLsctl) stays a full tclsh.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importLsctl, runLsctl, importTimeLimit } from '../../src/lsctl/run.js';
import { UsageError } from '../../src/core/errors.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'lsdn-import-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function script(dir: string, text: string, name = 's.lsctl'): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const quiet = { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' } as const;

describe('lsdn import: a safe Tcl interpreter', () => {
  test('exec is refused and runs nothing; lsctl itself runs it (full Tcl)', async (t) => {
    const dir = tempDir(t);
    const marker = join(dir, 'x');
    const s = script(dir, `namespace import lsdn::*\nexec touch ${marker}\n`);
    const r = await importLsctl(s, [], quiet);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /s\.lsctl:2: error: invalid command name "exec"/);
    assert.equal(existsSync(marker), false);
    const full = await runLsctl(s, [], quiet);
    assert.equal(full.code, 0, full.stderr);
    assert.equal(existsSync(marker), true);
  });

  test('open is refused and writes nothing; file and socket are absent', async (t) => {
    const dir = tempDir(t);
    const marker = join(dir, 'y');
    const r = await importLsctl(script(dir, `set f [open ${marker} w]\nputs $f hi\n`), [], quiet);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: invalid command name "open"/);
    assert.equal(existsSync(marker), false);
    const q = await importLsctl(script(dir, 'puts [list [info commands exec] [info commands open] [info commands file] [info commands socket] [info commands load] [info commands cd]]\n'), [], quiet);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(q.stdout, '{} {} {} {} {} {}\n');
  });

  test('an endless loop ends with the time-limit error, exit 1, no stack trace', async (t) => {
    const dir = tempDir(t);
    for (const body of ['while 1 {}', 'proc f {} { while 1 { incr i } }\nf', 'vwait forever']) {
      const r = await importLsctl(script(dir, `namespace import lsdn::*\n${body}\n`), [], { ...quiet, env: { ...process.env, LSDN_IMPORT_TIME_LIMIT: '0.5' } });
      assert.equal(r.code, 1, body);
      assert.equal(r.stderr, 'import: the script ran longer than 0.5 s\n', body);
    }
    // Blocked reading stdin (outside Tcl's limit): the watchdog ends it, 2 s after the limit.
    const blocked = await importLsctl(script(dir, 'gets stdin\n'), [], { ...quiet, stdin: 'pipe', env: { ...process.env, LSDN_IMPORT_TIME_LIMIT: '0.5' } });
    assert.equal(blocked.code, 1);
    assert.equal(blocked.stderr, 'import: the script ran longer than 0.5 s\n');
    // stdin can be read (LSDN's scripts wait on it): at its end, gets gives -1.
    const read = await importLsctl(script(dir, 'puts [gets stdin line]\n'), [], quiet);
    assert.equal(read.code, 0, read.stderr);
    assert.equal(read.stdout, '-1\n');
    assert.equal(importTimeLimit({}), 30);
    assert.throws(() => importTimeLimit({ LSDN_IMPORT_TIME_LIMIT: 'soon' }), UsageError);
  });

  test('source of files next to the script (also nested, relative to the sourcing file); nothing outside its directory', async (t) => {
    const dir = tempDir(t);
    mkdirSync(join(dir, 'lib'));
    writeFileSync(join(dir, 'lib', 'nets.tcl'), 'source more.tcl\nnet -vid 7 seven\n');
    writeFileSync(join(dir, 'lib', 'more.tcl'), 'net -vid 8 eight\n');
    const ok = await importLsctl(script(dir, 'namespace import lsdn::*\nsettings direct\nsource lib/nets.tcl\n'), [], quiet);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual([...ok.model.nets.keys()].sort(), ['eight', 'seven']);
    const outside = join(tempDir(t), 'evil.tcl');
    writeFileSync(outside, 'net -vid 9 evil\n');
    for (const path of [outside, '/etc/passwd', '../x.tcl', 'lib/../../x.tcl']) {
      const r = await importLsctl(script(dir, `namespace import lsdn::*\nsettings direct\nsource ${path}\n`, 'o.lsctl'), [], quiet);
      assert.equal(r.code, 1, path);
      assert.match(r.stderr, /o\.lsctl:3: error: source: ".*" is outside the script's directory/, path);
    }
  });

  test('argv, argc, env reading and exit work; errors keep their file:line', async (t) => {
    const dir = tempDir(t);
    const r = await importLsctl(script(dir, 'puts "$argc [lindex $argv 1] $env(LSDN_T)"\n'), ['a', 'b'], { ...quiet, env: { ...process.env, LSDN_T: 'tee' } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '2 b tee\n');
    const e = await importLsctl(script(dir, 'exit 3\n'), [], quiet);
    assert.equal(e.code, 3);
    const bad = await importLsctl(script(dir, 'namespace import lsdn::*\nsettings direct\n\nnet -vid nope n\n'), [], quiet);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^\S*s\.lsctl:4: error: net: /);
  });
});
