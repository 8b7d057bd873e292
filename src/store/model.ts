/**
 * Reading and writing the model in etcd: the commit protocol.
 *
 * - Every model write is one transaction that compares the mod revision of PREFIX/generation
 *   with the one it read (optimistic concurrency: any other write in between bumps it) and
 *   requires PREFIX/pending to be absent, writes the changed keys and bumps the generation.
 *   On a lost race the writer reads again, re-applies its change to the new model, validates
 *   the whole candidate again and retries (bounded); what it cannot redo is a clear conflict.
 * - A write larger than one transaction (etcd's --max-txn-ops, 128 by default) first writes
 *   PREFIX/pending with its first chunk, then the other chunks (each comparing generation and
 *   pending), and in the last chunk deletes pending and bumps the generation. Readers
 *   (`readCommitted`) seeing pending read the model at the revision just before pending was
 *   created: hosts see such a push all or nothing. A pending older than STALE_PENDING_MS (its
 *   writer died) is taken over by the next writer, which converges the keys on its own model.
 * - The model's revision (what hosts report as applied) is the highest mod revision of the
 *   generation and the model keys: status writes do not move it.
 */
import { hostname } from 'node:os';
import { ModelInvalidError, StoreConflictError, StoreError } from '../core/errors.js';
import type { Netmodel } from '../model/netmodel.js';
import { keys as K, keysToFile, keysToModel, locateInStore, modelKeys, type KeySet } from '../cluster/layout.js';
import { validate } from '../validate/validate.js';
import { chunkOps, diffKeys, type FileForm, type KeyDiff, type Op } from '../cluster/change.js';
import { candidate } from '../cluster/candidate.js';
import type { Problem } from '../core/problem.js';
import { hasErrors } from '../core/problem.js';
import type { Compare, Kv, Store, TxnOp } from './etcd.js';

export const STALE_PENDING_MS = 60_000;

export interface Pending {
  id: string;
  by: string;
  at: string;
  create: number;
  mod: number;
}

/** The committed model as read from the store. */
export interface Snapshot {
  /** The revision the model keys were read at. */
  readRevision: number;
  /** The model's revision: the highest mod revision of the generation and the model keys. */
  revision: number;
  /** The generation key's mod revision (0: none): what writers compare. */
  genMod: number;
  generation: number;
  keys: KeySet;
  /** A large push being written (its keys are not in `keys`). */
  pending?: Pending;
  /** The other keys of the prefix at the latest revision (hosts' status). */
  others: Kv[];
}

function modelRevision(prefix: string, kvs: Kv[]): number {
  let rev = 0;
  for (const kv of kvs) if (kv.key === K.generation(prefix) || modelKeys(prefix, [[kv.key, '']]).size) rev = Math.max(rev, kv.mod);
  return rev;
}

/** The last committed model: at the latest revision, or, while a large push is written, just before it began. */
export async function readCommitted(store: Store): Promise<Snapshot> {
  const prefix = store.prefix;
  const latest = await store.range();
  const gen = latest.kvs.find((kv) => kv.key === K.generation(prefix));
  const pend = latest.kvs.find((kv) => kv.key === K.pending(prefix));
  const generation = gen ? Number((JSON.parse(gen.value) as { gen?: number }).gen ?? 0) : 0;
  const others = latest.kvs.filter((kv) => !modelKeys(prefix, [[kv.key, '']]).size);
  // The model as of one read (the latest, or the one before a pending push), with the latest's
  // generation and other keys.
  const snapshot = (read: typeof latest, pending?: Pending): Snapshot => ({
    readRevision: read.revision,
    revision: modelRevision(prefix, read.kvs),
    genMod: gen?.mod ?? 0,
    generation,
    keys: modelKeys(prefix, read.kvs.map((kv) => [kv.key, kv.value])),
    ...(pending ? { pending } : {}),
    others,
  });
  if (!pend) return snapshot(latest);
  let info: { id?: string; by?: string; at?: string } = {};
  try {
    info = JSON.parse(pend.value) as typeof info;
  } catch {
    /* a hand-written pending: still a pending */
  }
  const pending: Pending = { id: info.id ?? '?', by: info.by ?? '?', at: info.at ?? '?', create: pend.create, mod: pend.mod };
  let before;
  try {
    before = await store.range(prefix, pend.create - 1);
  } catch (e) {
    if (e instanceof StoreError && /compacted/i.test(e.answer)) {
      throw new StoreError(`a push (by ${pending.by}, ${pending.at}) is being written and the model before it was compacted away; wait for the push to finish`, e.op, e.answer);
    }
    throw e;
  }
  return snapshot(before, pending);
}

/** The committed model as a Netmodel (problems located by key). */
export async function readModel(store: Store): Promise<{ snapshot: Snapshot; model?: Netmodel; problems: Problem[]; origin: Map<string, string> }> {
  const snapshot = await readCommitted(store);
  const r = keysToModel(store.prefix, snapshot.keys);
  // The whole model's validation too (as a file's), located by key.
  const problems = r.model && !hasErrors(r.problems) ? [...r.problems, ...locateInStore(validate(r.model), r.origin, store.prefix)] : r.problems;
  return { snapshot, ...(r.model ? { model: r.model } : {}), problems, origin: r.origin };
}

export interface WriteOptions {
  dryRun?: boolean;
  /** Attempts on conflict (default 30). */
  retries?: number;
  /** Who writes (in pending): default user@host pid. */
  by?: string;
}

export interface WriteResult {
  diff: KeyDiff;
  /** The model keys the diff was taken against. */
  current: KeySet;
  /** The revision it committed at (unset: dry run or nothing to change). */
  revision?: number;
  generation?: number;
  attempts: number;
  /** Transactions it took. */
  txns: number;
  problems: Problem[];
  model: Netmodel;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Apply `edit` to the committed model's file form and commit the result, validated as a whole
 * (with IPv4 allocations). The edit is re-run on the newest model after a lost race; an edit
 * that throws (the object is gone...) ends the write with its error. Throws ModelInvalidError
 * (nothing written) when the candidate has errors.
 */
export async function writeModel(store: Store, edit: (file: FileForm) => FileForm, opts: WriteOptions = {}): Promise<WriteResult> {
  const prefix = store.prefix;
  const retries = opts.retries ?? 30;
  const by = opts.by ?? `${process.env.USER ?? 'root'}@${hostname()} pid ${process.pid}`;
  for (let attempt = 1; ; attempt++) {
    const snap = await readCommitted(store);
    let current = snap.keys;
    if (snap.pending) {
      const age = Date.now() - Date.parse(snap.pending.at);
      if (!(age > STALE_PENDING_MS)) {
        if (attempt >= retries) {
          throw new StoreConflictError(`a push by ${snap.pending.by} (${snap.pending.at}) is still being written under ${prefix}; try again when it is done`, 'write', 'pending');
        }
        await sleep(Math.min(1000, 50 * attempt));
        continue;
      }
      // Its writer died: take over from the keys as they are now.
      current = modelKeys(prefix, (await store.range()).kvs.map((kv) => [kv.key, kv.value]));
    }
    const { file } = keysToFile(prefix, snap.keys);
    const next = edit(structuredClone(file));
    const c = candidate(prefix, next);
    if (!c.keys || hasErrors(c.problems)) throw new ModelInvalidError(c.problems, `nothing was written to ${prefix}`);
    const diff = diffKeys(current, c.keys);
    const result = { diff, current, attempts: attempt, problems: c.problems, model: c.model! };
    if (opts.dryRun || (diff.put.length === 0 && diff.del.length === 0 && !snap.pending)) return { ...result, txns: 0 };

    const genKey = K.generation(prefix);
    const pendKey = K.pending(prefix);
    const generation = snap.generation + 1;
    const genOp: TxnOp = { put: genKey, value: JSON.stringify({ gen: generation, by, at: new Date().toISOString() }) };
    const base: Compare[] = [{ key: genKey, mod: snap.genMod }];
    const pendCmp: Compare = snap.pending ? { key: pendKey, mod: snap.pending.mod } : { key: pendKey, absent: true };
    const chunks = chunkOps(diff, store.maxTxnOps, 2);
    const toTxn = (ops: Op[]): TxnOp[] => ops.map((o) => ('put' in o ? { put: o.put, value: o.value } : { del: o.del }));

    if (chunks.length === 1) {
      const ops = [...toTxn(chunks[0]!), genOp, ...(snap.pending ? [{ del: pendKey }] : [])];
      const r = await store.txn([...base, pendCmp], ops, 'model write');
      if (r.ok) return { ...result, revision: r.revision, generation, txns: 1 };
    } else {
      // A large write: pending first (with the first chunk), the last chunk commits.
      const id = `${by} ${Date.now()}`;
      const pendOp: TxnOp = { put: pendKey, value: JSON.stringify({ id, by, at: new Date().toISOString(), generation }) };
      const first = await store.txn([...base, pendCmp], [pendOp, ...toTxn(chunks[0]!)], 'push (first part)');
      if (first.ok) {
        const mine: Compare = { key: pendKey, mod: first.revision };
        let txns = 1;
        for (let i = 1; i < chunks.length; i++) {
          const last = i === chunks.length - 1;
          const ops = [...toTxn(chunks[i]!), ...(last ? [{ del: pendKey }, genOp] : [])];
          const r = await store.txn([...base, mine], ops, last ? 'push (commit)' : `push (part ${i + 1} of ${chunks.length})`);
          txns++;
          if (!r.ok) {
            throw new StoreConflictError(`another writer took over the push under ${prefix} after part ${i} of ${chunks.length}; nothing of this push is committed`, 'push', 'compare failed');
          }
          if (last) return { ...result, revision: r.revision, generation, txns };
        }
      }
    }
    if (attempt >= retries) {
      throw new StoreConflictError(`the model under ${prefix} kept changing under this write (${attempt} attempts); nothing was written`, 'model write', 'compare failed');
    }
    // Lost a race: back off a little (jittered) and redo the change on the new model.
    await sleep(Math.floor(Math.random() * 20 * Math.min(attempt, 10)));
  }
}

/** Push a whole model: the store's recorded allocations are kept unless the file records its own. */
export function replaceWith(file: FileForm): (current: FileForm) => FileForm {
  return (current) => {
    const next = structuredClone(file);
    if (next.allocations === undefined && current.allocations !== undefined) next.allocations = current.allocations;
    return next;
  };
}
