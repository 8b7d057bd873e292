/** `lsdn lab`: simulate every host and VM of a model in namespaces on this machine. */
import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import type { Netmodel } from '../model/netmodel.js';
import { requireRoot } from '../apply/host.js';
import { applyInLab } from '../lab/apply.js';
import { labDown, labUp } from '../lab/lab.js';
import { labLayout, labPrefix, type LabLayout } from '../lab/layout.js';
import { formatMatrix, labCheck } from '../lab/check.js';
import { labExtension, type LabExtension } from '../lab/extension.js';
import { Exit, err, loadOrExit, out } from './util.js';

export const DEMO_FILE = fileURLToPath(new URL('../../examples/cluster.yaml', import.meta.url));

async function up(model: Netmodel, lab: LabExtension, prefix: string | undefined, progress: (s: string) => void): Promise<LabLayout> {
  return labUp(model, { ...(prefix ? { prefix } : {}), lab, apply: (phys, netns) => applyInLab(model, phys, netns), onProgress: progress });
}

/** The model and its file's lab section (VDE clients, extra interfaces). */
async function loadLab(file: string): Promise<{ model: Netmodel; lab: LabExtension }> {
  const { model, lab } = await loadOrExit(file);
  return { model, lab: labExtension(lab) };
}

export function registerLab(program: Command): void {
  const lab = program.command('lab').description('simulate a whole cluster on this machine and prove connectivity and isolation with real packets');
  const quiet = (o: { json?: boolean }) => (o.json ? () => undefined : (s: string) => err(`lab: ${s}`));

  lab
    .command('up')
    .description('create one namespace per phys and per virt, joined by a simulated underlay, and apply the model on every simulated host')
    .argument('<file>', 'netmodel file')
    .option('--prefix <prefix>', 'name prefix of the lab (default: from the model name)')
    .action(async (file: string, o: { prefix?: string }) => {
      requireRoot('lab up');
      const { model, lab: ext } = await loadLab(file);
      const layout = await up(model, ext, o.prefix, quiet({}));
      const clients = layout.lab?.clients.length ? `, ${layout.lab.clients.length} VDE clients` : '';
      out(`lab ${layout.prefix} is up: ${layout.physNs.size} physes, ${layout.virtNs.size} virts${clients} (ip netns list | grep ${layout.prefix})`);
    });

  lab
    .command('check')
    .description('ping every pair of virts: same net must reach, other nets must not')
    .argument('<file>', 'netmodel file')
    .option('--prefix <prefix>', 'name prefix of the lab')
    .option('--json', 'machine-readable output')
    .action(async (file: string, o: { prefix?: string; json?: boolean }) => {
      requireRoot('lab check');
      const { model, lab: ext } = await loadLab(file);
      const layout = labLayout(model, { ...(o.prefix ? { prefix: o.prefix } : {}), lab: ext });
      const report = await labCheck(model, layout);
      if (o.json) out(JSON.stringify(report, null, 2));
      else out(formatMatrix(report, layout));
      if (report.failed) throw new Exit(1);
    });

  lab
    .command('down')
    .description('remove everything the lab created (also after a crash)')
    .argument('[file]', 'netmodel file (or give --prefix)')
    .option('--prefix <prefix>', 'name prefix of the lab')
    .action(async (file: string | undefined, o: { prefix?: string }) => {
      requireRoot('lab down');
      let prefix = o.prefix;
      if (!prefix) {
        if (!file) throw new Exit(1);
        prefix = labPrefix((await loadOrExit(file)).model);
      }
      const removed = await labDown(prefix);
      out(`lab ${prefix}: removed ${removed.length} namespace(s)`);
    });

  lab
    .command('demo')
    .description('up + check + down on the bundled example (or FILE), with progress')
    .argument('[file]', 'netmodel file', DEMO_FILE)
    .option('--prefix <prefix>', 'name prefix of the lab (default: from the model name)')
    .action(async (file: string, o: { prefix?: string }) => {
      requireRoot('lab demo');
      const started = Date.now();
      const { model, lab: ext } = await loadLab(file);
      const progress = (s: string) => err(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${s}`);
      const clients = ext.clients.length ? `, ${ext.clients.length} VDE clients` : '';
      progress(`model ${model.name}: ${model.physes.size} physes, ${model.nets.size} nets, ${model.virts().length} virts${clients}`);
      const prefix = labPrefix(model, o.prefix ? { prefix: o.prefix } : {});
      await labDown(prefix); // a lab left behind by an earlier run
      let failed = 0;
      try {
        const layout = await up(model, ext, prefix, progress);
        progress('checking every pair of virts with real packets');
        const report = await labCheck(model, layout);
        out(formatMatrix(report, layout));
        failed = report.failed;
      } finally {
        progress('tearing the lab down');
        await labDown(prefix);
      }
      progress(failed ? 'demo FAILED' : 'demo passed');
      if (failed) throw new Exit(1);
    });
}
