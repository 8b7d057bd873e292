/** YAML limits (issue 16, found 8 / build 5): alias bombs and deep nesting are located problems, never a throw. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModelText, MAX_YAML_DEPTH } from '../../src/file/load.js';

/** Ten anchors, each nine aliases of the one before: 9^10 strings if expanded. */
function aliasBomb(): string {
  const l = (i: number) => String.fromCharCode(97 + i);
  const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 10; i++) lines.push(`${l(i)}: &${l(i)} [${Array(9).fill(`*${l(i - 1)}`).join(',')}]`);
  return `name: x\n${lines.join('\n')}\n`;
}

test('an alias bomb is a located problem (yaml-alias-limit), not a ReferenceError', () => {
  const r = loadModelText(aliasBomb(), 'bomb.yaml');
  assert.equal(r.model, undefined);
  assert.deepEqual(r.problems.map((p) => [p.code, p.loc?.file, p.loc?.line]), [['yaml-alias-limit', 'bomb.yaml', 3]]);
});

test('nesting deeper than the limit is a located problem (yaml-too-deep); far deeper is a located syntax problem', () => {
  const d = MAX_YAML_DEPTH + 5;
  const r = loadModelText(`name: x\nnets: ${'['.repeat(d)}${']'.repeat(d)}\n`, 'deep.yaml');
  assert.deepEqual(r.problems.map((p) => [p.code, p.loc?.line]), [['yaml-too-deep', 2]]);
  for (const text of [`name: x\nnets: ${'['.repeat(20000)}${']'.repeat(20000)}\n`, `name: x\nnets: ${'{a: '.repeat(5000)}1${'}'.repeat(5000)}\n`]) {
    const big = loadModelText(text, 'deeper.yaml');
    assert.equal(big.model, undefined);
    assert.ok(big.problems.length > 0 && big.problems.every((p) => p.loc?.file === 'deeper.yaml'), JSON.stringify(big.problems.slice(0, 2)));
  }
});

test('a model at ordinary depth with a few aliases still loads', () => {
  const r = loadModelText('name: x\nsettings: { default: &s { type: vxlan/e2e } }\nphyses: { a: { if: eth0, ip: 192.0.2.1 } }\n', 'ok.yaml');
  assert.ok(r.model, JSON.stringify(r.problems));
});

test('lsdn validate on an alias bomb and on a deep file: the located problem, exit 2, no stack trace', async (t) => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const { main } = await import('../../src/cli/main.js');
  const dir = mkdtempSync(join(tmpdir(), 'lsdn-yaml-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text, code] of [['bomb.yaml', aliasBomb(), 'yaml-alias-limit'], ['deep.yaml', `name: x\nnets: ${'['.repeat(20000)}${']'.repeat(20000)}\n`, 'syntax']] as const) {
    const file = join(dir, name);
    writeFileSync(file, text);
    let stderr = '';
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => { stderr += s; return true; }) as typeof process.stderr.write;
    let rc: number;
    try {
      rc = await main(['validate', file]);
    } finally {
      process.stderr.write = write;
    }
    assert.equal(rc, 2, `${code}: ${stderr}`);
    assert.ok(stderr.startsWith(`${file}:`), stderr);
    assert.doesNotMatch(stderr, /^\s+at /m);
  }
});
