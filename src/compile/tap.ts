/**
 * The tap a virt wants (virt option `tap`): the desired object (the tap kind, src/kinds/tap.ts,
 * encodes, decodes and diffs it). A tap's name is the user's (virt.if), so ownership is its
 * alias alone: `lsdn:<context>:tap:<net>/<virt>` (src/core/names.ts).
 */
import type { Virt } from '../model/netmodel.js';
import type { TapObject } from '../core/objects.js';
import { numericTapOwners, type OwnerIds } from '../kinds/tap.js';
import { tapAlias } from '../core/names.js';

/**
 * The tap a virt wants on its phys, or undefined when its interface is adopted. With the
 * host's users and groups (`owners`, a host fact) its owner and group are numeric ids, as the
 * reader's are after `normalizeTapOwners`: `user: 0` and `user: root` are the same owner.
 */
export function tapObject(context: string, virt: Virt, owners?: OwnerIds): TapObject | undefined {
  if (!virt.tap || !virt.if) return undefined;
  const t = virt.tap;
  const o: TapObject = { kind: 'tap', name: virt.if, alias: tapAlias(context, virt), multiQueue: (t.queues ?? 1) > 1, vnetHdr: t.vnetHdr ?? true };
  if (t.user !== undefined) o.user = String(t.user);
  if (t.group !== undefined) o.group = String(t.group);
  return numericTapOwners(o, owners);
}
