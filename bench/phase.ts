/**
 * One measured phase in its own Node process (started by bench/lib.ts runPhase), so that its
 * peak RSS is its own and it starts cold like `lsdn apply`. Prints one JSON line.
 *
 *   phase.ts plan  MODEL QUICK REPEAT     validate + compileHost + planChanges vs an empty host (pure)
 *   phase.ts apply MODEL QUICK CHANGE NS  applyHost on p0 in NS after the changes up to CHANGE
 */
import { validate } from '../src/validate/validate.js';
import { compileHost } from '../src/compile/compile.js';
import { HostState } from '../src/core/objects.js';
import { planChanges, planOperations } from '../src/plan/plan.js';
import { applyHost } from '../src/apply/host.js';
import { Kernel } from '../src/kernel/exec.js';
import { applyChanges, generate, specFor, LOCAL_PHYS, UNDERLAY_IF, CHANGES, type Change } from './models.js';

export interface PlanPhaseResult {
  objects: number;
  steps: number;
  commands: number;
  genMs: number;
  validateMs: number[];
  compileMs: number[];
  planMs: number[];
  totalMs: number[];
  /** `lsdn validate` of the whole model (every phys in scope, no host facts), once. */
  validateAllMs: number;
  errors: number;
  rssStartKb: number;
  rssPeakKb: number;
}

export interface ApplyPhaseResult {
  change: Change | 'none';
  ms: number;
  ok: boolean;
  failed: string[];
  steps: number;
  operations: number;
  /** Processes of the execution (report.processes). */
  execProcesses: number;
  /** Every process of the apply: read, feature probe (first build only) and execution. */
  totalProcesses: number;
  rssStartKb: number;
  rssPeakKb: number;
}

const now = () => performance.now();
const rss = () => process.resourceUsage().maxRSS;

function planPhase(key: string, quick: boolean, repeat: number): PlanPhaseResult {
  const rssStartKb = rss();
  let t = now();
  const g = generate(specFor(key, quick));
  const genMs = now() - t;
  // The host facts planHost would read on p0: its underlay and every local VM interface exist.
  const facts = { interfaces: new Set(['lo', UNDERLAY_IF, ...g.localIfs]), mtu: new Map([[UNDERLAY_IF, 1500]]) };
  const out: PlanPhaseResult = {
    objects: 0, steps: 0, commands: 0, genMs, validateMs: [], compileMs: [], planMs: [], totalMs: [], validateAllMs: 0, errors: 0, rssStartKb, rssPeakKb: 0,
  };
  for (let r = 0; r < repeat; r++) {
    const t0 = now();
    const problems = validate(g.model, { physes: [LOCAL_PHYS], host: facts });
    const t1 = now();
    const desired = compileHost(g.model, LOCAL_PHYS, facts);
    const t2 = now();
    const plan = planChanges(desired, new HostState(), { links: facts.interfaces });
    const t3 = now();
    out.validateMs.push(t1 - t0);
    out.compileMs.push(t2 - t1);
    out.planMs.push(t3 - t2);
    out.totalMs.push(t3 - t0);
    out.errors = problems.filter((p) => p.severity === 'error').length;
    out.objects = desired.size;
    out.steps = plan.steps.length;
    out.commands = planOperations(plan);
  }
  t = now();
  validate(g.model);
  out.validateAllMs = now() - t;
  out.rssPeakKb = rss();
  return out;
}

async function applyPhase(key: string, quick: boolean, change: Change | 'none', netns: string): Promise<ApplyPhaseResult> {
  const rssStartKb = rss();
  const g = generate(specFor(key, quick));
  applyChanges(g, change);
  const kernel = new Kernel({ netns });
  const t0 = now();
  const r = await applyHost(g.model, { phys: LOCAL_PHYS, netns, kernel });
  const elapsed = now() - t0;
  return {
    change,
    ms: elapsed,
    ok: r.report.ok,
    failed: r.report.results.filter((x) => x.status !== 'done').slice(0, 5).map((x) => `${x.step.key}: ${x.status} ${x.error ?? ''}`),
    steps: r.plan.steps.length,
    operations: r.report.operations,
    execProcesses: r.report.processes,
    totalProcesses: kernel.stats.processes,
    rssStartKb,
    rssPeakKb: rss(),
  };
}

async function main(argv: string[]): Promise<void> {
  const [what, key = 'a', quickArg = '0', arg3 = '', arg4 = ''] = argv;
  const quick = quickArg === '1';
  let result: unknown;
  if (what === 'plan') result = planPhase(key, quick, Math.max(1, Number(arg3) || 5));
  else if (what === 'apply') {
    const change = arg3 as Change | 'none';
    if (change !== 'none' && !(CHANGES as readonly string[]).includes(change)) throw new Error(`unknown change "${arg3}"`);
    if (!arg4) throw new Error('apply needs a network namespace');
    result = await applyPhase(key, quick, change, arg4);
  } else throw new Error(`usage: phase.ts plan|apply ...`);
  process.stdout.write(JSON.stringify(result) + '\n');
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});
