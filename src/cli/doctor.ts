/** `lsdn doctor`: what this kernel can do, and which network types can run here. */
import type { Command } from 'commander';
import { Kernel } from '../kernel/exec.js';
import { formatDoctor, probeFeatures, typeSupport } from '../kernel/probe.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description("probe this kernel's link types, tc classifiers/actions, qdiscs and nftables, and say which network types can run here")
    .option('--netns <name>', 'probe from inside this network namespace')
    .option('--json', 'machine-readable output')
    .action(async (o: { netns?: string; json?: boolean }) => {
      const features = await probeFeatures(new Kernel({ netns: o.netns }));
      const support = typeSupport(features);
      if (o.json) process.stdout.write(JSON.stringify({ features, types: support }, null, 2) + '\n');
      else process.stdout.write(formatDoctor(features, support) + '\n');
    });
}
