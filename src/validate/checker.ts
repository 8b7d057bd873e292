/**
 * What every checker of src/validate shares: the model, the options (scope, host facts), the one
 * report, and the facts they all ask (a net's settings, type, port and id; a phys's underlay).
 */
import type { Net, Netmodel, Phys, Settings, Virt, Rule } from '../model/netmodel.js';
import { formatLoc, type Located, type SourceLoc } from '../core/location.js';
import { ipFamily, isMulticastIp, type IpFamily } from '../core/addr.js';
import { quote, type Severity } from '../core/problem.js';
import { objectNameProblem } from '../core/charset.js';
import type { VirtAddressing } from '../ipam/ipam.js';
import type { NetworkType, TypeCheckContext } from '../types/plugin.js';
import { isNetworkType, networkType, settingsPort } from '../types/registry.js';
import { Report } from './report.js';

/** The longest token bucket tc can express: 2^32 ticks of 1/15.625 µs, less a margin for the queue. */
export const MAX_BUCKET_SECONDS = 274;

export interface ValidateOptions {
  /** Validate as applied on these physes only (default: every phys, as each will be local somewhere). */
  physes?: string[];
  /**
   * Facts of the host being applied, when known: names of existing interfaces, underlay MTU per
   * interface. They are checked against the physes in `physes` (every phys when it is not given).
   */
  host?: { interfaces: ReadonlySet<string>; mtu?: ReadonlyMap<string, number> };
}

export { MAX_NAME_LENGTH } from '../core/charset.js';
export const MTU_MIN = 68;
export const MTU_MAX = 65535;
/** The smallest MTU IPv6 runs over (RFC 8200). */
export const IPV6_MIN_MTU = 1280;

export const q = quote;

export function isIntIn(v: unknown, lo: number, hi: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
}

export function familyName(f: IpFamily): string {
  return f === 4 ? 'IPv4' : 'IPv6';
}

export function where(loc: SourceLoc | undefined): string {
  return loc ? ` (${formatLoc(loc)})` : '';
}

export const settingsLabel = (s: Settings): string => `settings ${s.name}`;
export const netLabel = (n: Net): string => `net ${n.name}`;
export const physLabel = (p: Phys): string => `phys ${p.name}`;
export const virtLabel = (v: Virt): string => `virt ${v.id}`;
export const ruleLabel = (r: Rule): string => `rule ${r.direction} ${String(r.spec.priority)} of virt ${r.virt.id}`;

export class Checker {
  readonly report: Report;
  readonly scope: Set<string> | undefined;
  /** The addresses the addressing checks computed (handed on by validateWithAddressing). */
  addressing: Map<string, VirtAddressing> | undefined;
  /** What the types' own checks see and write to (the same report). */
  readonly typeChecks: TypeCheckContext;

  constructor(readonly model: Netmodel, readonly opts: ValidateOptions) {
    this.report = new Report(model);
    this.scope = opts.physes ? new Set(opts.physes) : undefined;
    this.typeChecks = {
      model,
      ...(opts.host ? { host: opts.host } : {}),
      error: (...a) => this.error(...a),
      warning: (...a) => this.warning(...a),
      inScope: (p) => this.inScope(p),
      usedOnScopedPhys: (st) => this.usedOnScopedPhys(st),
      unused: (st, field, value) =>
        this.warning('settings-option-unused', settingsLabel(st), `${field} ${q(value)} is ignored by type ${st.type}`, st, field),
    };
  }

  add(severity: Severity, code: string, object: string, message: string, at?: Located, field?: string): void {
    this.report.add(severity, code, object, message, at, field);
  }

  error(code: string, object: string, message: string, at?: Located, field?: string): void {
    this.add('error', code, object, message, at, field);
  }

  warning(code: string, object: string, message: string, at?: Located, field?: string): void {
    this.add('warning', code, object, message, at, field);
  }

  inScope(p: Phys): boolean {
    return this.scope ? this.scope.has(p.name) : true;
  }
  /** The settings a net uses, when they exist and are of a known type. */
  settingsOf(n: Net): Settings | undefined {
    const s = n.effectiveSettings();
    if (!s || s.removed || this.model.settings.get(s.name) !== s || !isNetworkType(s.type)) return undefined;
    return s;
  }
  typeOf(n: Net): NetworkType | undefined {
    const s = this.settingsOf(n);
    return s ? networkType(s.type) : undefined;
  }
  /** Does the type use the settings' multicast group? */
  usesGroup(t: NetworkType): boolean {
    return t.needsGroup || t.acceptsGroup === true;
  }
  /** The UDP port of a net; undefined for types without one, or when the settings' port is invalid. */
  portOf(n: Net): number | undefined {
    const s = this.settingsOf(n);
    if (!s) return undefined;
    const t = networkType(s.type);
    if (t.defaultPort === undefined) return undefined;
    const p = settingsPort(s.type, s.options.port);
    return isIntIn(p, 1, 65535) ? p : undefined;
  }
  /** The id a net's packets carry: its vid, else its type's default (vxvde: the settings' vni, else 1). */
  idOf(n: Net): number | undefined {
    const s = this.settingsOf(n);
    if (!s) return undefined;
    if (n.vid !== undefined) return n.vid;
    return networkType(s.type).defaultId?.(s.options);
  }
  /** The family of the net's multicast group, when it uses a valid one. */
  groupFamily(n: Net): IpFamily | undefined {
    const s = this.settingsOf(n);
    if (!s || !this.usesGroup(networkType(s.type)) || s.options.mcastIp === undefined) return undefined;
    return isMulticastIp(s.options.mcastIp) ? ipFamily(s.options.mcastIp) : undefined;
  }
  /** Underlay family of phys `p` for net `n`: its IP's, else the group's, else IPv4. */
  underlayFamily(p: Phys, n: Net): IpFamily {
    return (p.ip !== undefined ? ipFamily(p.ip) : undefined) ?? this.groupFamily(n) ?? 4;
  }
  /** The underlay MTU of a phys: declared, else the host's (for a phys in scope); undefined when unknown. */
  underlayMtu(p: Phys): { mtu: number; from: string } | undefined {
    if (p.mtu !== undefined) return isIntIn(p.mtu, MTU_MIN, MTU_MAX) ? { mtu: p.mtu, from: 'its mtu' } : undefined;
    if (p.if === undefined || !this.inScope(p)) return undefined;
    const m = this.opts.host?.mtu?.get(p.if);
    return m !== undefined && Number.isFinite(m) ? { mtu: m, from: `the MTU of ${p.if} on this host` } : undefined;
  }
  /** The physes of the model in declaration order that `pred` selects. */
  physesWhere(pred: (p: Phys) => boolean): Phys[] {
    return [...this.model.physes.values()].filter(pred);
  }
  checkName(label: string, what: string, name: unknown, at: Located): void {
    const prob = objectNameProblem(name);
    if (prob) this.error('name-invalid', label, `${what} name ${q(name)} ${prob}`, at, 'name');
  }
  checkMtu(code: string, label: string, mtu: number | undefined, at: Located): boolean {
    if (mtu === undefined) return false;
    if (!isIntIn(mtu, MTU_MIN, MTU_MAX)) {
      this.error(code, label, `mtu ${q(mtu)} is outside ${MTU_MIN}..${MTU_MAX}`, at, 'mtu');
      return false;
    }
    return true;
  }
  /** Is a net of these settings attached to a phys in scope? */
  usedOnScopedPhys(s: Settings): boolean {
    for (const n of this.model.nets.values()) {
      if (this.settingsOf(n) === s && [...n.physes].some((p) => this.inScope(p))) return true;
    }
    return false;
  }
}
