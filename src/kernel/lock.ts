/**
 * One apply at a time per host (or per network namespace): an exclusive lock file holding the
 * owner's pid. A lock left by a dead process is taken over.
 */
import { mkdirSync, writeFileSync, linkSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { LockBusyError } from '../core/errors.js';

export const LOCK_DIR = process.env.LSDN_LOCK_DIR ?? '/run/lsdn';

/** Does process `pid` exist (EPERM: it does, owned by someone else)? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Take the lock for `scope` (e.g. "host" or "netns-NAME"); returns the release function. */
export function acquireLock(scope: string): () => void {
  mkdirSync(LOCK_DIR, { recursive: true });
  const path = join(LOCK_DIR, `${scope.replace(/[^A-Za-z0-9_.-]/g, '_')}.lock`);
  // The pid is written to a private file first and linked into place, so the lock file is
  // never seen empty (which a concurrent taker would read as stale).
  const mine = `${path}.${process.pid}.${Date.now()}`;
  writeFileSync(mine, String(process.pid));
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(mine, path);
        return () => {
          try {
            unlinkSync(path);
          } catch {
            /* already gone */
          }
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        let pid = NaN;
        try {
          pid = Number(readFileSync(path, 'utf8'));
        } catch {
          continue; // released meanwhile
        }
        if (Number.isFinite(pid) && pid > 0 && alive(pid)) throw new LockBusyError(path, pid);
        try {
          unlinkSync(path); // stale: its owner died
        } catch {
          /* someone else took it over */
        }
      }
    }
  } finally {
    unlinkSync(mine);
  }
  throw new Error(`could not take the lock in ${LOCK_DIR}`);
}
