/**
 * Taps lsdn creates for VMs (virt option `tap`): an interface to create, queues, owners.
 */
import { q, virtLabel, type Checker } from './checker.js';

/** Taps lsdn creates for VMs (virt option `tap`, src/kinds/tap.ts). */
export function checkTaps(c: Checker): void {
  for (const v of c.model.virts()) {
    const t = v.tap;
    if (!t) continue;
    const label = virtLabel(v);
    if (v.connected && v.if === undefined) {
      c.error('virt-tap-no-if', label, 'it asks for a tap ("tap") but names no interface ("if") for it', v, 'tap');
    }
    if (t.queues !== undefined && (!Number.isInteger(t.queues) || t.queues < 1 || t.queues > 256)) {
      c.error('virt-tap-queues-invalid', label, `tap queues ${q(t.queues)} is not a whole number from 1 to 256`, v, 'tap');
    }
    for (const [what, value] of [['user', t.user], ['group', t.group]] as const) {
      if (value !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(value)) {
        c.error('virt-tap-owner-invalid', label, `tap ${what} ${q(value)} is not a user/group name or number`, v, 'tap');
      }
    }
  }
}