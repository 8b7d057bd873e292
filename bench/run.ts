/**
 * `npm run bench`: the control-plane and datapath benchmarks in one run, printed as markdown
 * (the report goes to stdout, progress to stderr). Needs root (network namespaces).
 *
 *   npm run bench                     everything (under 10 minutes on 2 cores)
 *   npm run bench -- --control        control plane only
 *   npm run bench -- --datapath       datapath only
 *   npm run bench -- --quick          models at a tenth of the size, 1 s iperf3, 1 cycle, 1 round
 *   npm run bench -- --no-baseline    skip the one-process-per-object baseline
 *   npm run bench -- --repeat N       pure-plan repetitions (median; default 5)
 *   npm run bench -- --cycles N       no-op and add/move/remove cycles per host (median; default 3)
 *   npm run bench -- --runs N         datapath rounds, every path once per round (best; default 3)
 *   npm run bench -- --seconds S      iperf3 duration (default 3)
 *
 * Every namespace it creates is named `lsb<pid>-...` and removed at the end, also on failure
 * and on SIGINT/SIGTERM (processes inside them are killed first).
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { buildCli, runControl, targetTable, type ControlResult } from './control.js';
import { runDatapath } from './datapath.js';
import { BENCH_PREFIX, cleanupAll, leftovers, progress, runProc } from './lib.js';

interface Args {
  control: boolean;
  datapath: boolean;
  quick: boolean;
  baseline: boolean;
  repeat: number;
  cycles: number;
  runs: number;
  seconds: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { control: false, datapath: false, quick: false, baseline: true, repeat: 5, cycles: 3, runs: 3, seconds: 3 };
  const num = (i: number, name: string): number => {
    const v = Number(argv[i + 1]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    if (f === '--control') a.control = true;
    else if (f === '--datapath') a.datapath = true;
    else if (f === '--quick') a.quick = true;
    else if (f === '--no-baseline') a.baseline = false;
    else if (f === '--repeat') a.repeat = num(i++, f);
    else if (f === '--cycles') a.cycles = num(i++, f);
    else if (f === '--runs') a.runs = num(i++, f);
    else if (f === '--seconds') a.seconds = num(i++, f);
    else if (f === '--help' || f === '-h') {
      process.stdout.write(readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]!.replace(/^\/\*\*\n?/, '').replace(/^ \* ?/gm, '') + '\n');
      process.exit(0);
    } else throw new Error(`unknown flag ${f} (see --help)`);
  }
  if (!a.control && !a.datapath) a.control = a.datapath = true;
  if (a.quick) {
    a.repeat = Math.min(a.repeat, 3);
    a.cycles = 1;
    a.runs = 1;
    a.seconds = Math.min(a.seconds, 1);
  }
  return a;
}

async function machine(): Promise<string> {
  const ipv = (await runProc(['ip', '-V'])).stdout.trim();
  const model = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} cores (${model}), kernel ${release()}, ${ipv}, Node ${process.version}`;
}

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

let cleaning: Promise<unknown> | undefined;
function onSignal(sig: NodeJS.Signals): void {
  progress(`${sig}: removing the bench's namespaces`);
  cleaning ??= cleanupAll();
  void cleaning.finally(() => process.exit(130));
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) {
    console.error('npm run bench needs root (it builds hosts in network namespaces)');
    return 1;
  }
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const t0 = Date.now();
  const out: string[] = [];
  let control: ControlResult | undefined;
  let failed = false;
  try {
    out.push(`**lsdn benchmark, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC** (\`npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\`)`, '');
    out.push(`Machine: ${await machine()}. Load average at start: ${load()}.${args.quick ? ' **Quick run (models at a tenth of the size, 1 s iperf3): not the reference figures.**' : ''}`, '');
    if (args.control) {
      // Built first: tsc must not run while anything is timed.
      progress('building the command line from src/ (private copy)');
      const cliBuild = await buildCli();
      out.push('## Control plane', '');
      out.push(
        'All generated models use vxlan/static (every MAC programmed: the most kernel objects per virt); p0 is the measured host. ' +
        "Virts have a MAC and no IP; lsdn's default firewall (anti-spoofing: one nftables chain per local virt) is on, except in (d).",
        '',
      );
      control = await runControl({ quick: args.quick, repeat: args.repeat, cycles: args.cycles, baseline: args.baseline }, cliBuild);
      out.push(control.markdown);
      await cleanupAll();
    }
    if (args.datapath) {
      if (args.control) await new Promise((r) => setTimeout(r, 3000)); // let the kernel finish tearing the hosts down
      out.push('## Datapath', '');
      out.push(await runDatapath({ runs: args.runs, seconds: args.seconds }));
    }
    if (control) {
      out.push('## Control-plane targets', '', targetTable(control.targets), '');
    }
  } catch (e) {
    failed = true;
    out.push('', `**The run failed:** ${e instanceof Error ? e.message : String(e)}`);
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  } finally {
    await (cleaning ?? cleanupAll());
  }
  const left = await leftovers();
  out.push(`Total run time: ${((Date.now() - t0) / 1000).toFixed(0)} s. Load average at the end: ${load()}. Namespaces left behind: ${left.length ? left.join(', ') : `none (prefix ${BENCH_PREFIX})`}.`);
  process.stdout.write(out.join('\n') + '\n');
  return failed || left.length ? 1 : 0;
}

main().then((code) => process.exit(code), (e: unknown) => {
  console.error(e);
  void cleanupAll().finally(() => process.exit(1));
});
