/**
 * The planner: diff the desired state of a host with its actual (owned) state into an ordered
 * plan. Pure and deterministic. It knows the order (phases, src/core/plan.ts) and how objects
 * hang on interfaces; what an object's steps are is its kind's (src/kinds):
 *
 *   1. links lsdn cannot use (a name taken by a foreign link, transitively through bridges);
 *   2. interfaces the plan deletes or recreates (`gone`): what hangs on them goes with them;
 *   3. deletions of what is no longer wanted, then creations and updates of what is;
 *   4. the steps sorted by phase, then by key within a phase.
 */
import { HostState, objectKey, type KernelObject } from '../core/objects.js';
import type { Command, Phase, Plan, Step, StepAction } from '../core/plan.js';
import { kindOf } from '../kinds/index.js';
import type { PlanContext, PlanFacts } from '../kinds/kind.js';
import { unusableLinks } from '../kinds/link.js';

export type { Plan, Step, StepAction } from '../core/plan.js';
export type { PlanFacts } from '../kinds/kind.js';
export { planNftTable } from '../kinds/nft.js';

interface Staged extends Step {
  phase: Phase;
}

export function planChanges(desired: HostState, actual: HostState, facts: PlanFacts = {}): Plan {
  const steps: Staged[] = [];
  const unusable = unusableLinks(desired, actual, facts);

  // Interfaces that disappear or are recreated: whatever hangs on them goes with them.
  const gone = new Set<string>();
  for (const [key, have] of actual.objects) {
    const name = kindOf(have).goes?.(have, desired.get(key), facts);
    if (name !== undefined) gone.add(name);
  }
  // Interfaces deleted for good (a tap no longer lsdn's) are missing for what the plan makes on them.
  const absent = new Set<string>();
  for (const have of actual.objects.values()) {
    const name = kindOf(have).absentAfter?.(have, { gone, desired });
    if (name !== undefined) absent.add(name);
  }
  if (absent.size && facts.links) facts = { ...facts, links: new Set([...facts.links].filter((n) => !absent.has(n))) };

  const blockedKeys = new Set<string>();
  const p: PlanContext = {
    desired,
    actual,
    facts,
    gone,
    unusable,
    dep(name, what) {
      const root = name !== undefined ? unusable.get(name) : undefined;
      if (root === undefined) return undefined;
      return root === name ? `${what} ${name} exists but is not lsdn's` : `${what} ${name} cannot be used: ${root} exists but is not lsdn's`;
    },
    willCreate: (dev) => desired.get(`link ${dev}`) !== undefined || desired.get(`tap ${dev}`) !== undefined,
    add(phase: Phase, action: StepAction, o: KernelObject, commands: Command[], extra: Partial<Step> = {}) {
      if (!commands.length && !extra.blocked) return;
      const key = objectKey(o);
      const why = action === 'delete' ? extra.blocked : (extra.blocked ?? kindOf(o).blocked(o, p));
      if (why === undefined) steps.push({ phase, action, key, commands, ...extra });
      else if (!blockedKeys.has(key)) {
        // One blocked step per object (not one per step it would have had), without commands.
        blockedKeys.add(key);
        const waits = action === 'delete' ? undefined : waitsFor(o);
        steps.push({ phase, action, key, commands: [], ...extra, blocked: why, ...(waits ? { waits } : {}) });
      }
    },
  };
  // A step blocked only by an interface that does not exist (and that nothing here makes)
  // waits for it: a VM that is not running; its hypervisor hook wires it when it starts.
  const waitsFor = (o: KernelObject): string | undefined => {
    const names = kindOf(o).hangsOn(o).filter((n): n is string => n !== undefined);
    if (!facts.links || names.some((n) => p.dep(n, 'interface') !== undefined)) return undefined;
    const links = facts.links;
    return names.find((n) => !links.has(n) && !p.willCreate(n));
  };
  const hangsOnGone = (o: KernelObject) => kindOf(o).hangsOn(o).some((n) => n !== undefined && gone.has(n));

  // Deletions.
  for (const [key, have] of actual.objects) {
    if (!desired.get(key)) kindOf(have).remove(have, p);
  }
  // Creations and updates.
  for (const [key, want] of desired.objects) {
    const found = actual.get(key);
    const have = found && !hangsOnGone(found) ? found : undefined;
    kindOf(want).converge(want, have, found, p);
  }

  // Stable order: by phase, then by key within a phase (deterministic output).
  steps.sort((a, b) => a.phase - b.phase || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { steps: steps.map(({ phase: _phase, ...s }) => s) };
}

export function isEmptyPlan(plan: Plan): boolean {
  return plan.steps.length === 0;
}

/** Count of kernel operations (batch lines) the plan will send. */
export function planOperations(plan: Plan): number {
  return plan.steps.reduce((n, s) => n + (s.blocked ? 0 : s.commands.length), 0);
}
