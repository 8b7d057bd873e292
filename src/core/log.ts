/**
 * Structured logging: one event is one line, as JSON (`--log-format json`, for journald,
 * Loki, jq) or as human text (the default). The logger is a core word and pure: it filters by
 * level, formats, and hands each line to a sink the shell gives it (the CLI's: stderr).
 * Messages and fields never carry a stack trace; a line never spans lines.
 */
import { KernelError, LsdnError, ModelInvalidError, UsageError } from './errors.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export type LogValue = string | number | boolean | null | undefined | readonly (string | number)[];
export type LogFields = Record<string, LogValue>;

export interface LogRecord {
  /** ISO 8601, UTC. */
  time: string;
  level: LogLevel;
  /** A stable, dotted name (`apply.done`, `step.failed`): what a filter or alert keys on. */
  event: string;
  /** One human sentence. */
  msg: string;
  fields: LogFields;
}

export interface Logger {
  log(level: LogLevel, event: string, msg: string, fields?: LogFields): void;
  debug(event: string, msg: string, fields?: LogFields): void;
  info(event: string, msg: string, fields?: LogFields): void;
  warn(event: string, msg: string, fields?: LogFields): void;
  error(event: string, msg: string, fields?: LogFields): void;
  /** Would a line of this level be written? */
  enabled(level: LogLevel): boolean;
  /** A logger adding these fields to every line (e.g. the phys of a watcher). */
  child(fields: LogFields): Logger;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export function parseLogLevel(value: string, origin: string): LogLevel {
  const v = value.trim().toLowerCase();
  const level = v === 'warning' ? 'warn' : v;
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level as LogLevel;
  throw new UsageError(`${origin}: unknown log level "${value}" (use ${LOG_LEVELS.join(', ')})`);
}

export function parseLogFormat(value: string, origin: string): LogFormat {
  const v = value.trim().toLowerCase();
  if ((LOG_FORMATS as readonly string[]).includes(v)) return v as LogFormat;
  throw new UsageError(`${origin}: unknown log format "${value}" (use ${LOG_FORMATS.join(', ')})`);
}

/** Newlines (a kernel tool's multi-line answer) become " | ": one event, one line. */
const oneLine = (s: string) => s.replace(/\s*\r?\n\s*/g, ' | ').trim();

const RESERVED = new Set(['time', 'level', 'event', 'msg']);

function textValue(v: Exclude<LogValue, undefined>): string {
  const s = Array.isArray(v) ? v.join(',') : v === null ? 'null' : oneLine(String(v));
  return s === '' || /[\s"=\\]/.test(s) ? JSON.stringify(s) : s;
}

/** One line, without its newline. Fields named like the record's own keys, and undefined ones, are left out. */
export function formatLogRecord(r: LogRecord, format: LogFormat): string {
  const fields = Object.entries(r.fields).filter((e): e is [string, Exclude<LogValue, undefined>] => e[1] !== undefined && !RESERVED.has(e[0]));
  if (format === 'json') {
    const o: Record<string, unknown> = { time: r.time, level: r.level, event: r.event, msg: oneLine(r.msg) };
    for (const [k, v] of fields) o[k] = typeof v === 'string' ? oneLine(v) : v;
    return JSON.stringify(o);
  }
  const kv = fields.map(([k, v]) => ` ${k}=${textValue(v)}`).join('');
  return `${r.time} ${r.level.toUpperCase().padEnd(5)} ${r.event}: ${oneLine(r.msg)}${kv}`;
}

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** The sink: gets each line without its newline. */
  write: (line: string) => void;
  /** The clock (tests fix it). */
  now?: () => Date;
  fields?: LogFields;
}

export function createLogger(opts: LoggerOptions): Logger {
  const now = opts.now ?? (() => new Date());
  const base = opts.fields ?? {};
  const enabled = (level: LogLevel) => RANK[level] >= RANK[opts.level];
  const log = (level: LogLevel, event: string, msg: string, fields: LogFields = {}) => {
    if (!enabled(level)) return;
    opts.write(formatLogRecord({ time: now().toISOString(), level, event, msg, fields: { ...base, ...fields } }, opts.format));
  };
  return {
    log,
    debug: (e, m, f) => log('debug', e, m, f),
    info: (e, m, f) => log('info', e, m, f),
    warn: (e, m, f) => log('warn', e, m, f),
    error: (e, m, f) => log('error', e, m, f),
    enabled,
    child: (fields) => createLogger({ ...opts, fields: { ...base, ...fields } }),
  };
}

const nothing = (): void => undefined;
/** Writes nothing (the library's default: only the CLI and watch log). */
export const silentLogger: Logger = {
  log: nothing,
  debug: nothing,
  info: nothing,
  warn: nothing,
  error: nothing,
  enabled: () => false,
  child: () => silentLogger,
};

/**
 * An error as log fields: its kind and, at the kernel boundary, what ran and what it answered;
 * never its stack.
 */
export function errorFields(e: unknown): LogFields {
  if (e instanceof KernelError) {
    return {
      error: 'KernelError',
      command: e.command.join(' '),
      exitCode: e.exitCode,
      ...(e.line !== undefined ? { line: e.line } : {}),
      ...(e.batchLine !== undefined ? { batchLine: e.batchLine } : {}),
      ...(e.stderr ? { stderr: e.stderr.trim() } : {}),
    };
  }
  if (e instanceof ModelInvalidError) return { error: 'ModelInvalidError', problems: e.problems.filter((p) => p.severity === 'error').length };
  if (e instanceof LsdnError) return { error: e.constructor.name };
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return { error: e instanceof Error ? e.name : typeof e, ...(typeof code === 'string' ? { code } : {}) };
}
