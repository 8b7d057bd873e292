/**
 * lsdn's errors, one module: every error lsdn means to throw is an `LsdnError`, so a caller can
 * tell lsdn's own (a clear message, no stack trace needed) from a bug. The kernel boundary has
 * one kind, `KernelError`: what ran, which batch line failed, what the tool answered.
 */
import type { Problem } from './problem.js';

export class LsdnError extends Error {}

/** A kernel tool (or a service step run for one) failed: the command, the failed batch line and stderr. */
export class KernelError extends LsdnError {
  constructor(
    message: string,
    /** argv of the process that failed. */
    readonly command: string[],
    readonly stderr: string,
    readonly exitCode: number | null,
    /** 1-based line of the batch that failed, when the tool said. */
    readonly line?: number,
    /** Text of that line. */
    readonly batchLine?: string,
  ) {
    super(message);
    this.name = 'KernelError';
  }
}

/** The command was used wrongly, or the host cannot do what it asks (exit 1, message only). */
export class UsageError extends LsdnError {}

/** The model has errors: nothing was applied. */
export class ModelInvalidError extends LsdnError {
  constructor(readonly problems: Problem[], consequence = 'nothing was applied') {
    super(`the model is invalid (${problems.filter((p) => p.severity === 'error').length} problem(s)); ${consequence}`);
  }
}

/** Another lsdn holds this host's (namespace's) lock. */
export class LockBusyError extends LsdnError {
  constructor(readonly path: string, readonly pid: number) {
    super(`another lsdn (pid ${pid}) is changing this host (lock ${path}); try again when it has finished`);
  }
}

/** A VM generator or hook cannot find or use the virt it was given. */
export class VmError extends LsdnError {}

/** The lab cannot be built, checked or removed; `problems` are the reasons, one per line. */
export class LabError extends LsdnError {
  constructor(message: string, readonly problems: string[] = []) {
    super(problems.length ? `${message}:\n  ${problems.join('\n  ')}` : message);
    this.name = 'LabError';
  }
}

/** An lsctl command failed (the script gets it as a Tcl error). */
export class LsctlError extends LsdnError {}

/** lsctl needs a Tcl interpreter and found none. */
export class TclshMissingError extends LsdnError {
  constructor(detail = '') {
    super(
      `lsctl scripts run in Tcl, but no tclsh was found${detail}: install the "tcl" package ` +
        '(apt-get install tcl, dnf install tcl; scripts/setup.sh installs it), or name the interpreter in LSDN_TCLSH',
    );
  }
}

/**
 * The store boundary (etcd) failed or refused: what lsdn asked (`op`: "txn on /lsdn/demo/",
 * "range /lsdn/demo/ at 42") and what etcd answered (`answer`: its error text, "permission
 * denied", "unavailable"...). `unavailable` is true when no member could be reached (a watcher
 * then keeps the kernel as it is and retries).
 */
export class StoreError extends LsdnError {
  constructor(
    message: string,
    readonly op: string,
    readonly answer: string,
    readonly unavailable = false,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

/** A write lost to concurrent writers more times than it may retry, or met a change it cannot redo. */
export class StoreConflictError extends StoreError {}
