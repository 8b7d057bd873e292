/**
 * A kernel object kind (link, port, fdb, ..., dhcp, sysctl, tap) is one file in this folder; it
 * owns its encoding to batch lines, its decoding from what the kernel prints, and its diff
 * rules (immutable fields, tolerances). The planner (src/plan) orders the phases and hands
 * every object to its kind through this interface; `index.ts` lists the kinds.
 *
 * Objects hang on interfaces (an FDB entry on its device, a port on its bridge): when an
 * interface goes (deleted, or recreated for new immutable attributes) what hangs on it goes
 * with it, and what hangs on an interface lsdn cannot use is blocked.
 */
import { isDeepStrictEqual } from 'node:util';
import type { HostState, KernelObject } from '../core/objects.js';
import type { Command, Phase, Step, StepAction } from '../core/plan.js';

export interface PlanFacts {
  /** Every link on the host, owned or not (to tell a missing VM interface from a present one). */
  links?: ReadonlySet<string>;
  /**
   * Destroy: everything goes, also a tap a running VM holds (an apply never deletes one: the
   * step is blocked until the VM has stopped).
   */
  destroy?: boolean;
}

/** What a kind sees of the plan being made, and how it adds steps to it. */
export interface PlanContext {
  readonly desired: HostState;
  readonly actual: HostState;
  readonly facts: PlanFacts;
  /** Interfaces this plan deletes or recreates: what hangs on them goes with them. */
  readonly gone: ReadonlySet<string>;
  /** Desired links lsdn cannot use, by name -> the link that makes them unusable (see unusableLinks). */
  readonly unusable: ReadonlyMap<string, string>;
  /**
   * Add a step (none when there are no commands and nothing blocks it). A step that is not a
   * deletion is blocked when its kind says why (`blocked`); one blocked step per object.
   */
  add(phase: Phase, action: StepAction, o: KernelObject, commands: Command[], extra?: Partial<Step>): void;
  /** "WHAT NAME cannot be used: ROOT exists but is not lsdn's" when `name` hangs on an unusable link. */
  dep(name: string | undefined, what: string): string | undefined;
  /** Does this plan make the interface (an owned link, or a tap)? */
  willCreate(dev: string): boolean;
}

export interface ObjectKind<O extends KernelObject = KernelObject> {
  kind: O['kind'];
  /** The interfaces the object hangs on: it goes when one of them goes. */
  hangsOn(o: O): readonly (string | undefined)[];
  /** Why a desired object cannot be made now (it hangs on an interface lsdn cannot use, its name is taken...). */
  blocked(o: O, p: PlanContext): string | undefined;
  /** The interface this actual object is, when the plan deletes or recreates it (`want`: the desired object of its key). */
  goes?(have: O, want: KernelObject | undefined, facts: PlanFacts): string | undefined;
  /** An interface the plan deletes and nothing recreates: missing for whatever the plan makes on it. */
  absentAfter?(have: O, p: Pick<PlanContext, 'gone' | 'desired'>): string | undefined;
  /** The steps that remove an actual object no longer wanted. */
  remove(have: O, p: PlanContext): void;
  /**
   * The steps that make `want` real: `have` is the actual object unless it goes with what it
   * hangs on; `found` the actual object of its key regardless.
   */
  converge(want: O, have: O | undefined, found: KernelObject | undefined, p: PlanContext): void;
}

/** "field old -> new" for the fields `to` names that differ. */
export function diffFields(from: object, to: object, keys: string[]): string[] {
  const out: string[] = [];
  const f = from as Record<string, unknown>;
  const t = to as Record<string, unknown>;
  for (const k of keys) {
    const a = f[k];
    const b = t[k];
    if (b !== undefined && !isDeepStrictEqual(a, b)) out.push(`${k} ${fmt(a)} -> ${fmt(b)}`);
  }
  return out;
}

export function fmt(v: unknown): string {
  if (v === undefined) return '(none)';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
