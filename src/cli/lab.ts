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
import { ClusterLab, stopWatcher } from './lab-cluster.js';

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
    .option('--cluster', 'through a throw-away etcd and one `lsdn watch` per simulated host; runs until SIGINT/SIGTERM, then stops the watchers and etcd (the lab stays until `lab down`)')
    .action(async (file: string, o: { prefix?: string; cluster?: boolean }) => {
      requireRoot('lab up');
      const { model, lab: ext } = await loadLab(file);
      if (o.cluster) return clusterUp(model, ext, o.prefix);
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
    .option('--cluster', 'through a throw-away etcd: push the model, one `lsdn watch` per simulated host, check, move a virt with `lsdn virt move` and time the convergence')
    .action(async (file: string, o: { prefix?: string; cluster?: boolean }) => {
      requireRoot('lab demo');
      const started = Date.now();
      const { model, lab: ext } = await loadLab(file);
      const progress = (s: string) => err(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${s}`);
      if (o.cluster) return clusterDemo(model, ext, progress, o.prefix);
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

/** `lab demo --cluster`: the demo through the store, and the time a move takes to converge. */
async function clusterDemo(model: Netmodel, ext: LabExtension, progress: (s: string) => void, prefix?: string): Promise<void> {
  await labDown(labPrefix(model, prefix ? { prefix } : {}));
  let failed = 0;
  let lab: ClusterLab | undefined;
  try {
    lab = await ClusterLab.up(model, { lab: ext, progress, ...(prefix ? { prefix } : {}) });
    progress(`${lab.watchers.size} watchers applied the model`);
    progress('checking every pair of virts with real packets');
    const report = await labCheck(model, lab.layout);
    out(formatMatrix(report, lab.layout));
    failed = report.failed;
    const virt = model.virts().find((v) => v.phys && v.if && model.physes.size > 1 && lab!.peersOfSafe(v.id));
    if (virt) {
      const to = [...model.physes.values()].find((p) => p !== virt.phys)!.name;
      progress(`lsdn virt move ${virt.id} --phys ${to} (from ${virt.phys!.name})`);
      const m = await lab.move(virt.id, to);
      out(`move ${m.virt} ${m.from} -> ${m.to}: written in ${m.writeMs.toFixed(0)} ms; every host applied revision ${m.revision} ${m.appliedMs.toFixed(0)} ms later (${m.kernelReads} of ${lab.watchers.size} read their kernel); the VM answered every peer ${m.answeredMs.toFixed(0)} ms after the move`);
      const after = await labCheck(lab.model, lab.layout);
      if (after.failed) out(formatMatrix(after, lab.layout));
      failed += after.failed;
    }
  } finally {
    progress('tearing the lab, the watchers and etcd down');
    if (lab) await lab.down();
    else await labDown(labPrefix(model));
  }
  progress(failed ? 'demo FAILED' : 'demo passed');
  if (failed) throw new Exit(1);
}

async function clusterUp(model: Netmodel, ext: LabExtension, prefix: string | undefined): Promise<void> {
  const lab = await ClusterLab.up(model, { lab: ext, ...(prefix ? { prefix } : {}), progress: (s) => err(`lab: ${s}`) });
  out(`lab ${lab.layout.prefix} is up in cluster mode: store ${lab.url}${lab.store.prefix}, ${lab.watchers.size} watchers (try: lsdn cluster status --store ${lab.url}); Ctrl-C stops the watchers and etcd`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await Promise.all([...lab.watchers.values()].map((w) => stopWatcher(w)));
  lab.store.close();
  await lab.stopStore();
  out(`lab ${lab.layout.prefix}: watchers and etcd stopped; the lab stays (lsdn lab down --prefix ${lab.layout.prefix})`);
}
