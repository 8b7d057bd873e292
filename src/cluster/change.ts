/**
 * Changes of a stored model (pure): the difference of two key sets, how a write is split into
 * the store's transactions, and the object verbs (`lsdn net|virt|phys add|rm`, `virt move`)
 * as edits of the model's file form. The shell (src/store) reads, edits, validates and commits.
 */
import { UsageError } from '../core/errors.js';
import type { KeySet } from './layout.js';

export interface KeyDiff {
  /** Keys to write, sorted by key. */
  put: [string, string][];
  /** Keys to delete, sorted. */
  del: string[];
}

/** What turns `current` into `desired` (values compared as text). */
export function diffKeys(current: KeySet, desired: KeySet): KeyDiff {
  const put: [string, string][] = [];
  const del: string[] = [];
  for (const [k, v] of desired) if (current.get(k) !== v) put.push([k, v]);
  for (const k of current.keys()) if (!desired.has(k)) del.push(k);
  put.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  del.sort();
  return { put, del };
}

export function diffSize(d: KeyDiff): number {
  return d.put.length + d.del.length;
}

export type Op = { put: string; value: string } | { del: string };

/**
 * A diff as transactions of at most `maxOps` operations, keeping `reserve` operations of the
 * last one free for the protocol's own keys (generation, pending). Deletions of virts come
 * before the rest, so no chunk boundary matters to a host (hosts only ever read committed
 * revisions: protocol in src/store/model.ts).
 */
export function chunkOps(d: KeyDiff, maxOps: number, reserve: number): Op[][] {
  const ops: Op[] = [...d.del.map((k) => ({ del: k })), ...d.put.map(([k, v]) => ({ put: k, value: v }))];
  const size = Math.max(1, maxOps - reserve);
  const chunks: Op[][] = [];
  for (let i = 0; i < ops.length; i += size) chunks.push(ops.slice(i, i + size));
  return chunks.length ? chunks : [[]];
}

// ---- object verbs as edits of the file form ----

type Obj = Record<string, unknown>;
export type FileForm = Obj;

const section = (file: FileForm, name: 'nets' | 'physes' | 'settings'): Record<string, Obj> =>
  ((file[name] ??= {}) as Record<string, Obj>);

/** "NET/VIRT" split at the first slash. */
export function splitVirtId(id: string): [string, string] {
  const i = id.indexOf('/');
  if (i <= 0 || i === id.length - 1) throw new UsageError(`"${id}": a virt is named NET/VIRT`);
  return [id.slice(0, i), id.slice(i + 1)];
}

function compact(o: Obj): Obj {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

export function addNet(file: FileForm, name: string, fields: Obj): FileForm {
  const nets = section(file, 'nets');
  if (nets[name]) throw new UsageError(`net "${name}" is already in the store`);
  nets[name] = compact(fields);
  return file;
}

export function removeNet(file: FileForm, name: string): FileForm {
  const nets = section(file, 'nets');
  const net = nets[name];
  if (!net) throw new UsageError(`net "${name}" is not in the store`);
  const virts = Object.keys((net.virts ?? {}) as Obj);
  if (virts.length) throw new UsageError(`net "${name}" still has ${virts.length} virt(s) (${virts.slice(0, 5).join(', ')}${virts.length > 5 ? ', ...' : ''}); remove them first`);
  const physes = Object.entries(section(file, 'physes')).filter(([, p]) => ((p.nets ?? []) as string[]).includes(name)).map(([n]) => n);
  if (physes.length) throw new UsageError(`net "${name}" is attached to phys ${physes.join(', ')} (their "nets"); detach it first`);
  delete nets[name];
  const allocs = (file.allocations ?? {}) as Obj;
  for (const id of Object.keys(allocs)) if (id.startsWith(`${name}/`)) delete allocs[id];
  return file;
}

export function addPhys(file: FileForm, name: string, fields: Obj): FileForm {
  const physes = section(file, 'physes');
  if (physes[name]) throw new UsageError(`phys "${name}" is already in the store`);
  physes[name] = compact(fields);
  return file;
}

export function removePhys(file: FileForm, name: string): FileForm {
  const physes = section(file, 'physes');
  if (!physes[name]) throw new UsageError(`phys "${name}" is not in the store`);
  const users: string[] = [];
  for (const [n, net] of Object.entries(section(file, 'nets'))) {
    if (((net.physes ?? []) as string[]).includes(name)) users.push(`net ${n}`);
    for (const [v, virt] of Object.entries((net.virts ?? {}) as Record<string, Obj>)) if (virt.phys === name) users.push(`virt ${n}/${v}`);
  }
  if (users.length) throw new UsageError(`phys "${name}" is still used by ${users.slice(0, 5).join(', ')}${users.length > 5 ? ` and ${users.length - 5} more` : ''}; move or remove them first`);
  delete physes[name];
  return file;
}

function virtsOf(file: FileForm, net: string): Record<string, Obj> {
  const n = section(file, 'nets')[net];
  if (!n) throw new UsageError(`net "${net}" is not in the store`);
  return ((n.virts ??= {}) as Record<string, Obj>);
}

export function addVirt(file: FileForm, id: string, fields: Obj): FileForm {
  const [net, name] = splitVirtId(id);
  const virts = virtsOf(file, net);
  if (virts[name]) throw new UsageError(`virt "${id}" is already in the store`);
  virts[name] = compact(fields);
  return file;
}

/** Move a virt to another phys (and interface): only its placement changes. */
export function moveVirt(file: FileForm, id: string, to: { phys: string; if?: string }): FileForm {
  const [net, name] = splitVirtId(id);
  const virt = virtsOf(file, net)[name];
  if (!virt) throw new UsageError(`virt "${id}" is not in the store`);
  virt.phys = to.phys;
  if (to.if !== undefined) virt.if = to.if;
  return file;
}

export function removeVirt(file: FileForm, id: string): FileForm {
  const [net, name] = splitVirtId(id);
  const virts = virtsOf(file, net);
  if (!virts[name]) throw new UsageError(`virt "${id}" is not in the store`);
  delete virts[name];
  const allocs = (file.allocations ?? {}) as Obj;
  delete allocs[id];
  return file;
}
