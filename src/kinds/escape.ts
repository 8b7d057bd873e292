/**
 * Values in batch lines: one function per reader that writes a value so the reader reads back
 * exactly that value, or throws (a programming error: validation keeps such values out of the
 * model, see core/charset.ts; this is the defence behind it, and never a kernel command).
 *
 *   iprouteArg   a word of an `ip|bridge|tc -batch` line. All three read batches with iproute2's
 *                getcmdline + makeargs (lib/utils.c): a `#` anywhere cuts the line (also inside
 *                quotes), words split at space and tab, a word that starts with `"` or `'` runs to
 *                the next quote of that kind with no escape (an unterminated one aborts the whole
 *                batch), and a line ending in `\` is joined with the next.
 *   nftString    a double-quoted nft string. nft strings have no escapes (no `"` inside); in an
 *                interface name `\` escapes and `*` is a wildcard, and `#` outside a string starts
 *                a comment: all four are refused, as are control characters.
 *
 * `checkBatchLine` is the last guard, at the kernel boundary (kernel/exec.ts): no line reaches a
 * tool with a newline, a NUL, a `#` or (iproute2) an unterminated quote.
 */
import type { Tool } from '../core/plan.js';

/** A value or line that a tool's batch reader cannot carry exactly (a bug: validation should have refused it). */
export class BatchEscapeError extends Error {
  constructor(readonly tool: string, readonly value: string, why: string) {
    super(`internal error: ${JSON.stringify(value)} cannot be written to ${tool}: ${why}`);
    this.name = 'BatchEscapeError';
  }
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const IPROUTE_WS = /[ \t]/;

/** A word of an iproute2 batch line (ip, bridge and tc share the reader) that reads back as `v`. */
export function iprouteArg(v: string): string {
  const tool = 'an iproute2 batch';
  if (typeof v !== 'string') throw new BatchEscapeError(tool, String(v), 'not a string');
  if (CONTROL.test(v)) throw new BatchEscapeError(tool, v, 'it has a control character (a newline would end the line)');
  if (v.includes('#')) throw new BatchEscapeError(tool, v, 'iproute2 cuts batch lines at "#", even inside quotes');
  if (v.endsWith('\\')) throw new BatchEscapeError(tool, v, 'a trailing "\\" joins the next line');
  if (v !== '' && !IPROUTE_WS.test(v) && v[0] !== '"' && v[0] !== "'") return v;
  if (!v.includes('"')) return `"${v}"`;
  if (!v.includes("'")) return `'${v}'`;
  throw new BatchEscapeError(tool, v, 'it has spaces and both kinds of quotes (iproute2 quotes have no escape)');
}

/** A double-quoted nft string that nft reads back as `v` (as an interface name: no wildcard, no escape). */
export function nftString(v: string): string {
  const tool = 'an nft script';
  if (typeof v !== 'string') throw new BatchEscapeError(tool, String(v), 'not a string');
  if (CONTROL.test(v) || v.includes('\t')) throw new BatchEscapeError(tool, v, 'it has a control character');
  for (const [c, why] of [['"', 'nft strings have no escape for a quote'], ['\\', 'nft reads "\\" in interface names as an escape'],
    ['*', 'nft reads "*" in interface names as a wildcard'], ['#', 'nft reads "#" as the start of a comment']] as const) {
    if (v.includes(c)) throw new BatchEscapeError(tool, v, why);
  }
  return `"${v}"`;
}

/**
 * The words iproute2's batch reader makes of one line (getcmdline's comment cut + makeargs),
 * or undefined where it would abort the batch (an unterminated quote). The reference the
 * escaping is tested against, and the guard's parser.
 */
export function iprouteWords(line: string): string[] | undefined {
  const hash = line.indexOf('#');
  let cp = hash >= 0 ? line.slice(0, hash) : line;
  const words: string[] = [];
  for (;;) {
    cp = cp.replace(/^[ \t\r\n]+/, '');
    if (cp === '') return words;
    const c = cp[0] as string;
    if (c === '"' || c === "'") {
      const end = cp.indexOf(c, 1);
      if (end < 0) return undefined;
      words.push(cp.slice(1, end));
      // makeargs ends the word at the closing quote; what follows it starts the next word.
      cp = cp.slice(end + 1);
    } else {
      const m = /^[^ \t\r\n]*/.exec(cp) as RegExpExecArray;
      words.push(m[0]);
      cp = cp.slice(m[0].length + 1);
    }
  }
}

/** Throws unless `line` can go to `tool` as one batch line read as lsdn wrote it. */
export function checkBatchLine(tool: Tool | string, line: string): void {
  if (/[\n\r\0]/.test(line)) throw new BatchEscapeError(tool, line, 'a batch line has a newline or NUL');
  if (line.includes('#')) throw new BatchEscapeError(tool, line, 'a batch line has "#" (the rest would be a comment)');
  if (tool === 'nft') {
    if ((line.match(/"/g) ?? []).length % 2) throw new BatchEscapeError(tool, line, 'a batch line has an unbalanced quote');
  } else if (tool === 'ip' || tool === 'bridge' || tool === 'tc') {
    if (line.endsWith('\\')) throw new BatchEscapeError(tool, line, 'a batch line ends in "\\" (it would join the next)');
    if (iprouteWords(line) === undefined) throw new BatchEscapeError(tool, line, 'a batch line has an unterminated quote');
  }
}
