/**
 * Taps lsdn creates for VMs (virt option `tap`): the desired object, its ownership mark, and
 * its iproute2 lines. Pure. A tap's name is the user's (virt.if), so unlike the links lsdn
 * names itself (`ls<kind>-<hash>` + alias) ownership is the alias alone, on a link of kind
 * `tun` in tap mode: `lsdn:<context>:tap:<net>/<virt>`.
 */
import type { Virt } from '../model/netmodel.js';
import type { TapObject } from '../core/objects.js';
import { setAlias } from '../plan/render.js';
import type { Command } from '../core/command.js';
import { numericTapOwners, type OwnerIds } from './owners.js';
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

/** Attributes that only a new tap can change (user, group, multi-queue), as "what old -> new". */
export function tapChanges(have: TapObject, want: TapObject): string[] {
  const out: string[] = [];
  const f = (v: unknown) => (v === undefined ? '(none)' : String(v));
  if ((have.user ?? undefined) !== want.user && want.user !== undefined) out.push(`user ${f(have.user)} -> ${f(want.user)}`);
  if ((have.group ?? undefined) !== want.group && want.group !== undefined) out.push(`group ${f(have.group)} -> ${f(want.group)}`);
  if (have.multiQueue !== want.multiQueue) out.push(`multi_queue ${have.multiQueue} -> ${want.multiQueue}`);
  return out;
}

/** `ip tuntap add` (accepted in `ip -batch`) and the ownership alias at once, in the same batch. */
export function createTap(o: TapObject): Command[] {
  const parts = [`tuntap add dev ${o.name} mode tap`];
  if (o.user !== undefined) parts.push(`user ${o.user}`);
  if (o.group !== undefined) parts.push(`group ${o.group}`);
  if (o.multiQueue) parts.push('multi_queue');
  if (o.vnetHdr) parts.push('vnet_hdr');
  return [{ tool: 'ip', line: parts.join(' ') }, setAlias(o.name, o.alias)];
}

export function deleteTap(o: TapObject): Command[] {
  return [{ tool: 'ip', line: `link del dev ${o.name}` }];
}
