/** Shared helpers of the CLI verbs: exit codes, output, loading a model file. */
import { loadModelFile, type FileSection } from '../file/load.js';
import { hasErrors } from '../validate/validate.js';
import type { Problem } from '../core/problem.js';
import type { Netmodel } from '../model/netmodel.js';
import { formatProblems } from '../core/problem.js';
import { problemsJson } from '../apply/format.js';

/** Exit with a code from inside an action. */
export class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

export const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
export const err = (s: string) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`);

/** Load a model file; located file problems (syntax, schema, references) end the command with 2. */
export async function loadOrExit(file: string, json = false): Promise<{ model: Netmodel; problems: Problem[]; lab?: FileSection }> {
  const { model, problems, lab } = await loadModelFile(file);
  if (!model || hasErrors(problems)) {
    if (json) out(JSON.stringify({ valid: false, problems: problemsJson(problems) }, null, 2));
    err(formatProblems(problems));
    throw new Exit(2);
  }
  return { model, problems, ...(lab ? { lab } : {}) };
}

