/**
 * The layout stays true: every module of src/ imports only from its own folder and the folders
 * below it (ARCHITECTURE.md's layer picture), the pure folders import no I/O (node:fs,
 * node:child_process, node:net), and the module graph has no circle. The checks run on the
 * real graph (parsed from the sources' import and export-from statements, type-only ones
 * included) and, to show they can fail, on small made-up graphs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** What each folder of src/ may import (besides itself). `index.ts` (the library API) may import anything. */
export const LAYERS: Record<string, readonly string[]> = {
  core: [],
  model: ['core'],
  kinds: ['core'],
  ipam: ['core', 'model'],
  types: ['core', 'model', 'kinds', 'ipam'],
  services: ['core', 'model', 'kinds', 'ipam'],
  policy: ['core', 'model', 'kinds', 'ipam', 'services', 'types'],
  validate: ['core', 'model', 'ipam', 'types', 'services'],
  compile: ['core', 'model', 'kinds', 'ipam', 'types', 'services', 'policy'],
  trace: ['core', 'model', 'kinds', 'ipam', 'types', 'services', 'policy', 'compile'],
  plan: ['core', 'kinds'],
  file: ['core', 'model', 'ipam', 'types'],
  vm: ['core', 'model', 'kinds', 'compile'],
  kernel: ['core', 'model', 'kinds', 'types', 'services'],
  apply: ['core', 'model', 'kinds', 'ipam', 'types', 'services', 'policy', 'validate', 'compile', 'plan', 'file', 'vm', 'kernel'],
  cluster: ['core', 'model', 'ipam', 'types', 'services', 'validate', 'file'],
  store: ['core', 'model', 'kinds', 'ipam', 'types', 'services', 'policy', 'validate', 'compile', 'plan', 'file', 'vm', 'kernel', 'apply', 'cluster'],
  lab: ['core', 'model', 'kinds', 'ipam', 'types', 'services', 'policy', 'validate', 'compile', 'plan', 'file', 'vm', 'kernel', 'apply'],
  lsctl: ['core', 'model', 'kinds', 'ipam', 'types', 'services', 'policy', 'validate', 'compile', 'plan', 'file', 'vm', 'kernel', 'apply'],
  cli: ['core', 'model', 'kinds', 'ipam', 'types', 'services', 'policy', 'validate', 'compile', 'plan', 'file', 'vm', 'kernel', 'apply', 'lab', 'lsctl', 'cluster', 'store', 'trace'],
};

/** Folders that decide without touching the host: no file, process or socket I/O. */
export const PURE = ['core', 'model', 'kinds', 'ipam', 'types', 'services', 'policy', 'validate', 'compile', 'trace', 'plan', 'file', 'vm', 'cluster'];
/** The I/O modules a pure folder may not import. */
export const IO_MODULES = ['node:fs', 'node:fs/promises', 'node:child_process', 'node:net', 'fs', 'fs/promises', 'child_process', 'net'];
/** The one exception, by file: the loader reads the model file it is given (`loadModelFile`). */
export const IO_ALLOWED: Record<string, readonly string[]> = { 'file/load.ts': ['node:fs/promises'] };

/** A module graph: file (relative to src/, e.g. "plan/plan.ts") -> what it imports (files of src/, or bare module names). */
export type Graph = Map<string, string[]>;

/** The import and export-from specifiers of a TypeScript source (comments and strings stripped first). */
export function specifiers(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  const re = /^\s*(?:import|export)\s(?:[^'"`;]*?\sfrom\s)?\s*['"]([^'"]+)['"]/gm;
  for (let m = re.exec(code); m; m = re.exec(code)) out.push(m[1] as string);
  return out;
}

/** The module graph of the folder `src` (relative imports resolved to files, `.js` -> `.ts`). */
export function moduleGraph(src: string): Graph {
  const graph: Graph = new Map();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir).sort()) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        const deps = specifiers(readFileSync(p, 'utf8')).map((s) =>
          s.startsWith('.') ? relative(src, resolve(dirname(p), s)).replace(/\.js$/, '.ts') : s);
        graph.set(relative(src, p), deps);
      }
    }
  };
  walk(src);
  return graph;
}

const folderOf = (file: string): string => (file.includes('/') ? file.slice(0, file.indexOf('/')) : '');

/** Imports that go up (or sideways) a layer, or into a folder no rule knows: "from -> to". */
export function layerViolations(graph: Graph, layers: Record<string, readonly string[]> = LAYERS): string[] {
  const out: string[] = [];
  for (const [file, deps] of graph) {
    const from = folderOf(file);
    if (from === '') continue; // index.ts: the library API re-exports every layer
    const allowed = layers[from];
    if (!allowed) {
      out.push(`${file}: folder "${from}" has no layer rule`);
      continue;
    }
    for (const d of deps) {
      if (!graph.has(d)) continue; // a package or node: module
      const to = folderOf(d);
      if (to !== from && !allowed.includes(to)) out.push(`${file} -> ${d}`);
    }
  }
  return out;
}

/** I/O imports of pure modules: "file -> module". */
export function ioViolations(graph: Graph, pure: readonly string[] = PURE): string[] {
  const out: string[] = [];
  for (const [file, deps] of graph) {
    if (!pure.includes(folderOf(file))) continue;
    for (const d of deps) if (IO_MODULES.includes(d) && !(IO_ALLOWED[file] ?? []).includes(d)) out.push(`${file} -> ${d}`);
  }
  return out;
}

/** Every import circle, as the files around it (each circle once, starting at its smallest file). */
export function importCycles(graph: Graph): string[][] {
  const cycles = new Map<string, string[]>();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (!graph.has(d)) continue;
      if (state.get(d) === 'open') {
        const c = stack.slice(stack.indexOf(d));
        const i = c.indexOf([...c].sort()[0] as string);
        const norm = [...c.slice(i), ...c.slice(0, i)];
        cycles.set(norm.join(' -> '), norm);
      } else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of [...graph.keys()].sort()) if (!state.has(f)) visit(f);
  return [...cycles.values()];
}

const SRC = new URL('../../src', import.meta.url).pathname;

describe('the layout: layers, purity, no import circles', () => {
  const graph = moduleGraph(SRC);

  it('reads the real graph (every folder of src/ has a rule)', () => {
    assert.ok(graph.size > 50, `only ${graph.size} modules found in ${SRC}`);
    assert.ok(graph.get('plan/plan.ts')?.includes('kinds/index.ts'), 'plan/plan.ts imports kinds/index.ts');
    const folders = new Set([...graph.keys()].map(folderOf).filter(Boolean));
    assert.deepEqual([...folders].filter((f) => !LAYERS[f]), []);
  });

  it('no module imports a folder above its own', () => {
    assert.deepEqual(layerViolations(graph), []);
  });

  it('the pure folders import no node:fs, node:child_process or node:net', () => {
    assert.deepEqual(ioViolations(graph), []);
  });

  it('the module graph has no circle', () => {
    assert.deepEqual(importCycles(graph).map((c) => c.join(' -> ')), []);
  });

  it('finds upward imports, I/O in pure folders and circles in made-up graphs', () => {
    const fake: Graph = new Map([
      ['core/a.ts', ['plan/p.ts', 'node:child_process']],
      ['plan/p.ts', ['core/a.ts', 'kinds/k.ts']],
      ['kinds/k.ts', ['kinds/l.ts', 'node:util']],
      ['kinds/l.ts', ['kinds/k.ts', 'node:fs']],
      ['apply/x.ts', ['core/a.ts', 'node:fs', 'zod']],
      ['extra/y.ts', []],
    ]);
    assert.deepEqual(layerViolations(fake), ['core/a.ts -> plan/p.ts', 'extra/y.ts: folder "extra" has no layer rule']);
    assert.deepEqual(ioViolations(fake), ['core/a.ts -> node:child_process', 'kinds/l.ts -> node:fs']);
    assert.deepEqual(importCycles(fake).map((c) => c.join(' -> ')).sort(), ['core/a.ts -> plan/p.ts', 'kinds/k.ts -> kinds/l.ts']);
  });

  it('parses import, import type, export-from and multi-line imports, not comments', () => {
    const src = [
      "import { a } from './a.js';",
      "import type { B } from '../b/b.js';",
      'import {',
      '  c,',
      "} from './c.js';",
      "export { d } from './d.js';",
      "export * from './e.js';",
      "// import { x } from './commented.js';",
      "/* import { y } from './block.js'; */",
      "import './side.js';",
      "const s = 'import { z } from \"./in-a-string.js\"';",
    ].join('\n');
    assert.deepEqual(specifiers(src), ['./a.js', '../b/b.js', './c.js', './d.js', './e.js', './side.js']);
  });
});
