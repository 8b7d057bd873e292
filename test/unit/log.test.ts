/** Structured logging: the pure logger (levels, formats, one line per event) and the CLI's use of it (bin/lsdn). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, errorFields, formatLogRecord, parseLogLevel, silentLogger } from '../../src/core/log.js';
import { KernelError, UsageError } from '../../src/core/errors.js';
import { logReport } from '../../src/apply/format.js';
import type { ExecuteReport } from '../../src/apply/execute.js';

const NOW = () => new Date('2026-01-02T03:04:05.678Z');

function capture(level: 'debug' | 'info' | 'warn' | 'error', format: 'text' | 'json') {
  const lines: string[] = [];
  return { lines, log: createLogger({ level, format, now: NOW, write: (l) => lines.push(l) }) };
}

test('json: one object per event, the record keys first, undefined fields left out, multi-line text on one line', () => {
  const { lines, log } = capture('info', 'json');
  log.info('apply.done', 'applied\n  twice', { ok: true, steps: 3, keys: ['a', 'b'], gone: undefined, level: 'x' });
  assert.equal(lines.length, 1);
  assert.equal(lines[0], '{"time":"2026-01-02T03:04:05.678Z","level":"info","event":"apply.done","msg":"applied | twice","ok":true,"steps":3,"keys":["a","b"]}');
});

test('text: time, level, event, message, then key=value (quoted when needed)', () => {
  const line = formatLogRecord({ time: 'T', level: 'warn', event: 'step.blocked', msg: 'create port x', fields: { key: 'port x', n: 2, empty: '', path: 'a=b', list: ['p', 'q'], nil: null } }, 'text');
  assert.equal(line, 'T WARN  step.blocked: create port x key="port x" n=2 empty="" path="a=b" list=p,q nil=null');
});

test('levels filter, child loggers add fields, the silent logger writes nothing', () => {
  const { lines, log } = capture('warn', 'json');
  log.debug('a', 'no');
  log.info('b', 'no');
  log.child({ phys: 'hv1' }).warn('c', 'yes', { n: 1 });
  log.error('d', 'yes');
  assert.deepEqual(lines.map((l) => JSON.parse(l).event), ['c', 'd']);
  assert.equal(JSON.parse(lines[0]!).phys, 'hv1');
  assert.equal(log.enabled('info'), false);
  assert.equal(log.enabled('error'), true);
  assert.equal(silentLogger.enabled('error'), false);
  silentLogger.child({ x: 1 }).error('e', 'nothing');
});

test('levels parse case-blind (warning = warn); unknown ones are usage errors naming where they came from', () => {
  assert.equal(parseLogLevel('DEBUG', 'x'), 'debug');
  assert.equal(parseLogLevel('warning', 'x'), 'warn');
  assert.throws(() => parseLogLevel('loud', 'LSDN_LOG_LEVEL'), (e: unknown) => e instanceof UsageError && /LSDN_LOG_LEVEL: unknown log level "loud"/.test(e.message));
});

test('errors as fields: the kernel boundary says what ran and what it answered; never a stack', () => {
  const k = new KernelError('ip failed', ['ip', '-batch', '-'], 'Error: nope\n', 1, 2, 'link add x');
  assert.deepEqual(errorFields(k), { error: 'KernelError', command: 'ip -batch -', exitCode: 1, line: 2, batchLine: 'link add x', stderr: 'Error: nope' });
  assert.deepEqual(errorFields(new UsageError('bad')), { error: 'UsageError' });
  const f = errorFields(new TypeError('bug'));
  assert.deepEqual(f, { error: 'TypeError' });
});

test('an apply report logs its failed and blocked steps and one apply.done with the counts', () => {
  const { lines, log } = capture('debug', 'json');
  const step = (key: string) => ({ action: 'create' as const, key, commands: [] });
  const report: ExecuteReport = {
    ok: false,
    operations: 4,
    processes: 2,
    results: [
      { step: step('link a'), status: 'done' },
      { step: step('port b'), status: 'failed', error: 'Cannot find device "b"', failedLine: 'link set b master x' },
      { step: step('port c'), status: 'blocked', error: 'interface c is missing' },
    ],
  };
  logReport(log, report, 'apply on phys hv1', 12);
  const ev = lines.map((l) => JSON.parse(l));
  assert.deepEqual(ev.map((e) => [e.level, e.event, e.key ?? null]), [
    ['debug', 'step.done', 'link a'],
    ['error', 'step.failed', 'port b'],
    ['warn', 'step.blocked', 'port c'],
    ['error', 'apply.done', null],
  ]);
  assert.equal(ev[1].batchLine, 'link set b master x');
  assert.deepEqual({ ...ev[3], time: 0 }, {
    time: 0, level: 'error', event: 'apply.done', msg: 'apply on phys hv1: 1 of 3 change(s) applied',
    ok: false, steps: 3, done: 1, failed: 1, blocked: 1, waiting: 0, operations: 4, processes: 2, ms: 12,
  });
});

// ---- the CLI --------------------------------------------------------------------------------

const BIN = new URL('../../bin/lsdn', import.meta.url).pathname;
const root = process.getuid?.() === 0;

function lsdn(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('lsdn apply --log-format json: an invalid model gives only JSON lines on stderr, each problem located, exit 2, no stack', { skip: !root && 'apply needs root' }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lsdn-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'bad.yaml');
  writeFileSync(f, 'settings: { default: { type: vxlan/static } }\nphyses:\n  a: { if: eth0, ip: 192.0.2.1 }\nnets:\n  blue:\n    vid: 99999999\n');
  const r = lsdn(['apply', f, '--phys', 'a', '--log-format', 'json']);
  assert.equal(r.code, 2, r.stderr);
  const ev = r.stderr.trim().split('\n').map((l) => JSON.parse(l));
  const problem = ev.find((e) => e.event === 'model.problem');
  assert.ok(problem, r.stderr);
  assert.equal(problem.level, 'error');
  assert.match(problem.msg, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:6:\\d+: error: net blue: .*99999999`));
  const last = ev.at(-1);
  assert.equal(last.event, 'apply.failed');
  assert.equal(last.error, 'ModelInvalidError');
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('LSDN_LOG_LEVEL and LSDN_LOG_FORMAT set the defaults; a bad value is a usage error (exit 1)', { skip: !root && 'apply needs root' }, () => {
  const r = lsdn(['apply', '/nonexistent/model.yaml'], { LSDN_LOG_FORMAT: 'json', LSDN_LOG_LEVEL: 'error' });
  assert.equal(r.code, 1);
  const ev = JSON.parse(r.stderr.trim());
  assert.equal(ev.event, 'apply.failed');
  assert.match(ev.msg, /ENOENT|no such file/i);
  const bad = lsdn(['apply', '/nonexistent/model.yaml'], { LSDN_LOG_LEVEL: 'loud' });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /LSDN_LOG_LEVEL: unknown log level "loud"/);
  const opt = lsdn(['apply', '/nonexistent/model.yaml', '--log-format', 'xml']);
  assert.equal(opt.code, 1);
  assert.match(opt.stderr, /--log-format <format>' argument 'xml' is invalid/);
});
