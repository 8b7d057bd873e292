/**
 * The executor: sends a plan to the kernel in as few processes as possible (consecutive
 * commands of one tool form one `-batch`), and reports, step by step, what was done, what
 * failed (with the kernel's words) and what was blocked.
 */
import type { Kernel } from '../kernel/exec.js';
import type { Tool } from '../core/plan.js';
import { KernelError } from '../core/errors.js';
import type { Plan, Step } from '../plan/plan.js';
import { runServiceCommands } from '../kernel/services.js';

/** `waiting`: blocked only by a VM interface that does not exist yet (the VM is not running): not a failure. */
export type StepStatus = 'done' | 'failed' | 'blocked' | 'waiting';

export interface StepResult {
  step: Step;
  status: StepStatus;
  /** Kernel message (failed) or reason (blocked, waiting). */
  error?: string;
  /** The batch line that failed. */
  failedLine?: string;
}

export interface ExecuteReport {
  results: StepResult[];
  /** Nothing failed and nothing is blocked (steps waiting for a VM's interface are fine). */
  ok: boolean;
  /** Kernel operations sent (batch lines). */
  operations: number;
  /** Processes spawned for them. */
  processes: number;
}

export async function executePlan(kernel: Kernel, plan: Plan): Promise<ExecuteReport> {
  const results: StepResult[] = plan.steps.map((step) =>
    step.blocked ? { step, status: step.waits ? 'waiting' : 'blocked', error: step.blocked } : { step, status: 'done' },
  );
  const before = { ...kernel.stats };

  // Flatten into (step, command) and cut into runs of one tool.
  const flat = plan.steps.flatMap((step, i) => (step.blocked ? [] : step.commands.map((c) => ({ i, c }))));
  let start = 0;
  while (start < flat.length) {
    const tool = flat[start]!.c.tool as Tool;
    let end = start;
    while (end < flat.length && flat[end]!.c.tool === tool) end++;
    // A step that failed in an earlier run (another tool) stops there: its later commands would
    // act on what the failed one did not make (e.g. a server's veth into a namespace not lsdn's).
    const run = flat.slice(start, end).filter((x) => results[x.i]!.status === 'done');
    const lines = run.map((x) => x.c.line);
    if (!run.length) {
      start = end;
      continue;
    }
    const fail = (idx: number, message: string, line?: string) => {
      const res = results[idx]!;
      if (res.status === 'done') Object.assign(res, { status: 'failed', error: message, failedLine: line });
    };
    if ((tool as string) === 'svc') {
      for (const f of await runServiceCommands(kernel, run.map((x) => x.c))) fail(run[f.index]!.i, f.message, run[f.index]!.c.line);
    } else if (tool === 'nft') {
      try {
        await kernel.batch('nft', lines);
      } catch (e) {
        for (const x of run) fail(x.i, e instanceof KernelError ? e.message : String(e));
      }
    } else {
      try {
        for (const f of await kernel.batchForce(tool, lines)) fail(run[f.line - 1]!.i, f.message, f.text);
      } catch (e) {
        for (const x of run) fail(x.i, e instanceof Error ? e.message : String(e));
      }
    }
    start = end;
  }
  return {
    results,
    ok: results.every((r) => r.status === 'done' || r.status === 'waiting'),
    operations: kernel.stats.operations - before.operations,
    processes: kernel.stats.processes - before.processes,
  };
}
