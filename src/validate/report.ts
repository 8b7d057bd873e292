/**
 * The one report every check writes to: a problem is located (file:line:col, where the field or
 * its object was written) and carries the path of the field in the model's file form.
 */
import { Net, Netmodel, Phys, Rule, Settings, Subnet, Virt } from '../model/netmodel.js';
import type { Located } from '../core/location.js';
import type { Problem, Severity } from '../core/problem.js';

type Path = (string | number)[];

/** Model fields whose file key differs. */
const FILE_KEYS: Record<string, string> = { ips: 'ip', iface: 'if' };

/** The file-form path of every object of a model (rates know no virt: found by walking). */
function objectPaths(model: Netmodel): Map<Located, Path> {
  const out = new Map<Located, Path>([[model, []]]);
  for (const s of model.settings.values()) out.set(s, ['settings', s.name]);
  for (const p of model.physes.values()) out.set(p, ['physes', p.name]);
  for (const n of model.nets.values()) {
    out.set(n, ['nets', n.name]);
    if (n.ipv4) out.set(n.ipv4, ['nets', n.name, 'ipv4']);
    if (n.ipv6) out.set(n.ipv6, ['nets', n.name, 'ipv6']);
    for (const v of n.virts.values()) {
      const vp = ['nets', n.name, 'virts', v.name];
      out.set(v, vp);
      v.rules.forEach((r, i) => out.set(r, [...vp, 'rules', i]));
      for (const dir of ['in', 'out'] as const) {
        const r = v.rates[dir];
        if (r) out.set(r, [...vp, 'rate', dir]);
      }
    }
  }
  return out;
}

/** The path of an object the walk did not see (removed from the model, or not yet in it). */
function pathOfDetached(at: Located): Path | undefined {
  if (at instanceof Settings) return ['settings', at.name];
  if (at instanceof Phys) return ['physes', at.name];
  if (at instanceof Net) return ['nets', at.name];
  if (at instanceof Subnet) return ['nets', at.net.name, at.family === 4 ? 'ipv4' : 'ipv6'];
  if (at instanceof Virt) return ['nets', at.net.name, 'virts', at.name];
  if (at instanceof Rule) return ['nets', at.virt.net.name, 'virts', at.virt.name, 'rules', at.virt.rules.indexOf(at)];
  return undefined;
}

export class Report {
  readonly problems: Problem[] = [];
  private paths: Map<Located, Path> | undefined;

  constructor(private readonly model: Netmodel) {}

  /** The path of `field` of `at` (the object's own path for its name). */
  pathOf(at: Located, field?: string): Path | undefined {
    this.paths ??= objectPaths(this.model);
    if (at === this.model && field?.startsWith('allocations:')) return ['allocations', field.slice('allocations:'.length)];
    const base = this.paths.get(at) ?? pathOfDetached(at);
    if (!base) return undefined;
    if (field === undefined || (field === 'name' && at !== this.model)) return base;
    return [...base, FILE_KEYS[field] ?? field];
  }

  add(severity: Severity, code: string, object: string, message: string, at?: Located, field?: string): void {
    const p: Problem = { code, severity, message, object };
    const loc = at?.locOf(field);
    if (loc) p.loc = loc;
    const path = at ? this.pathOf(at, field) : undefined;
    if (path) p.path = path;
    this.problems.push(p);
  }
}
