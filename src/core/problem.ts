/** A problem found by validation: what, where, and how bad. */
import { formatLoc, type SourceLoc } from './location.js';

export type Severity = 'error' | 'warning';

export interface Problem {
  /** Stable kebab-case identifier of the kind of problem ("virt-mac-duplicate"). */
  code: string;
  severity: Severity;
  /** What is wrong, naming the offending value. */
  message: string;
  /** The object it is about: "virt blue/web1", "net blue", "phys a", "settings default", "rule in 10 of virt blue/web1". */
  object: string;
  /** Where the offending field (or else the object) was written. */
  loc?: SourceLoc;
  /**
   * The offending field (or else the object) as a path in the file form of the model:
   * `['nets', 'blue', 'virts', 'web', 'if']`, `['settings', 'default', 'port']` (not printed).
   */
  path?: (string | number)[];
}

/** "FILE:LINE:COL: error: OBJECT: MESSAGE", or "error: OBJECT: MESSAGE" when the location is unknown. */
export function formatProblem(p: Problem): string {
  const text = `${p.severity}: ${p.object}: ${p.message}`;
  return p.loc ? `${formatLoc(p.loc)}: ${text}` : text;
}

/** Problems one per line, as formatProblem writes them. */
export function formatProblems(problems: Problem[]): string {
  return problems.map(formatProblem).join('\n');
}

export function hasErrors(problems: Problem[]): boolean {
  return problems.some((p) => p.severity === 'error');
}

/** A value as problem messages quote it: strings in double quotes, anything else as it prints. */
export function quote(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** Names quoted and comma-separated, or "none". */
export function quoteList(names: Iterable<string>): string {
  const a = [...names];
  return a.length ? a.map(quote).join(', ') : 'none';
}
