/**
 * Tap owners as numeric ids. A model may name a tap's user and group by name or by number
 * (`tap: { user: libvirt-qemu }` or `tap: { user: 64055 }`), while `ip -d link` prints the
 * name when the id has one and the number otherwise. Both sides of the comparison are brought
 * to numeric ids with this host's /etc/passwd and /etc/group (read as files: no process), a
 * host fact like the others, so the compiler stays pure. A name or number these files do not
 * resolve (a user known only to NSS, e.g. LDAP) is compared as written.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostState, type KernelObject, type TapObject } from '../core/objects.js';

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

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** This host's users and groups, from `<etc>/passwd` and `<etc>/group` (missing files: none). */
export function readOwnerIds(etc = '/etc'): OwnerIds {
  return { users: parseIdFile(readOr(join(etc, 'passwd'))), groups: parseIdFile(readOr(join(etc, 'group'))) };
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
