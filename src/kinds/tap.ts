/**
 * Taps lsdn creates for VMs (virt option `tap`): `ip tuntap add dev NAME mode tap ...` (accepted
 * in `ip -batch`) and the ownership alias at once; decoded from `ip -d -j link` (tun info:
 * owner, multi-queue, vnet header; carrier: a VM has it open). The name is the user's, so the
 * alias alone marks it (src/core/names.ts).
 *
 * Diff rules: user, group and multi-queue need a new tap (recreated, but never while a VM holds
 * it: that would cut the VM off for good, qemu keeps the old file descriptor); `vnetHdr` only
 * applies at creation. Owners compare as numeric ids: a model may name them by name or number,
 * while `ip -d link` prints the name when the id has one, so both sides are brought to ids with
 * the host's users and groups (`OwnerIds`, a host fact read by the shell: src/kernel/owners.ts).
 * A name or number those do not resolve (a user known only to NSS, e.g. LDAP) is compared as written.
 */
import { HostState, type KernelObject, type TapObject } from '../core/objects.js';
import { Phase, type Command } from '../core/plan.js';
import type { IpLink } from './iproute.js';
import type { ObjectKind, PlanFacts } from './kind.js';
import { setAlias, updateLinkOrPort } from './link.js';
import { iprouteArg as a } from './escape.js';

// ---- encoding ---------------------------------------------------------------------------------

export function createTap(o: TapObject): Command[] {
  const parts = [`tuntap add dev ${a(o.name)} mode tap`];
  if (o.user !== undefined) parts.push(`user ${a(String(o.user))}`);
  if (o.group !== undefined) parts.push(`group ${a(String(o.group))}`);
  if (o.multiQueue) parts.push('multi_queue');
  if (o.vnetHdr) parts.push('vnet_hdr');
  return [{ tool: 'ip', line: parts.join(' ') }, setAlias(o.name, o.alias)];
}

export function deleteTap(o: TapObject): Command[] {
  return [{ tool: 'ip', line: `link del dev ${a(o.name)}` }];
}

// ---- decoding ---------------------------------------------------------------------------------

/** An lsdn tap as `ip -d -j link` shows it. */
export function tapFromKernel(l: IpLink): TapObject {
  const d = l.linkinfo?.info_data ?? {};
  const o: TapObject = {
    kind: 'tap', name: l.ifname, alias: l.ifalias as string, multiQueue: d.multi_queue === true, vnetHdr: d.vnet_hdr === true,
    attached: (l.flags ?? []).includes('LOWER_UP'),
  };
  if (d.user !== undefined && d.user !== null) o.user = String(d.user as string | number);
  if (d.group !== undefined && d.group !== null) o.group = String(d.group as string | number);
  return o;
}

// ---- owners as numeric ids ----------------------------------------------------------------------

export interface OwnerIds {
  /** User name -> uid (/etc/passwd). */
  users: ReadonlyMap<string, number>;
  /** Group name -> gid (/etc/group). */
  groups: ReadonlyMap<string, number>;
}

/** Names and ids of a passwd(5) or group(5) file: `name:x:ID:...`; the first entry of a name wins (as getpwnam). */
export function parseIdFile(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const f = line.split(':');
    const name = f[0];
    const id = f[2];
    if (!name || id === undefined || !/^\d+$/.test(id) || out.has(name)) continue;
    out.set(name, Number(id));
  }
  return out;
}

/** An owner (name or number) as a numeric id when it resolves; as written otherwise. */
export function ownerId(value: string | number, names: ReadonlyMap<string, number> | undefined): string {
  const s = String(value).trim();
  if (/^\d+$/.test(s)) return String(Number(s));
  const id = names?.get(s);
  return id !== undefined ? String(id) : s;
}

/** A tap with its owner and group as numeric ids. */
export function numericTapOwners(t: TapObject, owners: OwnerIds | undefined): TapObject {
  if (!owners) return t;
  const o: TapObject = { ...t };
  if (t.user !== undefined) o.user = ownerId(t.user, owners.users);
  if (t.group !== undefined) o.group = ownerId(t.group, owners.groups);
  return o;
}

/** The same state with every tap's owner and group as numeric ids (a new state; the input is not changed). */
export function normalizeTapOwners(state: HostState, owners: OwnerIds | undefined): HostState {
  if (!owners || ![...state.objects.values()].some((o) => o.kind === 'tap')) return state;
  const out = new HostState([...state.objects.values()].map((o): KernelObject => (o.kind === 'tap' ? numericTapOwners(o, owners) : o)));
  out.warnings.push(...state.warnings);
  return out;
}

// ---- diffing ----------------------------------------------------------------------------------

/** Attributes that only a new tap can change (user, group, multi-queue), as "what old -> new". */
export function tapChanges(have: TapObject, want: TapObject): string[] {
  const out: string[] = [];
  const f = (v: unknown) => (v === undefined ? '(none)' : String(v));
  if ((have.user ?? undefined) !== want.user && want.user !== undefined) out.push(`user ${f(have.user)} -> ${f(want.user)}`);
  if ((have.group ?? undefined) !== want.group && want.group !== undefined) out.push(`group ${f(have.group)} -> ${f(want.group)}`);
  if (have.multiQueue !== want.multiQueue) out.push(`multi_queue ${have.multiQueue} -> ${want.multiQueue}`);
  return out;
}

/** A tap that is no longer wanted but a running VM holds: deleting it would cut the VM off (destroy does). */
const held = (have: TapObject, facts: PlanFacts) => have.attached === true && !facts.destroy;

export const TAP: ObjectKind<TapObject> = {
  kind: 'tap',
  hangsOn: () => [],
  blocked: (o, p) =>
    !p.actual.get(`tap ${o.name}`) && p.facts.links?.has(o.name)
      ? `interface ${o.name} exists but is not a tap of lsdn's (alias "${o.alias}" missing); remove \`tap\` from the virt to adopt it, or delete it`
      : undefined,
  // Taps that disappear, or are recreated (not while a VM has them open: that step is blocked).
  goes(have, want, facts) {
    if (!want) return held(have, facts) ? undefined : have.name;
    return want.kind === 'tap' && !have.attached && tapChanges(have, want).length ? have.name : undefined;
  },
  // The interface of a tap this plan deletes (no longer made by lsdn) is missing for what the plan makes on it.
  absentAfter: (have, p) => (p.gone.has(have.name) && !p.desired.get(`tap ${have.name}`) ? have.name : undefined),
  remove(have, p) {
    p.add(Phase.DeleteLinks, 'delete', have, deleteTap(have), held(have, p.facts)
      ? { blocked: `tap ${have.name} is no longer lsdn's to make but a running VM holds it; it is deleted once the VM has stopped (next apply or the qemu-ifdown/libvirt hook)` }
      : {});
  },
  converge(want, _have, found, p) {
    const old = found as TapObject | undefined;
    if (!old) {
      p.add(Phase.CreateLinks, 'create', want, createTap(want));
      return;
    }
    const changes = tapChanges(old, want);
    if (changes.length && old.attached) {
      // Recreating it would cut the running VM off its network for good (qemu keeps the old fd).
      p.add(Phase.CreateLinks, 'recreate', want, [], {
        changes,
        blocked: `tap ${want.name} is in use by a running VM; it is recreated with the new attributes once the VM has stopped (next apply or the qemu-ifdown/libvirt hook)`,
      });
    } else if (changes.length) {
      p.add(Phase.CreateLinks, 'recreate', want, [...deleteTap(old), ...createTap(want)], { changes });
    } else if (old.alias !== want.alias) {
      p.add(Phase.UpdateLinks, 'update', want, updateLinkOrPort(want.name, { up: true, alias: old.alias }, { up: true, alias: want.alias }), { changes: [`alias ${old.alias} -> ${want.alias}`] });
    }
  },
};
