/**
 * `lsdn allocate FILE [--check]`: compute IPv4 allocations and record them in the file's
 * `allocations` section (comments and layout kept), or with --check only say whether the
 * record is current (exit 1 when not: for CI).
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { allocate } from '../ipam/ipam.js';
import { fileFormat, writeAllocations } from '../ipam/record.js';
import { Exit, err, loadOrExit, out } from './util.js';

export function registerAllocate(program: Command): void {
  program
    .command('allocate')
    .description("allocate IPv4 addresses to virts without a static one and record them in the file's \"allocations\" (exit 0 done or current, 1 --check found it stale, 2 invalid)")
    .argument('<file>', 'netmodel file (YAML or JSON); rewritten in place')
    .option('--check', 'change nothing; exit 1 when the recorded allocations are not current')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (file: string, o: { check?: boolean; json?: boolean }) => {
      const { model } = await loadOrExit(file, o.json);
      const before = new Map(model.allocations);
      const r = allocate(model);
      for (const p of r.problems) err(`${file}: ${p}`);
      const current = r.added.length === 0 && r.dropped.length === 0;
      const changes = [
        ...r.added.map((id) => `+ ${id}: ${r.allocations.get(id)!}${before.has(id) ? ` (was ${before.get(id)!})` : ''}`),
        ...r.dropped.filter((id) => !r.allocations.has(id)).map((id) => `- ${id}: ${before.get(id)!}`),
      ];
      if (o.json) {
        out(JSON.stringify({ current, written: !current && !o.check, allocations: Object.fromEntries(r.allocations), added: r.added, dropped: r.dropped, problems: r.problems }, null, 2));
      }
      if (current) {
        if (!o.json) out(`${file}: allocations are current (${r.allocations.size} recorded)`);
      } else if (o.check) {
        if (!o.json) out(`${file}: allocations are not current; \`lsdn allocate ${file}\` would change:\n${changes.map((c) => `  ${c}`).join('\n')}`);
        throw new Exit(1);
      } else {
        const text = await readFile(file, 'utf8');
        await writeFile(file, writeAllocations(text, r.allocations, fileFormat(text, file)));
        if (!o.json) out(`${file}: recorded ${r.allocations.size} allocations\n${changes.map((c) => `  ${c}`).join('\n')}`);
      }
      if (r.problems.some((p) => p.startsWith('error'))) throw new Exit(2);
    });
}
