/**
 * lsctl in the lsdn CLI: `lsdn import SCRIPT.lsctl [ARGS]` converts an lsctl script to the
 * netmodel file; `lsdn dump --format lsctl` (dumpLsctl) converts a model back.
 */
import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dumpJson, dumpYaml } from '../file/dump.js';
import { importLsctl } from '../lsctl/run.js';
import { TclshMissingError } from '../core/errors.js';
import { UsageError } from '../core/errors.js';
import { Exit, err, out } from './util.js';

export { dumpLsctl } from '../lsctl/dump.js';

export function registerLsctlVerbs(program: Command): void {
  program
    .command('import')
    .description('convert an lsctl script to a netmodel file: run it in Tcl with commit and cleanup disabled, print the model it built (YAML)')
    .argument('<script>', 'lsctl script')
    .argument('[args...]', "the script's $argv (put -- before arguments that start with -)")
    .option('-o, --output <file>', 'write the model to this file instead of stdout')
    .option('--format <format>', 'yaml | json', 'yaml')
    .action(async (script: string, args: string[], o: { output?: string; format: string }) => {
      const dump = o.format === 'yaml' ? dumpYaml : o.format === 'json' ? dumpJson : undefined;
      if (!dump) throw new UsageError(`unknown format "${o.format}" (use yaml, json)`);
      if (!existsSync(script)) throw new UsageError(`cannot read script "${script}": no such file`);
      let r;
      try {
        r = await importLsctl(script, args);
      } catch (e) {
        if (e instanceof TclshMissingError) throw new UsageError(e.message);
        throw e;
      }
      if (r.code !== 0) {
        err(`lsdn: ${script} failed (exit ${r.code}); nothing was converted`);
        throw new Exit(1);
      }
      const text = dump(r.model);
      if (o.output) await writeFile(o.output, text);
      else out(text);
    });
}
