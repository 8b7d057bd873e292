/** Human output of plans and apply reports (the CLI, lsctl and the lab print them). */
import type { Problem } from '../core/problem.js';
import type { Plan, Step } from '../plan/plan.js';
import type { ExecuteReport } from './execute.js';
import type { Logger } from '../core/log.js';

const SYMBOL: Record<Step['action'], string> = { create: '+', delete: '-', update: '~', recreate: '±' };

export function formatStep(s: Step, withCommands = true): string {
  const lines = [`${SYMBOL[s.action]} ${s.action} ${s.key}${s.changes?.length ? `: ${s.changes.join(', ')}` : ''}`];
  if (s.blocked) lines.push(`    ${s.waits ? 'WAITING' : 'BLOCKED'}: ${s.blocked}${s.waits ? ' (until the VM runs; its hook wires it)' : ''}`);
  if (withCommands) for (const c of s.commands) lines.push(`    ${c.tool} ${c.line}`);
  return lines.join('\n');
}

export function formatPlan(plan: Plan, header: string): string {
  if (plan.steps.length === 0) return `${header}: no changes`;
  const counts = new Map<string, number>();
  for (const s of plan.steps) counts.set(s.action, (counts.get(s.action) ?? 0) + 1);
  const summary = [...counts].map(([a, n]) => `${n} to ${a}`).join(', ');
  return [`${header}: ${plan.steps.length} change(s) (${summary})`, ...plan.steps.map((s) => formatStep(s))].join('\n');
}

export function planJson(plan: Plan): unknown {
  return plan.steps.map((s) => ({ action: s.action, key: s.key, changes: s.changes ?? [], blocked: s.blocked ?? null, commands: s.commands }));
}

export function formatReport(report: ExecuteReport, header: string): string {
  const done = report.results.filter((r) => r.status === 'done').length;
  const waiting = report.results.filter((r) => r.status === 'waiting').length;
  const lines = [
    `${header}: ${done} of ${report.results.length} change(s) applied (${report.operations} kernel operations in ${report.processes} process(es))` +
      (waiting ? `, ${waiting} waiting for VMs that are not running` : ''),
  ];
  for (const r of report.results) {
    if (r.status === 'done') continue;
    lines.push(`  ${r.status.toUpperCase()}: ${r.step.action} ${r.step.key}: ${r.error ?? ''}${r.failedLine ? ` [${r.failedLine}]` : ''}`);
  }
  if (!report.ok) lines.push('  Fix the cause and apply again: lsdn converges from any state.');
  return lines.join('\n');
}

export function reportJson(report: ExecuteReport): unknown {
  return {
    ok: report.ok,
    operations: report.operations,
    processes: report.processes,
    steps: report.results.map((r) => ({ status: r.status, action: r.step.action, key: r.step.key, error: r.error ?? null, failedLine: r.failedLine ?? null })),
  };
}

/**
 * Problems as the CLI's JSON prints them: without `path` (the library's; the CLI's JSON output
 * is kept as it was).
 */
export function problemsJson(problems: Problem[]): unknown[] {
  return problems.map(({ path: _path, ...p }) => p);
}

/**
 * An apply's report as log events: one line per step that did not succeed (`step.failed`
 * error, `step.blocked` warn, `step.waiting` info), one per step done (`step.done`, debug), then `apply.done`
 * (info when everything was applied, error otherwise) with the counts and the duration.
 */
export function logReport(log: Logger, report: ExecuteReport, what: string, ms: number): void {
  let done = 0;
  let failed = 0;
  let blocked = 0;
  let waiting = 0;
  for (const r of report.results) {
    const step = { action: r.step.action, key: r.step.key };
    if (r.status === 'done') {
      done++;
      log.debug('step.done', `${r.step.action} ${r.step.key}`, step);
    } else if (r.status === 'waiting') {
      waiting++;
      log.info('step.waiting', `${r.step.action} ${r.step.key}: ${r.error ?? 'waiting'}`, { ...step, interface: r.step.waits, reason: r.error });
    } else if (r.status === 'failed') {
      failed++;
      log.error('step.failed', `${r.step.action} ${r.step.key}: ${r.error ?? 'failed'}`, { ...step, reason: r.error, batchLine: r.failedLine });
    } else {
      blocked++;
      log.warn('step.blocked', `${r.step.action} ${r.step.key}: ${r.error ?? 'blocked'}`, { ...step, reason: r.error });
    }
  }
  log.log(report.ok ? 'info' : 'error', 'apply.done', `${what}: ${done} of ${report.results.length} change(s) applied`, {
    ok: report.ok,
    steps: report.results.length,
    done,
    failed,
    blocked,
    waiting,
    operations: report.operations,
    processes: report.processes,
    ms,
  });
}
