/**
 * Validation of a netmodel: every problem at once, before anything touches the kernel.
 *
 * `validate()` is pure (no I/O): what it knows about the host being applied comes in
 * `opts.host`. One checker per object kind, each writing to one report (src/validate/report.ts:
 * every problem located at file:line:col and by its path in the file form). Problems come out in
 * model declaration order: the scope, the context, then settings, nets, physes, and virts
 * (each followed by its rules and rates), taps, addresses, and last address serving and the
 * types' late checks. A problem between two objects (a duplicate id, MAC, IP, interface) is
 * reported on the later one and names the earlier one.
 */
import type { Netmodel } from '../model/netmodel.js';
import { hasErrors, type Problem } from '../core/problem.js';
import { assignAddresses, type VirtAddressing } from '../ipam/ipam.js';
import { Checker, type ValidateOptions } from './checker.js';
import { checkContext, checkScope } from './model.js';
import { checkSettings } from './settings.js';
import { checkNets } from './nets.js';
import { checkPhyses } from './physes.js';
import { checkVirts } from './virts.js';
import { checkTaps } from './taps.js';
import { checkAddressing } from './addressing.js';
import { checkServing } from './serving.js';

export { hasErrors };
export {
  IPV6_MIN_MTU, MAX_BUCKET_SECONDS, MAX_NAME_LENGTH, MTU_MAX, MTU_MIN, type ValidateOptions,
} from './checker.js';
export { RULE_MAX_ADDR_MATCHES, RULE_PRIORITY_MAX } from './rules.js';

/** Every check, in the order its problems come out. */
function run(c: Checker): Problem[] {
  checkScope(c);
  checkContext(c);
  for (const s of c.model.settings.values()) checkSettings(c, s);
  checkNets(c);
  checkPhyses(c);
  checkVirts(c);
  checkTaps(c);
  checkAddressing(c);
  // Address servers, and the types' late checks (public: its settings and nets).
  checkServing(c.model, c.typeChecks);
  return c.report.problems;
}

/** Validate a model; every problem at once, in declaration order. */
export function validate(model: Netmodel, opts: ValidateOptions = {}): Problem[] {
  return run(new Checker(model, opts));
}

/**
 * `validate`, and the addresses of every virt it computed on the way (src/ipam's
 * `assignAddresses`, a pure function of the model): apply hands them to `compileHost` as the
 * `addressing` host fact, so that a plan assigns addresses once.
 */
export function validateWithAddressing(model: Netmodel, opts: ValidateOptions = {}): { problems: Problem[]; addressing: Map<string, VirtAddressing> } {
  const c = new Checker(model, opts);
  const problems = run(c);
  return { problems, addressing: c.addressing ?? assignAddresses(model) };
}
