/**
 * The scope validated for, and the model's context name (part of every kernel alias).
 */
import { CONTEXT_NAME_RE, q, type Checker } from './checker.js';
import { quoteList as listNames } from '../core/problem.js';

export function checkScope(c: Checker): void {
  for (const name of c.scope ?? []) {
    if (!c.model.physes.has(name)) {
      c.error('scope-phys-unknown', `phys ${name}`,
        `phys ${q(name)} to validate for is not in the model (physes: ${listNames(c.model.physes.keys())})`);
    }
  }
}
export function checkContext(c: Checker): void {
  const m = c.model;
  if (typeof m.name !== 'string' || !CONTEXT_NAME_RE.test(m.name)) {
    c.error('context-name-invalid', `context ${String(m.name)}`,
      `context name ${q(m.name)} must be 1 to 32 letters, digits, "_", "." or "-" (it is part of every kernel alias lsdn writes)`,
      m, 'name');
  }
}