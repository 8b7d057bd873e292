/**
 * `lsdn graph FILE [--format svg|dot|json] [--phys P] [-o FILE]`: the topology as a picture
 * (src/trace/graph.ts makes the DOT text from the model; SVG is Graphviz's `dot -Tsvg`, Debian
 * package graphviz). Exit 0; 2 the model is invalid; 1 other errors (unknown phys, no `dot`).
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { validate, hasErrors } from '../validate/validate.js';
import { formatProblems } from '../core/problem.js';
import { UsageError } from '../core/errors.js';
import { graphDot, graphModel } from '../trace/graph.js';
import { Exit, err, loadOrExit } from './util.js';

const FORMATS = ['svg', 'dot', 'json'] as const;
type Format = (typeof FORMATS)[number];

function formatName(v: string): Format {
  if (!(FORMATS as readonly string[]).includes(v)) throw new InvalidArgumentError(`one of ${FORMATS.join(', ')}`);
  return v as Format;
}

/** SVG of DOT text through Graphviz's `dot`; a clear UsageError when it is missing or fails. */
export function renderSvg(dot: string): string {
  const r = spawnSync('dot', ['-Tsvg'], { input: dot, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new UsageError("--format svg needs Graphviz's `dot` (Debian package graphviz: apt-get install graphviz, or scripts/setup.sh); --format dot or json work without it");
  }
  if (r.error) throw new UsageError(`dot -Tsvg: ${r.error.message}`);
  if (r.status !== 0) throw new UsageError(`dot -Tsvg exited ${String(r.status ?? r.signal)}: ${r.stderr.trim()}`);
  return r.stdout;
}

export function registerGraph(program: Command): void {
  program
    .command('graph')
    .description('the topology as a picture: hosts, nets (a colour each), virts, tunnels per net, the public uplinks (svg needs Graphviz `dot`)')
    .argument('<file>', 'netmodel file')
    .option('--format <format>', 'svg (default) | dot (Graphviz text) | json (the graph\'s data)', formatName, 'svg' as Format)
    .option('--phys <phys>', 'only what this host takes part in: its nets, their hosts and its tunnels')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .action(async (file: string, o: { format: Format; phys?: string; output?: string }) => {
      const { model } = await loadOrExit(file, o.format === 'json');
      const problems = validate(model);
      if (hasErrors(problems)) {
        err(formatProblems(problems));
        throw new Exit(2);
      }
      if (o.phys !== undefined && !model.phys(o.phys)) {
        throw new UsageError(`no phys ${o.phys} in ${file} (physes: ${[...model.physes.keys()].join(', ') || 'none'})`);
      }
      const g = graphModel(model, o.phys);
      const text = o.format === 'json' ? `${JSON.stringify(g, null, 2)}\n` : o.format === 'dot' ? graphDot(g) : renderSvg(graphDot(g));
      if (o.output !== undefined) writeFileSync(o.output, text);
      else process.stdout.write(text);
    });
}
