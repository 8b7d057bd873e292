/**
 * A candidate model for the store (pure): the file form a writer wants, checked as a whole
 * exactly as a file would be (loader + validation, problems located by key), its IPv4
 * allocations computed by the same stable algorithm as `lsdn allocate` (so a virt and its
 * address are written together), and the keys that store it.
 */
import { allocate } from '../ipam/ipam.js';
import type { Netmodel } from '../model/netmodel.js';
import type { Problem } from '../core/problem.js';
import { hasErrors } from '../core/problem.js';
import { validate } from '../validate/validate.js';
import { fileToKeys, keysToModel, locateInStore, modelToKeys, type KeySet } from './layout.js';
import type { FileForm } from './change.js';

export interface Candidate {
  model?: Netmodel;
  problems: Problem[];
  /** The keys of the model (allocations recorded), when it has no errors. */
  keys?: KeySet;
}

export function candidate(prefix: string, file: FileForm, opts: { allocate?: boolean } = {}): Candidate {
  const loaded = keysToModel(prefix, fileToKeys(file, prefix));
  const model = loaded.model;
  if (!model || hasErrors(loaded.problems)) return { ...(model ? { model } : {}), problems: loaded.problems };
  if (opts.allocate !== false) {
    const r = allocate(model);
    model.allocations.clear();
    for (const [id, ip] of r.allocations) model.allocations.set(id, ip);
  }
  const problems = [...loaded.problems, ...locateInStore(validate(model), loaded.origin, prefix)];
  if (hasErrors(problems)) return { model, problems };
  return { model, problems, keys: modelToKeys(model, prefix) };
}
