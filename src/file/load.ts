/**
 * Loads a netmodel file (YAML, or JSON: same parser, same schema) into a Netmodel through
 * the builder API, remembering where every object and field was written. Problems of the
 * file itself (syntax, unknown keys, wrong types, unknown references) come back located;
 * semantic problems are validate()'s.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument, isMap, isPair, isScalar, isSeq, visit, type Document, type Node } from 'yaml';
import type { ZodError, ZodType } from 'zod';
import { Netmodel, type Direction, type RuleSpec, type SettingsOptions, type TapSpec } from '../model/netmodel.js';
import { isNetworkType, networkTypes, settingsShorthands } from '../types/registry.js';
import type { SourceLoc } from '../core/location.js';
import { parseRate, parseSize } from '../model/units.js';
import type { Problem } from '../core/problem.js';
import { allocationField } from '../ipam/ipam.js';
import {
  fileSchema, netSchema, physSchema, rateSchema, settingsSchema, virtSchema,
  type SettingsFile, type VirtFile,
} from './schema.js';

/**
 * A top-level section of the file that is not the netmodel's (`lab`: what `lsdn lab` adds to a
 * simulated cluster): its value as written, and where its parts were written, for the problems
 * of whoever reads it (src/lab). apply and validate ignore it.
 */
export interface FileSection {
  value: unknown;
  /** Where the value at `path` (inside the section) was written; `key`: where the key naming it was. */
  at(path: (string | number)[], key?: boolean): SourceLoc | undefined;
}

export interface LoadResult {
  /** The model, unless the file could not be read as a netmodel at all. */
  model?: Netmodel;
  problems: Problem[];
  /** The file's `lab` section, when it has one. */
  lab?: FileSection;
}

type Path = (string | number)[];

/**
 * Where every node of the document was written, found in one walk of the AST: a value's
 * location and its key's, by path. Lookups are O(1) (a map's own lookup scans its items, so
 * asking it for each of 10,000 virts made loading quadratic). Aliases are not followed, as the
 * document's own getIn does not follow them.
 */
class Locator {
  /** path key -> offset of the value node */
  private readonly values = new Map<string, number>();
  /** path key -> offset of the key naming it in its parent map */
  private readonly keys = new Map<string, number>();
  /** path key -> the keys of the mapping there, in order */
  private readonly maps = new Map<string, string[]>();
  /**
   * Keys written twice in one mapping (the later ones; the first counts for locations). The
   * parser's own check (uniqueKeys) compares every new key with every earlier one, quadratic in
   * a net of many virts; this one is a lookup. Keys are compared as the names they become.
   */
  readonly duplicates: { name: string; at: SourceLoc; first: SourceLoc }[] = [];

  constructor(
    doc: Document,
    private readonly lc: LineCounter,
    readonly file: string,
  ) {
    this.walk(doc.contents, []);
  }

  private walk(node: unknown, path: string[]): void {
    if (!node || typeof node !== 'object') return;
    const here = path.join('\0');
    const range = (node as Node).range;
    if (range) this.values.set(here, range[0]);
    if (isMap(node)) {
      const names: string[] = [];
      const seen = new Set<string>();
      for (const item of node.items) {
        if (!isPair(item) || !isScalar(item.key)) continue;
        const name = String(item.key.value);
        const child = [...path, name];
        const k = child.join('\0');
        const first = this.keys.get(k);
        if (seen.has(name)) {
          if (first !== undefined && item.key.range) this.duplicates.push({ name, at: this.at(item.key.range[0]), first: this.at(first) });
          continue;
        }
        seen.add(name);
        names.push(name);
        if (item.key.range) this.keys.set(k, item.key.range[0]);
        this.walk(item.value, child);
      }
      this.maps.set(here, names);
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => this.walk(item, [...path, String(i)]));
    }
  }

  private at(offset: number): SourceLoc {
    const { line, col } = this.lc.linePos(offset);
    return { file: this.file, line, col };
  }

  /** Location of the value at `path` (falls back to the nearest ancestor). */
  value(path: Path): SourceLoc | undefined {
    const parts = path.map(String);
    for (let n = parts.length; n >= 0; n--) {
      const offset = this.values.get(parts.slice(0, n).join('\0'));
      if (offset !== undefined) return this.at(offset);
    }
    return undefined;
  }

  /** Location of the key that names the last element of `path` (an object's name). */
  key(path: Path): SourceLoc | undefined {
    const offset = this.keys.get(path.map(String).join('\0'));
    return offset !== undefined ? this.at(offset) : this.value(path);
  }

  /** Locations of every field of the mapping at `path`. */
  fields(path: Path): Record<string, SourceLoc | undefined> {
    const out: Record<string, SourceLoc | undefined> = {};
    for (const name of this.maps.get(path.map(String).join('\0')) ?? []) out[name] = this.value([...path, name]);
    return out;
  }
}

function objectName(path: Path): string {
  const [section, name, sub, subName] = path;
  if (section === 'settings') return `settings ${String(name)}`;
  if (section === 'physes') return `phys ${String(name)}`;
  if (section === 'nets' && sub === 'virts' && subName !== undefined) return `virt ${String(name)}/${String(subName)}`;
  if (section === 'nets' && name !== undefined) return `net ${String(name)}`;
  return 'netmodel';
}

/** How deep a document may nest (a netmodel nests 6 levels; more is an attack or a mistake). */
export const MAX_YAML_DEPTH = 64;
/** How often one anchor may be expanded (yaml's maxAliasCount). */
export const MAX_YAML_ALIASES = 1000;

/** Offset of the first node deeper than MAX_YAML_DEPTH, walked without recursion; undefined when none is. */
function tooDeep(root: unknown): number | undefined {
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (!node || typeof node !== 'object') continue;
    if (depth > MAX_YAML_DEPTH) return (node as Node).range?.[0] ?? 0;
    if (isMap(node) || isSeq(node)) {
      for (const item of node.items as unknown[]) {
        if (isPair(item)) stack.push([item.key, depth + 1], [item.value, depth + 1]);
        else stack.push([item, depth + 1]);
      }
    }
  }
  return undefined;
}

/** Offset of the first alias node (where an alias bomb is reported). */
function firstAlias(root: unknown): number | undefined {
  let found: number | undefined;
  visit(root as Node, { Alias(_k, n) { found = Math.min(found ?? Infinity, n.range?.[0] ?? 0); } });
  return found;
}

export function loadModelText(text: string, file = '<input>'): LoadResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: false, prettyErrors: true });
  const loc = new Locator(doc, lc, file);
  const problems: Problem[] = [];
  const problem = (code: string, path: Path, message: string, at?: SourceLoc) =>
    problems.push({ code, severity: 'error', message, object: objectName(path), loc: at ?? loc.value(path), path });

  for (const e of doc.errors) {
    const pos = e.linePos?.[0];
    const message = e.code === 'DUPLICATE_KEY' ? `duplicate name: ${e.message.split('\n')[0]}` : e.message.split('\n')[0] ?? e.message;
    problems.push({
      code: e.code === 'DUPLICATE_KEY' ? 'duplicate-name' : 'syntax',
      severity: 'error',
      message,
      object: 'netmodel',
      loc: pos ? { file, line: pos.line, col: pos.col } : undefined,
    });
  }
  for (const d of loc.duplicates) {
    problems.push({ code: 'duplicate-name', severity: 'error', message: `duplicate name "${d.name}" (first at line ${d.first.line})`, object: 'netmodel', loc: d.at });
  }
  if (problems.length) return { problems };
  const deep = tooDeep(doc.contents);
  if (deep) {
    const { line, col } = lc.linePos(deep);
    return { problems: [{ code: 'yaml-too-deep', severity: 'error', object: 'netmodel', loc: { file, line, col },
      message: `the document nests deeper than ${MAX_YAML_DEPTH} levels here (a netmodel needs fewer than 10)` }] };
  }

  let root: unknown;
  try {
    root = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) ?? {};
  } catch (e) {
    // The yaml library's guard against alias bombs (a ReferenceError), reported at the first alias.
    const first = firstAlias(doc.contents);
    const at = first !== undefined ? lc.linePos(first) : undefined;
    return { problems: [{ code: 'yaml-alias-limit', severity: 'error', object: 'netmodel', ...(at ? { loc: { file, line: at.line, col: at.col } } : {}),
      message: `YAML aliases expand too much (more than ${MAX_YAML_ALIASES} per anchor): ${(e as Error).message}` }] };
  }

  /**
   * Check one object against its schema; report every issue, located. Fields in error are
   * then dropped and the rest is checked again, so the object's other fields (and what they
   * contain) are still loaded and checked: every problem is reported at once.
   */
  function check<T>(schema: ZodType<T>, value: unknown, path: Path): T | undefined {
    let current = value;
    for (let round = 0; round < 2; round++) {
      const r = schema.safeParse(current);
      if (r.success) return r.data;
      const bad = new Set<string>();
      for (const issue of (r.error as ZodError).issues) {
        const p: Path = [...path, ...(issue.path as Path)];
        if (issue.code === 'unrecognized_keys') {
          for (const k of issue.keys) {
            bad.add(k);
            if (round === 0) problem('unknown-field', [...p, k], `unknown field "${k}"`, loc.key([...p, k]));
          }
        } else {
          if (issue.path.length) bad.add(String(issue.path[0]));
          const field = issue.path.length ? `${issue.path.join('.')}: ` : '';
          if (round === 0) problem('invalid-field', p, `${field}${issue.message}`);
        }
      }
      if (!current || typeof current !== 'object' || Array.isArray(current) || bad.size === 0) return undefined;
      current = Object.fromEntries(Object.entries(current).filter(([k]) => !bad.has(k)));
    }
    return undefined;
  }

  const top = check(fileSchema, root, []);
  if (!top) return { problems };
  const model = new Netmodel(top.name ?? 'lsdn');
  model.setLoc(loc.value([]), { name: loc.value(['name']) });

  // settings
  for (const [sname, raw] of Object.entries(top.settings ?? {})) {
    const path = ['settings', sname];
    let spec: SettingsFile | undefined;
    if (typeof raw === 'string') {
      // A type's shorthand (vxvde URLs): the first that takes it; else what they object.
      const tried = settingsShorthands().map((sh) => sh.parse(raw));
      const parsed = tried.find((r) => !('error' in r));
      if (parsed) spec = parsed as SettingsFile;
      else problem('settings-url-invalid', path, tried.map((r) => (r as { error: string }).error).join('; ') || `settings ${JSON.stringify(raw)} is not an object`);
    } else {
      spec = check(settingsSchema, raw, path);
    }
    if (!spec || !isNetworkType(spec.type)) continue;
    model
      .addSettings(spec.type, { name: sname, ...settingsOptionsFromFile(spec) })
      .setLoc(loc.key(path), loc.fields(path));
  }

  // physes
  const physNets: [string, string, Path][] = [];
  for (const [pname, raw] of Object.entries(top.physes ?? {})) {
    const path = ['physes', pname];
    const spec = check(physSchema, raw ?? {}, path);
    if (!spec) continue;
    model.addPhys(pname, { if: spec.if, ip: spec.ip, mtu: spec.mtu }).setLoc(loc.key(path), loc.fields(path));
    spec.nets?.forEach((n, i) => physNets.push([pname, n, [...path, 'nets', i]]));
  }

  // nets and their virts
  for (const [nname, raw] of Object.entries(top.nets ?? {})) {
    const path = ['nets', nname];
    const spec = check(netSchema, raw ?? {}, path);
    if (!spec) continue;
    const vid = spec.vid ?? (/^\d+$/.test(nname) ? Number(nname) : undefined);
    const net = model.addNet(nname, { vid, settings: spec.settings, mtu: spec.mtu }).setLoc(loc.key(path), loc.fields(path));
    if (spec.ipv4) {
      const { subnet, dhcp, ...rest } = spec.ipv4;
      net.setSubnet(4, { ...rest, prefix: subnet, ...(dhcp !== undefined ? { serve: dhcp } : {}) })
        ?.setLoc(loc.key([...path, 'ipv4']), loc.fields([...path, 'ipv4']));
    }
    if (spec.ipv6) {
      const { subnet, slaac, ...rest } = spec.ipv6;
      net.setSubnet(6, { ...rest, prefix: subnet, ...(slaac !== undefined ? { serve: slaac } : {}) })
        ?.setLoc(loc.key([...path, 'ipv6']), loc.fields([...path, 'ipv6']));
    }
    spec.physes?.forEach((p, i) => {
      const phys = model.phys(p);
      if (phys) net.attach(phys);
      else problem('unknown-phys', [...path, 'physes', i], `unknown phys "${p}"`);
    });
    for (const [vname, vraw] of Object.entries(spec.virts ?? {})) {
      const vpath = [...path, 'virts', vname];
      const v = check(virtSchema, vraw ?? {}, vpath);
      if (!v) continue;
      const virt = net.virt(vname, {
        mac: v.mac,
        ips: v.ip === undefined ? [] : Array.isArray(v.ip) ? v.ip : [v.ip],
        mtu: v.mtu,
        ...(v.policy !== undefined ? { policy: typeof v.policy === 'string' ? { in: v.policy, out: v.policy } : v.policy } : {}),
        ...(v.stateful !== undefined ? { stateful: v.stateful } : {}),
        ...(v.antiSpoof !== undefined ? { antiSpoof: v.antiSpoof } : {}),
        ...(v.tap !== undefined ? { tap: tapFromFile(v.tap) } : {}),
      });
      virt.setLoc(loc.key(vpath), loc.fields(vpath));
      if (v.phys !== undefined || v.if !== undefined) virt.connect(v.phys, v.if);
      v.rules?.forEach(({ dir, ...rule }, i) => {
        const rpath = [...vpath, 'rules', i];
        virt.rule(dir, rule as RuleSpec).setLoc(loc.value(rpath), loc.fields(rpath));
      });
      for (const dir of ['in', 'out'] as Direction[]) {
        const rpath = [...vpath, 'rate', dir];
        const r = v.rate?.[dir];
        if (!r) continue;
        const spec = check(rateSchema, r, rpath);
        if (!spec) continue;
        const parse = (field: 'avg' | 'burst' | 'peak', value: string | number, f: (v: string | number) => number) => {
          try {
            return f(value);
          } catch (e) {
            problem('rate-invalid', [...rpath, field], (e as Error).message);
            return undefined;
          }
        };
        const avg = parse('avg', spec.avg, parseRate);
        const burst = parse('burst', spec.burst, parseSize);
        const peak = spec.peak !== undefined ? parse('peak', spec.peak, parseRate) : undefined;
        if (avg === undefined || burst === undefined || (spec.peak !== undefined && peak === undefined)) continue;
        virt.rate(dir, { avg, burst, ...(peak !== undefined ? { peak } : {}) });
        virt.rates[dir]?.setLoc(loc.value(rpath), loc.fields(rpath));
      }
    }
  }

  for (const [pname, nname, path] of physNets) {
    const net = model.net(nname);
    if (net) net.attach(model.phys(pname)!);
    else problem('unknown-net', path, `unknown net "${nname}"`);
  }
  // A virt on a phys implies the phys is attached to the virt's net.
  for (const v of model.virts()) if (v.phys) v.net.attach(v.phys);

  // Recorded allocations (`lsdn allocate`); validate() judges them against the model.
  for (const [id, ip] of Object.entries(top.allocations ?? {})) {
    model.allocations.set(id, ip);
    const at = loc.key(['allocations', id]);
    if (at) model.fieldLocs.set(allocationField(id), at);
  }

  const lab: FileSection | undefined = top.lab === undefined ? undefined : {
    value: top.lab,
    at: (path, key) => (key ? loc.key(['lab', ...path]) : loc.value(['lab', ...path])),
  };
  return { model, problems, ...(lab ? { lab } : {}) };
}

export async function loadModelFile(file: string): Promise<LoadResult> {
  const text = await readFile(file, 'utf8');
  return loadModelText(text, file);
}

/**
 * A settings object's options from its file fields: every type's (the options of another type
 * than the settings' are kept too; validation warns that they are ignored).
 */
function settingsOptionsFromFile(spec: SettingsFile): SettingsOptions {
  return Object.assign({}, ...networkTypes().map((t) => t.file?.fromFile(spec) ?? {})) as SettingsOptions;
}

/** The file's `tap` (true, false, or options with numeric or named user/group) as model options. */
function tapFromFile(t: NonNullable<VirtFile['tap']>): TapSpec | boolean {
  if (typeof t === 'boolean') return t;
  const { user, group, ...rest } = t;
  return { ...rest, ...(user !== undefined ? { user: String(user) } : {}), ...(group !== undefined ? { group: String(group) } : {}) };
}
