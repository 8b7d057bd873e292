/** Bridge-port flags, shared by owned links enslaved to a bridge and by ports: encoding, decoding, the step that sets them. */
import type { BridgePortFlags, LinkObject, PortObject } from '../core/objects.js';
import { Phase, type Command } from '../core/plan.js';
import type { IpLink } from './iproute.js';
import type { PlanContext } from './kind.js';
import { iprouteArg as a } from './escape.js';

/** The bridge-port flags lsdn manages, in the order `bridge link set` takes them. */
export const BRPORT_FLAGS = ['learning', 'flood', 'mcast_flood', 'bcast_flood', 'neigh_suppress', 'isolated'] as const;

export function renderFlags(flags: BridgePortFlags): string {
  return Object.entries(flags)
    .map(([k, v]) => `${k} ${v ? 'on' : 'off'}`)
    .join(' ');
}

export function setBridgePortFlags(dev: string, flags: BridgePortFlags): Command[] {
  const f = renderFlags(flags);
  return f ? [{ tool: 'bridge', line: `link set dev ${a(dev)} ${f}` }] : [];
}

/** The flags of a bridge port as `ip -d -j link` shows it (undefined: not a port of a bridge). */
export function brportFlags(l: IpLink): BridgePortFlags | undefined {
  const li = l.linkinfo;
  if (!l.master || li?.info_slave_kind !== 'bridge' || !li.info_slave_data) return undefined;
  const d = li.info_slave_data;
  const out: BridgePortFlags = {};
  for (const f of BRPORT_FLAGS) out[f] = d[f] === true;
  return out;
}

/** Flags in `want` that `have` lacks or has otherwise. */
function flagChanges(have: BridgePortFlags | undefined, want: BridgePortFlags | undefined): BridgePortFlags {
  const out: BridgePortFlags = {};
  for (const [k, v] of Object.entries(want ?? {}) as [keyof BridgePortFlags, boolean][]) {
    if (have?.[k] !== v) out[k] = v;
  }
  return out;
}

/** The step that sets the bridge-port flags of a link or port that `have` lacks (all of them for a new one). */
export function planPortFlags(p: PlanContext, want: LinkObject | PortObject, have: BridgePortFlags | undefined, action: 'create' | 'update'): void {
  const flags = flagChanges(have, want.brport);
  if (Object.keys(flags).length === 0) return;
  const changes = action === 'update' ? { changes: Object.entries(flags).map(([k, v]) => `${k} -> ${v ? 'on' : 'off'}`) } : {};
  p.add(Phase.PortFlags, action, want, setBridgePortFlags(want.name, flags), changes);
}
