/**
 * Control-plane benchmark: pure validate+plan of generated models, then real applies on p0 in
 * fresh network namespaces (first build, no-op, one virt added / moved / removed, repeated in
 * cycles), the status quo side by side (the first-build plan's commands run one process
 * each), and the same work through the command line.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planHost } from '../src/apply/host.js';
import { dumpYaml } from '../src/file/dump.js';
import { applyChanges, firstLocalVirt, generate, specFor, ADDED_IF, CHANGES, LOCAL_PHYS, UNDERLAY_IF, physIp, type Change, type ModelSpec } from './models.js';
import type { ApplyPhaseResult, PlanPhaseResult } from './phase.js';
import { addNamespaces, cell, ipBatch, median, mib, ms, nsName, progress, runPhase, runProc, table, verdict } from './lib.js';

export interface ControlOptions {
  quick: boolean;
  /** Repetitions of the pure plan (median). */
  repeat: number;
  /** Cycles of no-op and add/move/remove/restore applies (median). */
  cycles: number;
  /** Run the one-process-per-object baseline. */
  baseline: boolean;
}

export interface Target {
  name: string;
  value: string;
  ok: boolean;
}

/** Several applies of one kind: their median time and the rest of the first one. */
interface PhaseStats {
  label: string;
  runs: ApplyPhaseResult[];
  ms: number;
  min: number;
  max: number;
  steps: number;
  operations: number;
  /** Did every run send the same number of operations? */
  sameOps: boolean;
  execProcesses: number;
  totalProcesses: number;
  rssPeakKb: number;
}

function stats(label: string, runs: ApplyPhaseResult[]): PhaseStats {
  const t = runs.map((r) => r.ms);
  const r0 = runs[0] as ApplyPhaseResult;
  return {
    label, runs, ms: median(t), min: Math.min(...t), max: Math.max(...t), steps: r0.steps, operations: r0.operations,
    sameOps: runs.every((r) => r.operations === r0.operations), execProcesses: r0.execProcesses, totalProcesses: r0.totalProcesses,
    rssPeakKb: Math.max(...runs.map((r) => r.rssPeakKb)),
  };
}

interface HostRun {
  spec: ModelSpec;
  prepMs: number;
  localVirts: number;
  first: PhaseStats;
  noop: PhaseStats;
  changes: Record<Change, PhaseStats>;
  restore: PhaseStats;
  final: PhaseStats;
}

interface BaselineRun {
  commands: number;
  ms: number;
  failedAt?: string;
  /** Steps an apply would still make after the baseline built the host (0: same state as lsdn's). */
  leftSteps: number;
}

/**
 * A fresh host for p0: namespace `host` with the underlay `eth0` (a veth to `vms`, carrying
 * p0's address) and one veth per local virt (`vmI` here, `pI` in `vms`), all from two `ip -batch`
 * processes. This kernel has no dummy links.
 */
async function prepareHost(host: string, vms: string, ifs: string[]): Promise<number> {
  await addNamespaces([host, vms]);
  const t0 = performance.now();
  const lines = [
    `link add ${UNDERLAY_IF} type veth peer name u0 netns ${vms}`,
    `address add ${physIp(0)}/16 dev ${UNDERLAY_IF}`,
    `link set ${UNDERLAY_IF} up`,
    ...ifs.map((name, i) => `link add ${name} type veth peer name p${i} netns ${vms}`),
  ];
  await ipBatch(host, lines);
  await ipBatch(vms, ['link set u0 up']);
  return performance.now() - t0;
}

async function applyPhase(spec: ModelSpec, quick: boolean, change: Change | 'none', netns: string): Promise<ApplyPhaseResult> {
  const r = await runPhase<ApplyPhaseResult>('./phase.ts', ['apply', spec.key, quick ? '1' : '0', change, netns]);
  if (!r.ok) throw new Error(`apply of model ${spec.key} (${change}) in ${netns} failed:\n  ${r.failed.join('\n  ')}`);
  return r;
}

/**
 * First build of p0, then `cycles` x (no-op), then `cycles` x (add, move, remove, restore),
 * each apply in a fresh process, then a last no-op (it must send nothing).
 */
async function hostRun(key: string, quick: boolean, cycles: number): Promise<HostRun> {
  const spec = specFor(key, quick);
  const g = generate(spec);
  const host = nsName(`ctl-${key}`);
  const vms = nsName(`ctl-${key}-vms`);
  progress(`model ${key}: preparing host ${host} (${g.localIfs.length} VM veth pairs)`);
  const prepMs = await prepareHost(host, vms, g.localIfs);
  progress(`model ${key}: first build, ${cycles} no-op applies`);
  const first = stats('first build', [await applyPhase(spec, quick, 'none', host)]);
  const noops: ApplyPhaseResult[] = [];
  for (let i = 0; i < cycles; i++) noops.push(await applyPhase(spec, quick, 'none', host));
  // The VM of the added virt appears on p0 before the apply, as a hypervisor would create it.
  await ipBatch(host, [`link add ${ADDED_IF} type veth peer name padd netns ${vms}`]);
  progress(`model ${key}: ${cycles} cycles of one-virt changes`);
  const per: Record<Change | 'restore', ApplyPhaseResult[]> = { add: [], move: [], remove: [], restore: [] };
  for (let i = 0; i < cycles; i++) {
    for (const ch of CHANGES) per[ch].push(await applyPhase(spec, quick, ch, host));
    per.restore.push(await applyPhase(spec, quick, 'none', host));
  }
  const final = stats('no-op after the changes', [await applyPhase(spec, quick, 'none', host)]);
  return {
    spec, prepMs, localVirts: g.localIfs.length, first, noop: stats('no-op', noops),
    changes: {
      add: stats('add one virt on p0', per.add),
      move: stats('move that virt to another phys', per.move),
      remove: stats('remove one virt of p0', per.remove),
    },
    restore: stats('restore (the moved virt gone, the removed one back: two virts)', per.restore),
    final,
  };
}

/** Split a batch line into argv the way iproute2's batch reader does (double quotes, backslash). */
export function splitBatchLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quoted) {
      if (c === '\\' && i + 1 < line.length) cur += line[++i];
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') {
      quoted = true;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

function shQuote(s: string): string {
  return /^[A-Za-z0-9_.:/@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The status quo: the first-build plan's commands as a shell script with one process per
 * command (`set -e`: stops at the first failure), in a fresh host. iproute2 lines run as
 * `ip|bridge|tc -n NS ARGS`; an nftables table (one `nft -f` transaction) as one process.
 */
async function baselineRun(key: string, quick: boolean): Promise<BaselineRun> {
  const spec = specFor(key, quick);
  const g = generate(spec);
  const host = nsName(`base-${key}`);
  const vms = nsName(`base-${key}-vms`);
  progress(`baseline ${key}: preparing host ${host}`);
  await prepareHost(host, vms, g.localIfs);
  const hp = await planHost(g.model, { phys: LOCAL_PHYS, netns: host });
  const cmds = hp.plan.steps.filter((s) => !s.blocked).flatMap((s) => s.commands);
  const dir = mkdtempSync(join(tmpdir(), 'lsdn-bench-'));
  const lines = ['set -e'];
  let nft = 0;
  for (const c of cmds) {
    if (c.tool === 'nft') {
      const f = join(dir, `nft-${nft++}.nft`);
      writeFileSync(f, c.line + '\n');
      lines.push(`ip netns exec ${host} nft -f ${f}`);
    } else lines.push([c.tool, '-n', host, ...splitBatchLine(c.line)].map(shQuote).join(' '));
  }
  const file = join(dir, 'first-build.sh');
  writeFileSync(file, lines.join('\n') + '\n');
  progress(`baseline ${key}: ${cmds.length} commands, one process each`);
  try {
    const r = await runProc(['sh', file], { timeoutMs: 400_000 });
    const after = await planHost(g.model, { phys: LOCAL_PHYS, netns: host });
    const out: BaselineRun = { commands: cmds.length, ms: r.ms, leftSteps: after.plan.steps.length };
    if (r.code !== 0) out.failedAt = r.stderr.trim().split('\n').slice(-2).join('; ');
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the command line ----------------------------------------------------------------------

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** A private build of the CLI from the current src/ (dist/ may be stale or mid-rebuild). */
const CLI_DIR = join(ROOT, 'node_modules/.cache/lsdn-bench');

/**
 * Build src/ into CLI_DIR/dist with its own bin/lsdn and package.json (module resolution
 * walks up to the checkout's node_modules). Returns the lsdn path, or why not.
 */
export async function buildCli(): Promise<{ lsdn?: string; why?: string; ms: number }> {
  const t0 = performance.now();
  rmSync(join(CLI_DIR, 'dist'), { recursive: true, force: true });
  mkdirSync(join(CLI_DIR, 'bin'), { recursive: true });
  const r = await runProc([process.execPath, join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(CLI_DIR, 'dist'), '--sourceMap', 'false', '--declaration', 'false'], { timeoutMs: 300_000 });
  if (r.code !== 0 || !existsSync(join(CLI_DIR, 'dist/cli/main.js'))) {
    return { why: `tsc failed: ${cell(r.stdout + r.stderr, 200)}`, ms: performance.now() - t0 };
  }
  copyFileSync(join(ROOT, 'package.json'), join(CLI_DIR, 'package.json'));
  writeFileSync(join(CLI_DIR, 'bin/lsdn'), readFileSync(join(ROOT, 'bin/lsdn')), { mode: 0o755 });
  return { lsdn: join(CLI_DIR, 'bin/lsdn'), ms: performance.now() - t0 };
}

interface CliRow {
  what: string;
  ms: number;
  rssKb?: number;
  code: number | null;
  note: string;
}

/** `lsdn ARGS` timed from spawn to exit (peak RSS through /usr/bin/time when there is one). */
async function cli(lsdn: string, what: string, args: string[]): Promise<CliRow> {
  const time = existsSync('/usr/bin/time');
  const argv = time ? ['/usr/bin/time', '-f', 'LSDN_BENCH_RSS %M', lsdn, ...args] : [lsdn, ...args];
  const r = await runProc(argv, { timeoutMs: 120_000 });
  const m = /LSDN_BENCH_RSS (\d+)/.exec(r.stderr);
  const summary = (r.stdout.trim().split('\n').at(-1) ?? '').replace(/\/\S*\/model-/g, 'model-');
  const note = r.code === 0 ? summary : `exit ${r.code}: ${r.stderr.replace(/LSDN_BENCH_RSS \d+/, '').trim()}`;
  const row: CliRow = { what, ms: r.ms, code: r.code, note };
  if (m) row.rssKb = Number(m[1]);
  return row;
}

/** The same work through the command line a user runs: Node start, YAML load, validate, read, plan, execute. */
async function cliRuns(lsdn: string, quick: boolean): Promise<{ rows: CliRow[]; startup: CliRow }> {
  const dir = mkdtempSync(join(tmpdir(), 'lsdn-bench-'));
  try {
    /** The model of `key` with the changes up to `change`; `drop`: then without p0's first virt too. */
    const file = (key: string, change: Change | 'none', drop = false) => {
      const f = join(dir, `model-${key}-${change}${drop ? '-drop' : ''}.yaml`);
      if (!existsSync(f)) {
        const g = generate(specFor(key, quick));
        applyChanges(g, change);
        if (drop) firstLocalVirt(g).remove();
        writeFileSync(f, dumpYaml(g.model));
      }
      return f;
    };
    const rows: CliRow[] = [];
    const startup = await cli(lsdn, '`lsdn --version` (Node start + loading the CLI)', ['--version']);
    rows.push(startup);
    for (const key of ['a', 'b', 'c']) {
      const f = file(key, 'none');
      rows.push(await cli(lsdn, `\`lsdn validate\` (${key}) (${statSync(f).size >> 10} KiB of YAML)`, ['validate', f]));
    }
    const host = (key: string) => ['--phys', LOCAL_PHYS, '--netns', nsName(`ctl-${key}`)];
    // The hosts are in the state of the unchanged model (the last apply of hostRun).
    rows.push(await cli(lsdn, '`lsdn plan` p0 of (b), nothing to do', ['plan', file('b', 'none'), ...host('b')]));
    rows.push(await cli(lsdn, '`lsdn apply` p0 of (c), no-op', ['apply', file('c', 'none'), ...host('c')]));
    rows.push(await cli(lsdn, '`lsdn apply` p0 of (c), one virt removed', ['apply', file('c', 'none', true), ...host('c')]));
    rows.push(await cli(lsdn, '`lsdn apply` p0 of (c), that virt added back', ['apply', file('c', 'none'), ...host('c')]));
    return { rows, startup };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the report ----------------------------------------------------------------------------

export interface ControlResult {
  markdown: string;
  targets: Target[];
}

function phaseRow(p: PhaseStats): (string | number)[] {
  const spread = p.runs.length > 1 ? ` (${ms(p.min)}–${ms(p.max)}, n=${p.runs.length})` : '';
  return [
    p.label, `**${ms(p.ms)}**${spread}`, p.steps, `${p.operations}${p.sameOps ? '' : ' (varies!)'}`,
    `${p.execProcesses} / ${p.totalProcesses}`, mib(p.rssPeakKb),
  ];
}

export async function runControl(opts: ControlOptions, cliBuild: { lsdn?: string; why?: string; ms: number }): Promise<ControlResult> {
  const out: string[] = [];
  const targets: Target[] = [];
  const keys = ['a', 'b', 'c'];
  const specs = keys.map((k) => specFor(k, opts.quick));

  // 1. Pure validate + plan, each model in its own process.
  const plans = new Map<string, PlanPhaseResult>();
  for (const s of specs) {
    progress(`model ${s.key}: validate + compile + plan x${opts.repeat}`);
    plans.set(s.key, await runPhase<PlanPhaseResult>('./phase.ts', ['plan', s.key, opts.quick ? '1' : '0', String(opts.repeat)]));
  }
  out.push(`### Validate + plan for p0 against an empty host (pure, in-process, median of ${opts.repeat})`, '');
  out.push(table(
    ['model', 'objects on p0', 'commands', 'validate', 'compile', 'plan', 'total', 'whole-model validate', 'build model', 'peak RSS (at start)'],
    specs.map((s) => {
      const p = plans.get(s.key) as PlanPhaseResult;
      return [
        `(${s.key}) ${s.label}`, p.objects, p.commands, ms(median(p.validateMs)), ms(median(p.compileMs)), ms(median(p.planMs)),
        `**${ms(median(p.totalMs))}**`, ms(p.validateAllMs), ms(p.genMs), `${mib(p.rssPeakKb)} (${mib(p.rssStartKb)})`,
      ];
    }),
  ));
  out.push('');
  for (const s of specs) {
    const p = plans.get(s.key) as PlanPhaseResult;
    if (p.errors) out.push(`model ${s.key}: ${p.errors} validation error(s): the generator is wrong`, '');
  }
  const big = specFor('b', opts.quick);
  const bigPlan = median((plans.get('b') as PlanPhaseResult).totalMs);
  targets.push({ name: `plan of the ${big.virts.toLocaleString('en')}-virt model (b) < 1 s`, value: ms(bigPlan), ok: bigPlan < 1000 });

  // 2. Applies on a real (namespaced) host: model c (1000 local virts) and model b (the big model).
  const runs: HostRun[] = [];
  for (const key of ['c', 'd', 'b']) runs.push(await hostRun(key, opts.quick, opts.cycles));
  for (const run of runs) {
    out.push(`### Applies on p0 of (${run.spec.key}) ${run.spec.label}: ${run.localVirts} local virts (host prepared in ${ms(run.prepMs)})`, '');
    out.push(table(
      ['apply (each in a fresh process)', 'time: median (min–max)', 'steps', 'kernel operations', 'processes (execution / all)', 'peak RSS'],
      [run.first, run.noop, run.changes.add, run.changes.move, run.changes.remove, run.restore, run.final].map(phaseRow),
    ));
    out.push('');
  }
  const [c, d, b] = runs as [HostRun, HostRun, HostRun];
  targets.push({ name: `no-op apply of p0 with ${c.localVirts} local virts (c) < 1 s`, value: ms(c.noop.ms), ok: c.noop.ms < 1000 });
  const worst = (run: HostRun) => Math.max(...Object.values(run.changes).map((r) => r.ms));
  for (const run of [c, b]) {
    targets.push({
      name: `one-virt change (add, move, remove) on p0 of (${run.spec.key}) < 300 ms`,
      value: `slowest median ${ms(worst(run))}`,
      ok: worst(run) < 300,
    });
  }
  const opsOf = (run: HostRun) => CHANGES.map((k) => run.changes[k].operations);
  const stable = [c, b].every((r) => Object.values(r.changes).every((p) => p.sameOps));
  targets.push({
    name: 'one-virt change: same number of kernel operations whatever the model size',
    value: `add/move/remove: (c) ${opsOf(c).join('/')}, (b) ${opsOf(b).join('/')}`,
    ok: opsOf(c).join('/') === opsOf(b).join('/') && stable,
  });
  const fw = (x: number, y: number) => `${ms(x)} vs ${ms(y)}`;
  out.push(
    `The default firewall on p0 of (c) (one nftables chain per local virt) vs (d), the same without it: first build ${fw(c.first.ms, d.first.ms)}, ` +
    `no-op ${fw(c.noop.ms, d.noop.ms)}, add ${fw(c.changes.add.ms, d.changes.add.ms)}, move ${fw(c.changes.move.ms, d.changes.move.ms)}, remove ${fw(c.changes.remove.ms, d.changes.remove.ms)}.`,
    '',
  );
  if (!runs.every((r) => r.noop.operations === 0 && r.final.operations === 0)) out.push('**A no-op apply sent operations: the host did not converge.**', '');

  // 3. The same through the command line (Node start and YAML load included).
  const cliTargets: Target[] = [];
  if (cliBuild.lsdn) {
    progress('command line end to end');
    const { rows, startup } = await cliRuns(cliBuild.lsdn, opts.quick);
    out.push(`### Through the command line (\`lsdn\` built from the current src/), wall time from spawn to exit`, '');
    out.push(table(['command', 'time', 'peak RSS', 'output'], rows.map((r) => [r.what, `**${ms(r.ms)}**`, r.rssKb ? mib(r.rssKb) : '-', cell(r.note, 110)])));
    out.push('');
    const row = (prefix: string) => rows.find((r) => r.what.startsWith(prefix));
    const planB = row('`lsdn plan` p0 of (b)');
    const noopC = row('`lsdn apply` p0 of (c), no-op');
    const changes = rows.filter((r) => / one virt | that virt /.test(r.what));
    if (planB) cliTargets.push({ name: `stricter: \`lsdn plan FILE\` of (b) on its host < 1 s`, value: ms(planB.ms), ok: planB.ms < 1000 && planB.code === 0 });
    if (noopC) cliTargets.push({ name: `stricter: no-op \`lsdn apply FILE\` of (c) < 1 s`, value: ms(noopC.ms), ok: noopC.ms < 1000 && noopC.code === 0 });
    if (changes.length) {
      const w = Math.max(...changes.map((r) => r.ms));
      cliTargets.push({ name: 'stricter: one-virt change `lsdn apply FILE` of (c) < 300 ms', value: `slowest ${ms(w)} (\`lsdn --version\` alone: ${ms(startup.ms)})`, ok: w < 300 && changes.every((r) => r.code === 0) });
    }
  } else out.push(`(The command line was not measured: ${cliBuild.why ?? 'no build'}.)`, '');

  // 4. The status quo: the same first build, one process per command.
  if (opts.baseline) {
    const base = await baselineRun('c', opts.quick);
    const lsdnFirst = c.first.ms;
    const factor = base.ms / lsdnFirst;
    out.push(`### First build of p0 of (c): lsdn vs one process per command (side by side, fresh hosts)`, '');
    out.push(table(
      ['how', 'time', 'processes', 'kernel operations', 'same end state'],
      [
        ['`applyHost` (read + feature probe + validate + plan + batches)', `**${ms(lsdnFirst)}**`, c.first.totalProcesses, c.first.operations, 'yes (the next apply: no steps)'],
        ['status quo: the same commands, one `ip`/`bridge`/`nft` process each (sh script)', `**${ms(base.ms)}**`, base.commands, base.commands,
          base.failedAt ? `no: failed (${cell(base.failedAt, 120)})` : base.leftSteps === 0 ? 'yes (the next apply: no steps)' : `no: ${base.leftSteps} steps left`],
      ],
    ));
    out.push('', `Speed-up: **${factor.toFixed(0)}x** (${(base.ms / base.commands).toFixed(1)} ms per process).`, '');
    targets.push({ name: 'first build >= 10x faster than one process per command', value: `${factor.toFixed(0)}x (${ms(base.ms)} vs ${ms(lsdnFirst)})`, ok: factor >= 10 && !base.failedAt });
  }
  return { markdown: out.join('\n'), targets: [...targets, ...cliTargets] };
}

export function targetTable(targets: Target[]): string {
  return table(['target', 'measured', 'verdict'], targets.map((t) => [t.name, t.value, verdict(t.ok)]));
}
