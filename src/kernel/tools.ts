/** Programs the address servers need, checked before an apply that would start one. */
import { accessSync, constants } from 'node:fs';
import { isServiceCommand, type Plan } from '../core/plan.js';

/** Is `cmd` an executable on PATH (or /usr/sbin, /sbin)? No process. */
export function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    try {
      accessSync(`${dir}/${cmd}`, constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

/** What is missing for the plan's service steps (undefined: nothing). */
export function missingServiceTools(plan: Plan): string | undefined {
  const starts = plan.steps.some((s) => !s.blocked && s.commands.some((c) => isServiceCommand(c) && c.service.op === 'start'));
  if (starts && !onPath('dnsmasq')) {
    return 'dnsmasq is not installed (Debian: dnsmasq-base; run scripts/setup.sh), and the model serves addresses (DHCP/SLAAC) on this host';
  }
  return undefined;
}
