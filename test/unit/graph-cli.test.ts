/**
 * `lsdn graph`: every example renders to SVG (valid XML, every phys, net and virt named in
 * it); dot and json need no Graphviz; exit codes (2 invalid model, 1 unknown phys or no `dot`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelText } from '../../src/file/load.js';

const BIN = new URL('../../bin/lsdn', import.meta.url).pathname;
const EXAMPLES = new URL('../../examples/', import.meta.url).pathname;
const HAVE_DOT = spawnSync('dot', ['-V'], { stdio: 'ignore' }).status === 0;

function lsdn(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** XML well-formedness (what an SVG viewer needs): balanced tags, quoted attributes, entities only. */
function xmlProblem(s: string): string | undefined {
  const stack: string[] = [];
  const name = '[A-Za-z_:][-A-Za-z0-9_:.]*';
  const attrs = new RegExp(`^(\\s+${name}\\s*=\\s*("[^"<]*"|'[^'<]*'))*\\s*$`);
  const text = /^([^<&]|&(#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);)*$/;
  let rest = s.replace(/^\uFEFF/, '');
  let root = 0;
  while (rest.length > 0) {
    const lt = rest.indexOf('<');
    const chunk = lt < 0 ? rest : rest.slice(0, lt);
    if (!text.test(chunk)) return `bad text ${JSON.stringify(chunk.slice(0, 40))}`;
    if (stack.length === 0 && chunk.trim() !== '') return 'text outside the root';
    if (lt < 0) break;
    rest = rest.slice(lt);
    const end = rest.startsWith('<!--') ? rest.indexOf('-->') + 3 : rest.startsWith('<?') ? rest.indexOf('?>') + 2 : rest.indexOf('>') + 1;
    if (end <= 0) return 'unterminated markup';
    const tag = rest.slice(0, end);
    rest = rest.slice(end);
    if (tag.startsWith('<!--') || tag.startsWith('<?') || tag.startsWith('<!DOCTYPE')) continue;
    const m = new RegExp(`^<(/?)(${name})([^>]*?)(/?)>$`, 's').exec(tag);
    if (!m) return `bad tag ${tag.slice(0, 40)}`;
    const [, close, n, a, self] = m as unknown as [string, string, string, string, string];
    if (close) {
      if (stack.pop() !== n) return `</${n}> closes nothing open`;
      continue;
    }
    if (!attrs.test(a)) return `bad attributes in <${n}>`;
    if (stack.length === 0 && root++ > 0) return 'two roots';
    if (!self) stack.push(n);
  }
  return stack.length > 0 ? `<${stack.at(-1)!}> not closed` : root === 1 ? undefined : 'no root';
}

/** The SVG's text with numeric character references decoded (Graphviz writes "-" as &#45;). */
const decoded = (s: string): string => s.replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)));

for (const f of readdirSync(EXAMPLES).filter((x) => x.endsWith('.yaml')).sort()) {
  test(`graph: examples/${f} renders to SVG naming every phys, net and virt`, { skip: HAVE_DOT ? false : 'no Graphviz `dot` (Debian package graphviz; scripts/setup.sh installs it)' }, () => {
    const r = lsdn(['graph', join(EXAMPLES, f)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(xmlProblem(r.stdout), undefined);
    assert.notEqual(xmlProblem(r.stdout.replace('</svg>', '')), undefined);
    assert.match(r.stdout, /<svg/);
    const { model } = loadModelText(readFileSync(join(EXAMPLES, f), 'utf8'), f);
    assert.ok(model);
    const svg = decoded(r.stdout);
    for (const p of model.physes.keys()) assert.ok(svg.includes(`>${p}<`) || svg.includes(`>${p} `), `phys ${p}`);
    for (const n of model.nets.values()) {
      assert.ok(svg.includes(`>${n.name}<`), `net ${n.name}`);
      for (const v of n.virts.keys()) assert.ok(svg.includes(`>${n.name}/${v}<`), `virt ${n.name}/${v}`);
    }
  });
}

test('graph: --format dot and json work without Graphviz; svg without it names the package (exit 1)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lsdn-graph-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env = { ...process.env, PATH: dir };
  const dot = lsdn(['graph', join(EXAMPLES, 'cluster.yaml'), '--format', 'dot'], env);
  assert.equal(dot.code, 0, dot.stderr);
  assert.match(dot.stdout, /^graph "demo" \{/);
  const out = join(dir, 'g.json');
  const json = lsdn(['graph', join(EXAMPLES, 'cluster.yaml'), '--format', 'json', '--phys', 'hv1', '-o', out], env);
  assert.equal(json.code, 0, json.stderr);
  assert.equal(json.stdout, '');
  const g = JSON.parse(readFileSync(out, 'utf8')) as { physes: { name: string }[]; tunnels: unknown[] };
  assert.deepEqual(g.physes.map((p) => p.name), ['hv1', 'hv2', 'hv3']);
  assert.equal(g.tunnels.length, 4);
  const svg = lsdn(['graph', join(EXAMPLES, 'cluster.yaml')], env);
  assert.equal(svg.code, 1);
  assert.match(svg.stderr, /Debian package graphviz/);
  assert.doesNotMatch(svg.stderr, /internal error|at .*\.js/);
});

test('graph: exit 2 for an invalid model, 1 for an unknown phys or format', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lsdn-graph-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'physes:\n  a: { ip: 192.0.2.1 }\nnets:\n  n:\n    virts:\n      v: { phys: nowhere }\n');
  const r = lsdn(['graph', bad, '--format', 'dot']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /nowhere/);
  const p = lsdn(['graph', join(EXAMPLES, 'cluster.yaml'), '--phys', 'hv9', '--format', 'dot']);
  assert.equal(p.code, 1);
  assert.match(p.stderr, /no phys hv9 .*hv1, hv2, hv3/);
  const f = lsdn(['graph', join(EXAMPLES, 'cluster.yaml'), '--format', 'png']);
  assert.equal(f.code, 1);
  assert.match(f.stderr, /one of svg, dot, json/);
});
