/** `lsdn completion bash`: the script bash runs, completing from the CLI's own command tree. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.js';
import { bashCompletion } from '../../src/cli/completion.js';

const BIN = new URL('../../bin/lsdn', import.meta.url).pathname;
const hasBash = spawnSync('bash', ['-c', 'true']).status === 0;
const script = bashCompletion(buildProgram());

/** What bash offers for the words typed so far (the last one is the word being completed). */
function complete(words: string[]): string[] {
  const arr = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('bash', ['--norc', '-c', `eval "$SCRIPT"; COMP_WORDS=(${arr}); COMP_CWORD=${words.length - 1}; _lsdn_complete; printf '%s\\n' "\${COMPREPLY[@]}"`], {
    encoding: 'utf8',
    env: { ...process.env, SCRIPT: script },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  return r.stdout.split('\n').filter(Boolean).sort();
}

function commands(c: Command, path: string[] = []): { path: string[]; cmd: Command }[] {
  return [{ path, cmd: c }, ...c.commands.flatMap((s) => commands(s, [...path, s.name()]))];
}

test('the script is what `lsdn completion bash` prints, and registers itself for lsdn', { skip: !hasBash && 'no bash' }, () => {
  const r = spawnSync(process.execPath, [BIN, 'completion', 'bash'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, script.endsWith('\n') ? script : `${script}\n`);
  const reg = spawnSync('bash', ['--norc', '-c', 'eval "$SCRIPT"; complete -p lsdn'], { encoding: 'utf8', env: { ...process.env, SCRIPT: script } });
  assert.equal(reg.stdout.trim(), 'complete -o default -F _lsdn_complete lsdn');
  const bad = spawnSync(process.execPath, [BIN, 'completion', 'fish'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /value 'fish' is invalid for argument 'shell'. Allowed choices are bash/);
});

test('every verb of the command tree completes to exactly its sub-verbs and its options', { skip: !hasBash && 'no bash' }, () => {
  const all = commands(buildProgram());
  assert.ok(all.length > 20);
  for (const { path, cmd } of all) {
    const subs = cmd.commands.map((c) => c.name());
    if (subs.length) assert.deepEqual(complete(['lsdn', ...path, '']), [...subs, 'help'].sort(), path.join(' '));
    const longs = cmd.options.map((o) => o.long).filter((l): l is string => !!l);
    assert.deepEqual(complete(['lsdn', ...path, '--']), [...longs, '--help'].sort(), `${path.join(' ')} --`);
  }
  // The verbs a user knows are there (the tree is not empty or renamed by accident).
  for (const v of ['apply', 'plan', 'validate', 'lab', 'vm', 'hook', 'completion']) assert.ok(complete(['lsdn', '']).includes(v), v);
});

test('option values: choices are offered, other values fall back to file names; values are skipped when finding the verb', { skip: !hasBash && 'no bash' }, () => {
  assert.deepEqual(complete(['lsdn', 'apply', '--log-format', '']), ['json', 'text']);
  assert.deepEqual(complete(['lsdn', 'apply', 'm.yaml', '--log-level', 'w']), ['warn']);
  assert.deepEqual(complete(['lsdn', 'apply', '--log-format', '=', 'j']), ['json'], '--log-format=j (bash splits at =)');
  assert.deepEqual(complete(['lsdn', 'apply', '--log-format', '=']), ['json', 'text'], '--log-format=');
  assert.deepEqual(complete(['lsdn', 'apply', '--phys', '']), [], 'no choices: bash completes file names');
  assert.deepEqual(complete(['lsdn', 'apply', '--phys', 'lab', '--log-l']), ['--log-level'], 'a value named like a verb is a value');
  assert.deepEqual(complete(['lsdn', 'lab', '--help', 'de']), ['demo']);
  assert.deepEqual(complete(['lsdn', 'hook', 'libvirt', '--model', 'x.yaml', '--ph']), ['--phys']);
  assert.deepEqual(complete(['lsdn', 'completion', '']), ['bash']);
  assert.deepEqual(complete(['lsdn', 'vm', 'libvirt-xml', '']), [], 'a file argument: bash completes file names');
});
