/**
 * The scope validated for, and the model's context name (part of every kernel alias).
 */
import { q, type Checker } from './checker.js';
import { contextNameProblem } from '../core/charset.js';
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
  const prob = contextNameProblem(m.name);
  if (prob) {
    c.error('context-name-invalid', `context ${String(m.name)}`,
      `context name ${q(m.name)} ${prob} (it is part of every kernel alias, table and namespace name lsdn writes)`,
      m, 'name');
  }
}