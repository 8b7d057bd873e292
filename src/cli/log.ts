/**
 * The CLI's logging: `--log-format text|json` and `--log-level` (or LSDN_LOG_FORMAT,
 * LSDN_LOG_LEVEL) on the verbs that log (apply, the hooks; `watch` takes the same), one line
 * per event on stderr. `--log-level debug` (or LSDN_DEBUG=1) also lets an unexpected error
 * print its stack trace; otherwise lsdn never prints one.
 */
import { Option, type Command } from 'commander';
import { LsdnError, ModelInvalidError } from '../core/errors.js';
import { LOG_FORMATS, LOG_LEVELS, createLogger, errorFields, parseLogFormat, parseLogLevel, type LogFormat, type Logger } from '../core/log.js';
import { formatProblem } from '../core/problem.js';
import { Exit } from './util.js';

export interface LogOptions {
  logFormat?: string;
  logLevel?: string;
}

/** Add the logging options to a verb. */
export function logOptions(c: Command): Command {
  return c
    .addOption(new Option('--log-format <format>', 'log lines as human text or JSON lines (default: $LSDN_LOG_FORMAT, else text)').choices(LOG_FORMATS))
    .addOption(new Option('--log-level <level>', 'the least severe events logged (default: $LSDN_LOG_LEVEL, else info)').choices(LOG_LEVELS));
}

let debugging = false;
/** Whether this run asked for debugging (stack traces of unexpected errors). */
export function isDebugging(): boolean {
  return debugging || process.env.LSDN_DEBUG === '1' || process.env.LSDN_LOG_LEVEL?.trim().toLowerCase() === 'debug';
}

/** The log format a verb's options ask for. */
export function logFormatOf(o: LogOptions): LogFormat {
  const env = process.env.LSDN_LOG_FORMAT;
  return o.logFormat ? parseLogFormat(o.logFormat, '--log-format') : env ? parseLogFormat(env, 'LSDN_LOG_FORMAT') : 'text';
}

/** The logger of a verb's options: lines to stderr. */
export function cliLogger(o: LogOptions): Logger {
  const env = process.env;
  const level = o.logLevel ? parseLogLevel(o.logLevel, '--log-level') : env.LSDN_LOG_LEVEL ? parseLogLevel(env.LSDN_LOG_LEVEL, 'LSDN_LOG_LEVEL') : 'info';
  const format = logFormatOf(o);
  if (level === 'debug') debugging = true;
  return createLogger({ level, format, write: (line) => process.stderr.write(`${line}\n`) });
}

/**
 * Log why a verb failed: each error problem of an invalid model (located), then the error
 * itself with its kind and, for the kernel, what ran and what it answered.
 */
export function logFailure(log: Logger, event: string, e: unknown): void {
  if (e instanceof ModelInvalidError) {
    for (const p of e.problems) log.log(p.severity === 'error' ? 'error' : 'warn', 'model.problem', formatProblem(p), { code: p.code });
  }
  const message = e instanceof Error ? e.message : String(e);
  log.error(event, e instanceof LsdnError ? message : `internal error: ${message}`, errorFields(e));
}

/** The exit code of an error lsdn expects (2: the model is invalid; 1: the others); undefined for a bug. */
export function expectedExitCode(e: unknown): number | undefined {
  if (e instanceof ModelInvalidError) return 2;
  if (e instanceof LsdnError) return 1;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'EACCES') return 1;
  return undefined;
}

/**
 * Run a logging verb: an error is logged as one `event` line (after its located problems) and
 * ends the verb with its exit code; an unexpected one's stack only when debugging.
 */
export async function withLog(log: Logger, event: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (e) {
    if (e instanceof Exit) throw e;
    logFailure(log, event, e);
    const code = expectedExitCode(e);
    if (code === undefined && isDebugging() && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    throw new Exit(code ?? 1);
  }
}
