/**
 * `lsdn` command line. Every verb is a few lines over the library: load the model, call the
 * library, print. Exit codes: 0 success; 1 other errors (kernel, usage, I/O); 2 the model is
 * invalid (validate, apply...), or, for `plan --exit-code` and `status`, there are changes/drift;
 * 3 for `trace`: the frame is dropped.
 */
import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import { loadModelFile } from '../file/load.js';
import { dumpJson, dumpLsdnJson, dumpYaml } from '../file/dump.js';
import { validate, hasErrors } from '../validate/validate.js';
import type { Netmodel } from '../model/netmodel.js';
import { applyHost, destroyHost, planHost, requireRoot } from '../apply/host.js';
import { ModelInvalidError, UsageError } from '../core/errors.js';
import { KernelError, StoreError } from '../core/errors.js';
import { LockBusyError } from '../core/errors.js';
import { problemsJson, formatPlan, formatReport, planJson, reportJson } from '../apply/format.js';
import { formatProblems } from '../core/problem.js';
import { registerLab } from './lab.js';
import { registerCompletion } from './completion.js';
import { registerDoctor } from './doctor.js';
import { registerVm } from './vm.js';
import { registerAllocate } from './allocate.js';
import { registerStore, registerWatch, storeModelOrExit, storeOptions, withStore, type StoreFlags } from './store.js';
import { registerTrace } from './trace.js';
import { registerGraph } from './graph.js';
import { registerLsctlVerbs, dumpLsctl } from './lsctl-verbs.js';
import { Exit, err, loadOrExit, out } from './util.js';
import { cliLogger, isDebugging, logOptions, withLog, type LogOptions } from './log.js';

const require = createRequire(import.meta.url);
const VERSION = (require('../../package.json') as { version: string }).version;

function printWarnings(warnings: string[]): void {
  for (const w of warnings) err(`warning: ${w}`);
}

export function buildProgram(): Command {
  const program = new Command('lsdn')
    .description('Isolated virtual L2 networks for VMs and containers across Linux hosts, from one netmodel file.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('validate')
    .description('check a netmodel file and report every problem at once (exit 0 valid, 2 invalid, 1 other errors)')
    .argument('<file>', 'netmodel file (YAML or JSON)')
    .option('--phys <name>', 'validate as applied on this phys only')
    .option('--json', 'print problems as JSON on stdout')
    .action(async (file: string, o: { phys?: string; json?: boolean }) => {
      const { model, problems: loadProblems } = await loadModelFile(file);
      const problems = [...loadProblems, ...(model ? validate(model, o.phys ? { physes: [o.phys] } : {}) : [])];
      if (o.json) out(JSON.stringify({ valid: !hasErrors(problems), problems: problemsJson(problems) }, null, 2));
      if (problems.length) err(formatProblems(problems));
      if (hasErrors(problems)) throw new Exit(2);
      if (!o.json) out(`${file}: valid (${model?.nets.size ?? 0} nets, ${model?.physes.size ?? 0} physes, ${model?.virts().length ?? 0} virts)`);
    });

  const hostOpts = (c: Command) =>
    c
      .option('--phys <name>', 'the local phys: by name, or by one of its IPs (default: claimed local, hostname, or an IP of this host)')
      .option('--netns <name>', 'work inside this network namespace')
      .option('--json', 'machine-readable output');

  hostOpts(
    program
      .command('plan')
      .description('print the exact kernel changes apply would make on this host; changes nothing')
      .argument('<file>', 'netmodel file')
      .option('--exit-code', 'exit 0 when there are no changes, 2 when there are, 1 on errors')
      .option('--no-commands', 'omit the commands'),
  ).action(async (file: string, o: { phys?: string; netns?: string; json?: boolean; exitCode?: boolean; commands: boolean }) => {
    const { model } = await loadOrExit(file, o.json);
    const hp = await planHost(model, { phys: o.phys, netns: o.netns });
    printWarnings(hp.warnings);
    if (o.json) out(JSON.stringify({ phys: hp.phys.name, changes: planJson(hp.plan), problems: problemsJson(hp.problems) }, null, 2));
    else {
      const text = formatPlan(hp.plan, `plan for phys ${hp.phys.name}${o.netns ? ` (netns ${o.netns})` : ''}`);
      out(o.commands ? text : text.split('\n').filter((l) => !l.startsWith('    ') || l.includes('BLOCKED') || l.includes('WAITING')).join('\n'));
    }
    if (o.exitCode && hp.plan.steps.length) throw new Exit(2);
  });

  logOptions(storeOptions(hostOpts(program.command('apply').description('converge this host on the model (idempotent, incremental): a file, or the store\'s current revision').argument('[file]', 'netmodel file (or --store / LSDN_STORE)')), false)).action(
    async (file: string | undefined, o: StoreFlags & { phys?: string; netns?: string; json?: boolean } & LogOptions) => {
      const log = cliLogger(o);
      await withLog(log, 'apply.failed', async () => {
        requireRoot('apply');
        if (file === undefined && !o.store && !process.env.LSDN_STORE) throw new UsageError('apply: give a netmodel file, or --store URL (or LSDN_STORE)');
        let model: Netmodel;
        if (file !== undefined && !o.store) {
          const { model: m, problems } = await loadModelFile(file);
          if (!m || hasErrors(problems)) {
            if (o.json) out(JSON.stringify({ valid: false, problems: problemsJson(problems) }, null, 2));
            throw new ModelInvalidError(problems);
          }
          model = m;
        } else {
          model = await withStore(o, async (s) => (await storeModelOrExit(s)).model);
        }
        const r = await applyHost(model, { phys: o.phys, netns: o.netns, logger: log.child(file !== undefined && !o.store ? { file } : { store: true }) });
        if (o.json) out(JSON.stringify({ phys: r.phys.name, ...(reportJson(r.report) as object) }, null, 2));
        else out(formatReport(r.report, `apply on phys ${r.phys.name}`));
        if (!r.report.ok) throw new Exit(1);
      });
    },
  );

  hostOpts(program.command('status').description('report drift between the model and this host (exit 2 on drift)').argument('<file>', 'netmodel file')).action(
    async (file: string, o: { phys?: string; netns?: string; json?: boolean }) => {
      const { model } = await loadOrExit(file, o.json);
      const hp = await planHost(model, { phys: o.phys, netns: o.netns });
      // One line per kernel object (an object may need several steps: attach, then flags).
      const byObject = new Map<string, { object: string; drift: string; details: string[] }>();
      for (const s of hp.plan.steps) {
        const kind = s.action === 'create' ? 'missing' : s.action === 'delete' ? 'not in the model' : 'differs';
        const d = byObject.get(s.key) ?? { object: s.key, drift: kind, details: [] };
        if (d.drift !== kind && kind !== 'missing') d.drift = kind;
        d.details.push(...(s.blocked ? [s.blocked] : (s.changes ?? [])));
        byObject.set(s.key, d);
      }
      const drift = [...byObject.values()];
      if (o.json) out(JSON.stringify({ phys: hp.phys.name, inSync: drift.length === 0, owned: hp.read.state.size, drift }, null, 2));
      else if (drift.length === 0) out(`phys ${hp.phys.name}: in sync (${hp.desired.size} objects)`);
      else {
        out(`phys ${hp.phys.name}: ${drift.length} object(s) drifted`);
        for (const d of drift) out(`  ${d.drift.padEnd(16)} ${d.object}${d.details.length ? `: ${d.details.join(', ')}` : ''}`);
      }
      if (drift.length) throw new Exit(2);
    },
  );

  program
    .command('destroy')
    .description('remove everything lsdn owns on this host (nothing it does not own is touched)')
    .option('--context <name>', "only objects of this model's context (its `name`)")
    .option('--netns <name>', 'work inside this network namespace')
    .option('--json', 'machine-readable output')
    .action(async (o: { context?: string; netns?: string; json?: boolean }) => {
      requireRoot('destroy');
      const r = await destroyHost({ netns: o.netns, context: o.context });
      if (o.json) out(JSON.stringify(reportJson(r.report), null, 2));
      else out(formatReport(r.report, 'destroy'));
      if (!r.report.ok) throw new Exit(1);
    });

  program
    .command('dump')
    .description('print the model in canonical form')
    .argument('<file>', 'netmodel file')
    .option('--format <format>', 'yaml | json | lsdn-json (LSDN\'s JSON dump) | lsctl (an lsctl script)', 'yaml')
    .action(async (file: string, o: { format: string }) => {
      const { model } = await loadOrExit(file);
      const formats: Record<string, (m: Netmodel) => string> = { yaml: dumpYaml, json: dumpJson, 'lsdn-json': dumpLsdnJson, lsctl: (m) => dumpLsctl(m, { runnable: true }) };
      const f = formats[o.format];
      if (!f) throw new UsageError(`unknown format "${o.format}" (use ${Object.keys(formats).join(', ')})`);
      process.stdout.write(f(model));
    });

  registerDoctor(program);
  registerVm(program);
  registerAllocate(program);
  registerStore(program);
  registerWatch(program);
  registerTrace(program);
  registerGraph(program);
  registerLab(program);
  registerLsctlVerbs(program);
  registerCompletion(program);
  return program;
}

/** Run the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof Exit) return e.code;
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1;
    if (e instanceof ModelInvalidError) {
      err(formatProblems(e.problems));
      err(`lsdn: ${e.message}`);
      return 2;
    }
    if (e instanceof UsageError || e instanceof LockBusyError) {
      err(`lsdn: ${e.message}`);
      return 1;
    }
    if (e instanceof StoreError) {
      err(`lsdn: ${e.message}`);
      return 1;
    }
    if (e instanceof KernelError) {
      err(`lsdn: kernel error: ${e.message}`);
      return 1;
    }
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES') {
      err(`lsdn: ${(e as Error).message}`);
      return 1;
    }
    // A bug: its message, and its stack only when debugging (LSDN_DEBUG=1 or --log-level debug).
    err(`lsdn: internal error: ${e instanceof Error ? e.message : String(e)}`);
    if (isDebugging() && e instanceof Error && e.stack) err(e.stack);
    else err('lsdn: (run again with LSDN_DEBUG=1 for the stack trace)');
    return 1;
  }
}
