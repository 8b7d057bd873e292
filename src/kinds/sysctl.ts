/**
 * Kernel settings lsdn needs (IP forwarding for public nets): set with `sysctl -w` (a service
 * step) when they differ, read back with one `sysctl -n` for all keys. Removing the object
 * leaves the setting as it is: other things may rely on it.
 */
import type { SysctlObject } from '../core/objects.js';
import { Phase, serviceCommand, type Command } from '../core/plan.js';
import type { ObjectKind } from './kind.js';

/** A sysctl is set when it differs; deleting the object leaves it (other things may rely on it). */
export function planSysctl(want: SysctlObject, have: SysctlObject | undefined):
  { action: 'create' | 'update'; commands: Command[]; changes: string[] } | undefined {
  if (have?.value === want.value) return undefined;
  return {
    action: have ? 'update' : 'create',
    commands: [serviceCommand({ op: 'sysctl', key: want.key, value: want.value })],
    changes: have ? [`${want.key} ${have.value} -> ${want.value}`] : [],
  };
}

/** The values `sysctl -n KEY...` printed, one line per key. */
export function sysctlsFromKernel(keys: readonly string[], stdout: string): SysctlObject[] {
  const values = stdout.split('\n').map((l) => l.trim());
  return keys.map((key, i) => ({ kind: 'sysctl', key, value: values[i] ?? '' }) as SysctlObject);
}

export const SYSCTL: ObjectKind<SysctlObject> = {
  kind: 'sysctl',
  hangsOn: () => [],
  blocked: () => undefined,
  remove() {
    // left as it is: other things may rely on it
  },
  converge(want, _have, found, p) {
    const s = planSysctl(want, found?.kind === 'sysctl' ? found : undefined);
    if (s) p.add(Phase.Services, s.action, want, s.commands, { changes: s.changes });
  },
};
