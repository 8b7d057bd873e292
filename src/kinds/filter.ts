/**
 * The tc filter on a VM port's ingress that redirects everything the VM sends to an IFB (u32
 * match-all + mirred; preference 349 = 0x15d, lsdn's mark). Encoded as `tc filter replace|del`;
 * decoded from `tc -j filter show dev X ingress`: an ingress qdisc is lsdn's only when it holds
 * this filter.
 */
import type { FilterObject, QdiscObject } from '../core/objects.js';
import { Phase, type Command } from '../core/plan.js';
import type { TcFilter } from './iproute.js';
import type { ObjectKind } from './kind.js';
import { tcBlocked } from './qdisc.js';
import { iprouteArg as a } from './escape.js';

/** Preference of lsdn's ingress redirect filter (0x15d). */
export const FILTER_PREF = 349;
/** The u32 handle of the first (only) filter of lsdn's preference. */
export const FILTER_HANDLE = '800::800';

const tc = (line: string): Command => ({ tool: 'tc', line });

export function replaceFilter(o: FilterObject): Command[] {
  return [tc(
    `filter replace dev ${a(o.dev)} parent ffff: protocol all pref ${o.pref} handle ${FILTER_HANDLE} u32 match u32 0 0 action mirred egress redirect dev ${a(o.redirect)}`,
  )];
}

export function deleteFilter(o: FilterObject): Command[] {
  return [tc(`filter del dev ${a(o.dev)} parent ffff: pref ${o.pref}`)];
}

/** lsdn's ingress qdisc and redirect filter on `dev`, when its ingress filters hold lsdn's redirect. */
export function redirectFromKernel(dev: string, filters: TcFilter[]): [QdiscObject, FilterObject] | undefined {
  const f = filters.find((x) => x.pref === FILTER_PREF && x.kind === 'u32' && x.options?.actions?.length);
  const a = f?.options?.actions?.[0];
  if (!a || a.kind !== 'mirred' || a.mirred_action !== 'redirect' || a.direction !== 'egress' || !a.to_dev) return undefined;
  return [{ kind: 'qdisc', dev, parent: 'ingress', type: 'ingress' }, { kind: 'filter', dev, parent: 'ingress', pref: FILTER_PREF, redirect: a.to_dev }];
}

export const FILTER: ObjectKind<FilterObject> = {
  kind: 'filter',
  hangsOn: (o) => [o.dev, o.redirect],
  blocked: tcBlocked,
  remove(have, p) {
    // Deleting the ingress qdisc takes its filters with it.
    if (!p.gone.has(have.dev) && p.desired.get(`qdisc ${have.dev} ingress`)) p.add(Phase.DeleteFilters, 'delete', have, deleteFilter(have));
  },
  converge(want, have, _found, p) {
    if (!have) p.add(Phase.Filters, 'create', want, replaceFilter(want));
    else if (have.redirect !== want.redirect) {
      p.add(Phase.Filters, 'update', want, replaceFilter(want), { changes: [`redirect ${have.redirect} -> ${want.redirect}`] });
    }
  },
};
