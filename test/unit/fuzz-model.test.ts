/**
 * Fuzzing the pure core (issue 16): seeded mutations of examples/*.yaml (fields deleted,
 * duplicated, retyped, references swapped, hostile strings) go through load + validate, and
 * compile + plan for every phys when valid. No exception may escape and every problem must
 * carry a location. LSDN_FUZZ_RUNS and LSDN_FUZZ_SEED run more cases or another seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { loadModelText } from '../../src/file/load.js';
import { validate } from '../../src/validate/validate.js';
import { compileHost } from '../../src/compile/compile.js';
import { planChanges } from '../../src/plan/plan.js';
import { HostState } from '../../src/core/objects.js';
import { hasErrors, formatProblem, type Problem } from '../../src/core/problem.js';

const DIR = new URL('../../examples/', import.meta.url);
const EXAMPLES = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((f) => ({ name: f, value: parse(readFileSync(new URL(f, DIR), 'utf8')) as unknown }));

const HOSTILE = ['', ' ', 'a\\b', 'x*', 'q"x', 'fp#1', "'tap", 'a\nb', 'lo', '-x', '..', '../../etc', '${x}', '[a]', '{b}', 'é✓', '\u0000', 'x'.repeat(300), '0', '-1', '1e99', 'NaN', 'null', 'true', '10.0.0.1/33', 'ff:ff:ff:ff:ff:ff', '::', '192.0.2.1'];
const RETYPED: unknown[] = [null, 0, -1, 1.5, 2 ** 40, true, false, [], {}, [1, 'a'], { x: 1 }, 'str'];

type Path = (string | number)[];
type Op = 'delete' | 'duplicate' | 'retype' | 'hostile' | 'swap';

function paths(v: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) strings(x, out);
  return out;
}

function get(root: unknown, p: Path): unknown {
  return p.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], root);
}

/** Apply one mutation at the path chosen by `where`; mutates `root` in place. */
function mutate(root: { v: unknown }, op: Op, where: number, pick: number, key: string): void {
  const all = paths(root.v).map((p) => ['v', ...p]);
  const p = all[where % all.length]!;
  const parent = get(root, p.slice(0, -1)) as Record<string | number, unknown>;
  const k = p[p.length - 1]!;
  const names = strings(root.v);
  switch (op) {
    case 'delete':
      if (Array.isArray(parent)) parent.splice(k as number, 1);
      else delete parent[k];
      break;
    case 'duplicate':
      if (Array.isArray(parent)) parent.push(structuredClone(parent[k]));
      else parent[typeof k === 'string' && pick % 2 ? `${k}${key}` : key] = structuredClone(parent[k]);
      break;
    case 'retype':
      parent[k] = RETYPED[pick % RETYPED.length];
      break;
    case 'hostile': {
      const h = HOSTILE[pick % HOSTILE.length]!;
      // A hostile value, or a hostile key (object names are keys).
      if (!Array.isArray(parent) && pick % 3 === 0 && p.length > 1) {
        parent[h] = parent[k];
        delete parent[k];
      } else parent[k] = h;
      break;
    }
    case 'swap':
      if (names.length) parent[k] = names[pick % names.length];
      break;
  }
}

const caseArb = fc.record({
  example: fc.nat({ max: EXAMPLES.length - 1 }),
  mutations: fc.array(fc.tuple(fc.constantFrom<Op>('delete', 'duplicate', 'retype', 'hostile', 'swap'), fc.nat(), fc.nat(), fc.string({ maxLength: 12 })), { minLength: 1, maxLength: 4 }),
});

function check(problems: Problem[], text: string): void {
  const unlocated = problems.filter((p) => p.loc === undefined);
  assert.deepEqual(unlocated.map(formatProblem), [], `problems without a location for:\n${text}`);
}

test(`fuzz: mutated examples load, validate, compile and plan without an exception; every problem is located`, () => {
  assert.ok(EXAMPLES.length > 0);
  let valid = 0;
  let runs = 0;
  fc.assert(
    fc.property(caseArb, ({ example, mutations }) => {
      runs++;
      const root = { v: structuredClone(EXAMPLES[example]!.value) };
      for (const [op, where, pick, key] of mutations) mutate(root, op, where, pick, key || 'k');
      const text = stringify(root.v ?? null);
      const loaded = loadModelText(text, 'fuzz.yaml');
      check(loaded.problems, text);
      if (!loaded.model) return;
      const problems = validate(loaded.model);
      check(problems, text);
      if (hasErrors(loaded.problems) || hasErrors(problems)) return;
      valid++;
      for (const phys of loaded.model.physes.keys()) {
        const state = compileHost(loaded.model, phys, { mtu: new Map([['eth0', 1500]]) });
        planChanges(state, new HostState());
      }
    }),
    { numRuns: Number(process.env.LSDN_FUZZ_RUNS ?? 1000), seed: Number(process.env.LSDN_FUZZ_SEED ?? 16), endOnFailure: true },
  );
  if (process.env.LSDN_FUZZ_VERBOSE) console.log(`fuzz: ${runs} cases, ${valid} valid (compiled and planned)`);
  // The mutations keep a good share of the models valid, so compile and plan are fuzzed too.
  assert.ok(valid > runs / 20, `only ${valid} of ${runs} mutated models were valid`);
});
