/**
 * The netmodel in a key-value store (pure): one key per object under a prefix, each value that
 * object in the file schema (JSON), so that an orchestrator changes one virt with one small
 * write. Reading the keys gives back exactly what the file loader would give for the file form.
 *
 *   PREFIX/meta                 {"name": CONTEXT}
 *   PREFIX/settings/NAME        a settings entry (an object, or a type's shorthand string)
 *   PREFIX/phys/NAME            a phys (if, ip, mtu, nets)
 *   PREFIX/net/NAME             a net without its virts (vid, settings, mtu, ipv4, ipv6)
 *   PREFIX/virt/NET/NAME        a virt (phys, if, mac, ip, rules, rate, policy, tap...)
 *   PREFIX/alloc/NET/NAME       a recorded IPv4 allocation (the address, a JSON string)
 *   PREFIX/generation           the commit counter every model write bumps (protocol.ts)
 *   PREFIX/pending              present while a push too large for one transaction is written
 *   PREFIX/status/PHYS          a host's last apply (status.ts), on the host's lease
 *
 * Name segments are URI-encoded (a name may hold "/"). Keys are compared as strings.
 */
import { loadModelText, type LoadResult } from '../file/load.js';
import { modelToFile } from '../file/dump.js';
import type { Netmodel } from '../model/netmodel.js';
import type { Problem } from '../core/problem.js';
import type { SourceLoc } from '../core/location.js';

/** Key -> value (JSON text) of the model part of a prefix. */
export type KeySet = Map<string, string>;

export const META = 'meta';
export const GENERATION = 'generation';
export const PENDING = 'pending';
export const STATUS = 'status/';

/** The default prefix of a context. */
export function defaultPrefix(context: string): string {
  return `/lsdn/${encodeURIComponent(context)}/`;
}

/** A prefix as given (with or without its trailing slash) in canonical form. */
export function normalizePrefix(prefix: string): string {
  const p = prefix.startsWith('/') ? prefix : `/${prefix}`;
  return p.endsWith('/') ? p : `${p}/`;
}

const enc = encodeURIComponent;

export const keys = {
  meta: (prefix: string) => `${prefix}${META}`,
  generation: (prefix: string) => `${prefix}${GENERATION}`,
  pending: (prefix: string) => `${prefix}${PENDING}`,
  status: (prefix: string, phys: string) => `${prefix}${STATUS}${enc(phys)}`,
  settings: (prefix: string, name: string) => `${prefix}settings/${enc(name)}`,
  phys: (prefix: string, name: string) => `${prefix}phys/${enc(name)}`,
  net: (prefix: string, name: string) => `${prefix}net/${enc(name)}`,
  virt: (prefix: string, net: string, name: string) => `${prefix}virt/${enc(net)}/${enc(name)}`,
  alloc: (prefix: string, id: string) => {
    const i = id.indexOf('/');
    return `${prefix}alloc/${enc(id.slice(0, i))}/${enc(id.slice(i + 1))}`;
  },
};

/** A key of the prefix that is a part of the model (not the protocol's or the hosts' keys). */
export function isModelKey(prefix: string, key: string): boolean {
  if (!key.startsWith(prefix)) return false;
  const rest = key.slice(prefix.length);
  return rest === META || /^(settings|phys|net)\/[^/]+$/.test(rest) || /^(virt|alloc)\/[^/]+\/[^/]+$/.test(rest);
}

/** The model part of a set of key-values read from the store. */
export function modelKeys(prefix: string, kvs: Iterable<[string, string]>): KeySet {
  const out: KeySet = new Map();
  for (const [k, v] of kvs) if (isModelKey(prefix, k)) out.set(k, v);
  return out;
}

/** The model as keys (its canonical file form, one key per object). */
export function modelToKeys(model: Netmodel, prefix: string): KeySet {
  return fileToKeys(modelToFile(model), prefix);
}

type Obj = Record<string, unknown>;

/** A model in the file form (`modelToFile`) as keys. */
export function fileToKeys(file: Obj, prefix: string): KeySet {
  const out: KeySet = new Map();
  const put = (k: string, v: unknown) => out.set(k, JSON.stringify(v));
  put(keys.meta(prefix), { name: file.name ?? 'lsdn' });
  for (const [n, s] of Object.entries((file.settings ?? {}) as Obj)) put(keys.settings(prefix, n), s);
  for (const [n, p] of Object.entries((file.physes ?? {}) as Obj)) put(keys.phys(prefix, n), p ?? {});
  for (const [n, raw] of Object.entries((file.nets ?? {}) as Obj)) {
    const { virts, ...net } = (raw ?? {}) as Obj;
    put(keys.net(prefix, n), net);
    for (const [v, virt] of Object.entries((virts ?? {}) as Obj)) put(keys.virt(prefix, n, v), virt ?? {});
  }
  for (const [id, ip] of Object.entries((file.allocations ?? {}) as Obj)) put(keys.alloc(prefix, id), ip);
  return out;
}

/** A problem of a stored value that is not JSON, or of a key of the layout that holds nothing it knows. */
function keyProblem(key: string, message: string): Problem {
  return { code: 'store-value-invalid', severity: 'error', message, object: `key ${key}`, loc: { file: key, line: 0, col: 0 } };
}

/**
 * Keys back to the file form, and where each object of that form came from (the path of an
 * object in the file form, joined by "\0" -> its key). Values that are not JSON are problems.
 */
export function keysToFile(prefix: string, kvs: KeySet): { file: Obj; origin: Map<string, string>; problems: Problem[] } {
  const settings: Obj = {};
  const physes: Obj = {};
  const nets: Record<string, Obj> = {};
  const virts: Record<string, Obj> = {};
  const allocations: Obj = {};
  const origin = new Map<string, string>();
  const problems: Problem[] = [];
  let name: unknown;
  const sorted = [...kvs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [key, text] of sorted) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      problems.push(keyProblem(key, `the value is not JSON (${(e as Error).message})`));
      continue;
    }
    const parts = key.slice(prefix.length).split('/').map(decodeURIComponent);
    const [section, a, b] = parts as [string, string, string];
    if (section === META) {
      const n = (value as Obj | null)?.name;
      if (typeof n !== 'string' || !n) problems.push(keyProblem(key, 'the value must be {"name": CONTEXT}'));
      else name = n;
      origin.set('name', key);
    } else if (section === 'settings') {
      settings[a] = value;
      origin.set(['settings', a].join('\0'), key);
    } else if (section === 'phys') {
      physes[a] = value;
      origin.set(['physes', a].join('\0'), key);
    } else if (section === 'net') {
      nets[a] = value as Obj;
      origin.set(['nets', a].join('\0'), key);
    } else if (section === 'virt') {
      (virts[a] ??= {})[b] = value;
      origin.set(['nets', a, 'virts', b].join('\0'), key);
    } else if (section === 'alloc') {
      allocations[`${a}/${b}`] = value;
      origin.set(['allocations', `${a}/${b}`].join('\0'), key);
    }
  }
  for (const [net, vs] of Object.entries(virts)) {
    const n = nets[net];
    if (!n || typeof n !== 'object' || Array.isArray(n)) {
      for (const v of Object.keys(vs)) {
        const key = keys.virt(prefix, net, v);
        problems.push({ ...keyProblem(key, `virt of net "${net}", which is not in the store`), code: 'unknown-net', object: `virt ${net}/${v}` });
      }
      continue;
    }
    n.virts = vs;
  }
  const file: Obj = { ...(name !== undefined ? { name } : {}), settings, physes, nets };
  if (Object.keys(allocations).length) file.allocations = allocations;
  return { file, origin, problems };
}

/** Where a problem of the file form lies in the store: the key of its object, and the field inside. */
export function storeLoc(origin: Map<string, string>, path: (string | number)[] | undefined): SourceLoc | undefined {
  if (!path) return undefined;
  // The longest prefix of the path that is an object with a key of its own.
  for (let n = Math.min(path.length, 4); n >= 1; n--) {
    const key = origin.get(path.slice(0, n).map(String).join('\0'));
    if (key !== undefined) {
      const field = path.slice(n).map(String).join('.');
      return { file: key, line: 0, col: 0, ...(field ? { field } : {}) };
    }
  }
  return undefined;
}

/** The object names problems use, back to their path (for problems without one). */
function objectPath(object: string): (string | number)[] | undefined {
  const m = /^(settings|phys|net|virt) (.+)$/.exec(object);
  if (!m) return undefined;
  const [, kind, name] = m as unknown as [string, string, string];
  if (kind === 'settings') return ['settings', name];
  if (kind === 'phys') return ['physes', name];
  if (kind === 'net') return ['nets', name];
  const i = name.indexOf('/');
  return ['nets', name.slice(0, i), 'virts', name.slice(i + 1)];
}

/** Problems located by key (and field path) instead of the synthetic text's lines. */
export function locateInStore(problems: Problem[], origin: Map<string, string>, fallback: string): Problem[] {
  return problems.map((p) => {
    if (p.loc?.line === 0) return p;
    const loc = storeLoc(origin, p.path) ?? storeLoc(origin, objectPath(p.object)) ?? { file: fallback, line: 0, col: 0 };
    return { ...p, loc };
  });
}

/**
 * The model stored under `prefix`: loaded through the file loader (the same checks, the same
 * Netmodel), its problems (and, through `origin`, every later validation problem) located by key.
 */
export function keysToModel(prefix: string, kvs: KeySet): LoadResult & { origin: Map<string, string> } {
  const { file, origin, problems } = keysToFile(prefix, kvs);
  const loaded = loadModelText(JSON.stringify(file), prefix);
  const all = locateInStore([...problems, ...loaded.problems], origin, prefix);
  const { lab: _lab, ...rest } = loaded;
  return { ...rest, problems: all, origin };
}
