/**
 * Validation of a netmodel: every problem at once, before anything touches the kernel.
 *
 * `validate()` is pure (no I/O): what it knows about the host being applied comes in
 * `opts.host`. Problems come out in model declaration order: the scope, the context, then
 * settings, nets, physes, and virts (each followed by its rules and rates). A problem
 * between two objects (a duplicate id, MAC, IP, interface) is reported on the later one and
 * names the earlier one.
 */
import ipaddr from 'ipaddr.js';
import { DIRECTIONS, type Net, type Netmodel, type Phys, type Rule, type RuleSpec, type Settings, type Virt } from '../model/netmodel.js';
import { formatLoc, type Located, type SourceLoc } from '../core/location.js';
import { interfaceNameProblem, ipFamily, isMulticastIp, macIsMulticast, macIsZero, normalizeIp, normalizeMac, parsePrefix, type IpFamily } from '../core/addr.js';
import { isNetworkType, NETWORK_TYPES, networkType, networkTypes, settingsPort } from '../types/registry.js';
import { icmpTypeNumber, parseMacMatch, parsePortRange } from '../core/rules.js';
import type { NetworkType, TypeCheckContext } from '../types/plugin.js';
import { hasErrors, type Problem, type Severity } from '../core/problem.js';

export { hasErrors };
import { analyzeAddresses, assignAddresses, type VirtAddressing } from '../ipam/ipam.js';
import { checkServing } from './serving.js';

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

/** The context name is embedded in the alias of every kernel object lsdn owns. */
export const CONTEXT_NAME_RE = /^[A-Za-z0-9_.-]{1,32}$/;
/** Longest name of a settings, net, phys or virt (names end up in kernel aliases, at most 255 bytes). */
export const MAX_NAME_LENGTH = 64;
export const MTU_MIN = 68;
export const MTU_MAX = 65535;
/** The smallest MTU IPv6 runs over (RFC 8200). */
export const IPV6_MIN_MTU = 1280;
export const RULE_PRIORITY_MAX = 32767;
/** LSDN's limit of IP/MAC matches in one rule. */
export const RULE_MAX_ADDR_MATCHES = 2;

const RULE_ACTIONS = ['drop', 'accept'];
const IP_PROTOS = ['tcp', 'udp', 'icmp', 'icmpv6', 'sctp'];
const PORT_PROTOS = ['tcp', 'udp', 'sctp'];
const ADDR_MATCHES = ['srcIp', 'dstIp', 'srcMac', 'dstMac'] as const;

/** Validate a model; every problem at once, in declaration order. */
export function validate(model: Netmodel, opts: ValidateOptions = {}): Problem[] {
  return new Validator(model, opts).run();
}

/**
 * `validate`, and the addresses of every virt it computed on the way (src/ipam's
 * `assignAddresses`, a pure function of the model): apply hands them to `compileHost` as the
 * `addressing` host fact, so that a plan assigns addresses once.
 */
export function validateWithAddressing(model: Netmodel, opts: ValidateOptions = {}): { problems: Problem[]; addressing: Map<string, VirtAddressing> } {
  const v = new Validator(model, opts);
  const problems = v.run();
  return { problems, addressing: v.addressing ?? assignAddresses(model) };
}

// ---------------------------------------------------------------------------------------------

function q(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

function isIntIn(v: unknown, lo: number, hi: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
}

function nameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_NAME_LENGTH) return `is ${name.length} characters long; at most ${MAX_NAME_LENGTH} are allowed`;
  if (/[\s:/\\]/.test(name) || [...name].some((c) => c.charCodeAt(0) < 32 || c.charCodeAt(0) === 127)) {
    return 'contains whitespace, a control character, ":", "/" or "\\" (lsdn uses them as separators)';
  }
  return undefined;
}

function familyName(f: IpFamily): string {
  return f === 4 ? 'IPv4' : 'IPv6';
}

function listNames(names: Iterable<string>): string {
  const a = [...names];
  return a.length ? a.map(q).join(', ') : 'none';
}

function where(loc: SourceLoc | undefined): string {
  return loc ? ` (${formatLoc(loc)})` : '';
}

const settingsLabel = (s: Settings): string => `settings ${s.name}`;
const netLabel = (n: Net): string => `net ${n.name}`;
const physLabel = (p: Phys): string => `phys ${p.name}`;
const virtLabel = (v: Virt): string => `virt ${v.id}`;
const ruleLabel = (r: Rule): string => `rule ${r.direction} ${String(r.spec.priority)} of virt ${r.virt.id}`;

/** A rule with every field parsed and normalized (host bits and MAC bits under the mask cleared). */
interface ParsedRule {
  /** What the rule matches: equal for two rules that match the same packets. */
  matchKey: string;
  /** The match fields with their prefix lengths / masks (LSDN's "layout"). */
  layout: string;
}

class Validator {
  private readonly problems: Problem[] = [];
  private readonly scope: Set<string> | undefined;
  /** The addresses checkAddressing computed (handed on by validateWithAddressing). */
  addressing: Map<string, VirtAddressing> | undefined;

  /** What the types' own checks see and write to (the same report). */
  private readonly typeChecks: TypeCheckContext;

  constructor(private readonly model: Netmodel, private readonly opts: ValidateOptions) {
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

  run(): Problem[] {
    this.checkScope();
    this.checkContext();
    for (const s of this.model.settings.values()) this.checkSettings(s);
    this.checkNets();
    this.checkPhyses();
    this.checkVirts();
    this.checkTaps();
    this.checkAddressing();
    // Address servers and public nets (src/services/validate.ts).
    checkServing(this.model, this.typeChecks);
    return this.problems;
  }

  /**
   * Subnets, static addresses against them, recorded allocations and the pools (src/ipam does
   * the assignment; its problems are located here). Allocated but unrecorded addresses warn.
   */
  private checkAddressing(): void {
    const { addressing, issues } = analyzeAddresses(this.model);
    this.addressing = addressing;
    for (const i of issues) this.add(i.severity, i.code, i.object, i.message, i.at, i.field);
    // One warning per net, naming its virts (10,000 new virts are one line, not 10,000).
    const byNet = new Map<Net, string[]>();
    for (const [id, a] of addressing) {
      if (a.v4?.source !== 'allocated') continue;
      const v = this.model.virt(id);
      if (!v) continue;
      const names = byNet.get(v.net) ?? [];
      names.push(v.name);
      byNet.set(v.net, names);
    }
    for (const [n, names] of byNet) {
      const one = names.length === 1;
      const shown = names.slice(0, 8).join(', ') + (names.length > 8 ? ` and ${names.length - 8} more` : '');
      this.warning('allocation-unrecorded', netLabel(n),
        `${one ? 'virt' : `${names.length} virts`} ${shown} ${one ? 'has an IPv4 address' : 'have IPv4 addresses'} allocated but not recorded in "allocations"; run \`lsdn allocate FILE\` to record ${one ? 'it' : 'them'} so ${one ? 'it stays' : 'they stay'} stable`,
        one ? n.virts.get(names[0]!) : n);
    }
  }

  // --- helpers --------------------------------------------------------------------------------

  private add(severity: Severity, code: string, object: string, message: string, at?: Located, field?: string): void {
    const p: Problem = { code, severity, message, object };
    const loc = at?.locOf(field);
    if (loc) p.loc = loc;
    this.problems.push(p);
  }

  private error(code: string, object: string, message: string, at?: Located, field?: string): void {
    this.add('error', code, object, message, at, field);
  }

  private warning(code: string, object: string, message: string, at?: Located, field?: string): void {
    this.add('warning', code, object, message, at, field);
  }

  private inScope(p: Phys): boolean {
    return this.scope ? this.scope.has(p.name) : true;
  }

  /** The settings a net uses, when they exist and are of a known type. */
  private settingsOf(n: Net): Settings | undefined {
    const s = n.effectiveSettings();
    if (!s || s.removed || this.model.settings.get(s.name) !== s || !isNetworkType(s.type)) return undefined;
    return s;
  }

  private typeOf(n: Net): NetworkType | undefined {
    const s = this.settingsOf(n);
    return s ? networkType(s.type) : undefined;
  }

  /** Does the type use the settings' multicast group? */
  private static usesGroup(t: NetworkType): boolean {
    return t.needsGroup || t.acceptsGroup === true;
  }

  /** The UDP port of a net; undefined for types without one, or when the settings' port is invalid. */
  private portOf(n: Net): number | undefined {
    const s = this.settingsOf(n);
    if (!s) return undefined;
    const t = networkType(s.type);
    if (t.defaultPort === undefined) return undefined;
    const p = settingsPort(s.type, s.options.port);
    return isIntIn(p, 1, 65535) ? p : undefined;
  }

  /** The id a net's packets carry: its vid, else its type's default (vxvde: the settings' vni, else 1). */
  private idOf(n: Net): number | undefined {
    const s = this.settingsOf(n);
    if (!s) return undefined;
    if (n.vid !== undefined) return n.vid;
    return networkType(s.type).defaultId?.(s.options);
  }

  /** The family of the net's multicast group, when it uses a valid one. */
  private groupFamily(n: Net): IpFamily | undefined {
    const s = this.settingsOf(n);
    if (!s || !Validator.usesGroup(networkType(s.type)) || s.options.mcastIp === undefined) return undefined;
    return isMulticastIp(s.options.mcastIp) ? ipFamily(s.options.mcastIp) : undefined;
  }

  /** Underlay family of phys `p` for net `n`: its IP's, else the group's, else IPv4. */
  private underlayFamily(p: Phys, n: Net): IpFamily {
    return (p.ip !== undefined ? ipFamily(p.ip) : undefined) ?? this.groupFamily(n) ?? 4;
  }

  /** The underlay MTU of a phys: declared, else the host's (for a phys in scope); undefined when unknown. */
  private underlayMtu(p: Phys): { mtu: number; from: string } | undefined {
    if (p.mtu !== undefined) return isIntIn(p.mtu, MTU_MIN, MTU_MAX) ? { mtu: p.mtu, from: 'its mtu' } : undefined;
    if (p.if === undefined || !this.inScope(p)) return undefined;
    const m = this.opts.host?.mtu?.get(p.if);
    return m !== undefined && Number.isFinite(m) ? { mtu: m, from: `the MTU of ${p.if} on this host` } : undefined;
  }

  /** The physes of the model in declaration order that `pred` selects. */
  private physesWhere(pred: (p: Phys) => boolean): Phys[] {
    return [...this.model.physes.values()].filter(pred);
  }

  private checkName(label: string, what: string, name: string, at: Located): void {
    const prob = nameProblem(name);
    if (prob) this.error('name-invalid', label, `${what} name ${q(name)} ${prob}`, at, 'name');
  }

  private checkMtu(code: string, label: string, mtu: number | undefined, at: Located): boolean {
    if (mtu === undefined) return false;
    if (!isIntIn(mtu, MTU_MIN, MTU_MAX)) {
      this.error(code, label, `mtu ${q(mtu)} is outside ${MTU_MIN}..${MTU_MAX}`, at, 'mtu');
      return false;
    }
    return true;
  }

  // --- scope and context ----------------------------------------------------------------------

  private checkScope(): void {
    for (const name of this.scope ?? []) {
      if (!this.model.physes.has(name)) {
        this.error('scope-phys-unknown', `phys ${name}`,
          `phys ${q(name)} to validate for is not in the model (physes: ${listNames(this.model.physes.keys())})`);
      }
    }
  }

  private checkContext(): void {
    const m = this.model;
    if (typeof m.name !== 'string' || !CONTEXT_NAME_RE.test(m.name)) {
      this.error('context-name-invalid', `context ${String(m.name)}`,
        `context name ${q(m.name)} must be 1 to 32 letters, digits, "_", "." or "-" (it is part of every kernel alias lsdn writes)`,
        m, 'name');
    }
  }

  // --- settings -------------------------------------------------------------------------------

  private checkSettings(s: Settings): void {
    const label = settingsLabel(s);
    this.checkName(label, 'settings', s.name, s);
    if (!isNetworkType(s.type)) {
      this.error('settings-type-unknown', label,
        `unknown network type ${q(s.type)} (known: ${NETWORK_TYPES.join(', ')})`, s, 'type');
      return;
    }
    const t = networkType(s.type);
    const o = s.options;
    const unused = (field: string, value: unknown): void =>
      this.warning('settings-option-unused', label, `${field} ${q(value)} is ignored by type ${t.name}`, s, field);

    if (o.port !== undefined) {
      if (!isIntIn(o.port, 1, 65535)) this.error('settings-port-invalid', label, `port ${q(o.port)} is outside 1..65535`, s, 'port');
      else if (t.defaultPort === undefined) unused('port', o.port);
    }

    if (o.mcastIp === undefined) {
      if (t.needsGroup) {
        this.error('settings-mcast-missing', label, `type ${t.name} needs a multicast group ("mcastIp")`, s, 'mcastIp');
      }
    } else if (!Validator.usesGroup(t)) {
      unused('mcastIp', o.mcastIp);
    } else if (typeof o.mcastIp !== 'string' || ipFamily(o.mcastIp) === undefined) {
      this.error('settings-mcast-invalid', label, `mcastIp ${q(o.mcastIp)} is not an IP address`, s, 'mcastIp');
    } else if (!isMulticastIp(o.mcastIp)) {
      this.error('settings-mcast-invalid', label,
        `mcastIp ${q(o.mcastIp)} is not a multicast address (IPv4 224.0.0.0/4, IPv6 ff00::/8)`, s, 'mcastIp');
    }

    if (o.ttl !== undefined && !isIntIn(o.ttl, 1, 255)) {
      this.error('settings-ttl-invalid', label, `ttl ${q(o.ttl)} is outside 1..255`, s, 'ttl');
    }

    // The options types own (vxvde: vni, iface).
    for (const owner of networkTypes()) owner.checks?.options?.(s, this.typeChecks);
  }

  /** Is a net of these settings attached to a phys in scope? */
  private usedOnScopedPhys(s: Settings): boolean {
    for (const n of this.model.nets.values()) {
      if (this.settingsOf(n) === s && [...n.physes].some((p) => this.inScope(p))) return true;
    }
    return false;
  }

  // --- nets -----------------------------------------------------------------------------------

  private checkNets(): void {
    /** First net by "family port id" (vxlan/geneve families) or "vlan id". */
    const ids = new Map<string, Net>();
    for (const n of this.model.nets.values()) {
      const label = netLabel(n);
      this.checkName(label, 'net', n.name, n);
      this.checkNetSettings(n, label);
      const t = this.typeOf(n);

      if (t) {
        if (n.vid !== undefined) {
          if (t.idRange && !isIntIn(n.vid, t.idRange[0], t.idRange[1])) {
            this.error('net-vid-invalid', label,
              `vid ${q(n.vid)} is outside ${t.name}'s range ${t.idRange[0]}..${t.idRange[1]}`, n, 'vid');
          }
        } else if (t.idRange && !t.defaultId) {
          this.error('net-vid-missing', label,
            `a ${t.name} net needs a vid (${t.idRange[0]}..${t.idRange[1]})`, n, 'vid');
        }
        const id = this.idOf(n);
        const port = this.portOf(n);
        if (t.idRange && isIntIn(id, t.idRange[0], t.idRange[1]) && (t.defaultPort === undefined || port !== undefined)) {
          const key = `${t.family} ${port ?? '-'} ${id}`;
          const first = ids.get(key);
          if (first) {
            const firstType = this.typeOf(first)?.name ?? '?';
            const on = port !== undefined ? ` on UDP port ${port}` : '';
            const implicit = n.vid === undefined ? ' (the vni of its settings)' : '';
            this.error('net-id-duplicate', label,
              `id ${id}${implicit}${on} is already used by net ${q(first.name)} (${firstType}); nets of the ${t.family} family${port !== undefined ? ' on one port' : ''} need distinct ids`,
              n, 'vid');
          } else {
            ids.set(key, n);
          }
        }
      }

      const mtuOk = this.checkMtu('net-mtu-invalid', label, n.mtu, n);
      const physes = this.physesWhere((p) => n.physes.has(p));
      if (physes.length === 0) {
        this.warning('net-no-physes', label, `net ${q(n.name)} is attached to no phys, so none of its virts can reach another`, n);
      }

      // Underlay IP families of the physes.
      const byFamily = new Map<IpFamily, Phys>();
      for (const p of physes) {
        const f = p.ip !== undefined ? ipFamily(p.ip) : undefined;
        if (f !== undefined && !byFamily.has(f)) byFamily.set(f, p);
      }
      const p4 = byFamily.get(4);
      const p6 = byFamily.get(6);
      if (p4 && p6) {
        this.error('net-mixed-ip-family', label,
          `its physes mix IPv4 and IPv6 underlay addresses: ${p4.name} has ${q(p4.ip)}, ${p6.name} has ${q(p6.ip)}`, n);
      }
      const gf = this.groupFamily(n);
      if (gf !== undefined) {
        const other = gf === 4 ? p6 : p4;
        if (other) {
          const s = this.settingsOf(n);
          this.error('net-mcast-family', label,
            `multicast group ${q(s?.options.mcastIp)} of settings ${q(s?.name)} is ${familyName(gf)}, but phys ${other.name} has the ${familyName(gf === 4 ? 6 : 4)} underlay address ${q(other.ip)}`,
            n, 'settings');
        }
      }

      if (t && mtuOk && n.mtu !== undefined) {
        for (const p of physes) {
          const u = this.underlayMtu(p);
          if (!u) continue;
          const oh = t.overhead(this.underlayFamily(p, n));
          if (n.mtu > u.mtu - oh) {
            this.error('mtu-too-large', label,
              `mtu ${n.mtu} exceeds what phys ${p.name} carries: ${u.from} ${u.mtu} minus ${oh} bytes of ${t.name} overhead is ${u.mtu - oh}`,
              n, 'mtu');
            break;
          }
        }
      }
    }
  }

  private checkNetSettings(n: Net, label: string): void {
    const m = this.model;
    if (n.settingsRef !== undefined) {
      const s = n.settings;
      if (!s || s.removed || m.settings.get(s.name) !== s) {
        const why = s?.removed ? 'was removed' : 'is not defined';
        this.error('net-settings-unknown', label,
          `settings ${q(n.settingsRef)} ${why} (settings: ${listNames(m.settings.keys())})`, n, 'settings');
      }
    } else if (!m.defaultSettings()) {
      this.error('net-settings-missing', label,
        m.settings.size === 0
          ? 'names no settings, and no settings are defined'
          : `names no settings, and there is no default among ${listNames(m.settings.keys())}: name the net's settings or call one "default"`,
        n, 'settings');
    }
  }

  // --- physes ---------------------------------------------------------------------------------

  private checkPhyses(): void {
    const ips = new Map<string, Phys>();
    const host = this.opts.host;
    for (const p of this.model.physes.values()) {
      const label = physLabel(p);
      this.checkName(label, 'phys', p.name, p);
      const nets = [...this.model.nets.values()].filter((n) => p.nets.has(n));
      const typed = nets.flatMap((n) => {
        const t = this.typeOf(n);
        return t ? [{ n, t }] : [];
      });
      if (nets.length === 0) {
        this.warning('phys-unattached', label, `phys ${q(p.name)} is attached to no net`, p);
      }

      if (p.if === undefined) {
        if (nets.length > 0 && this.inScope(p)) {
          this.error('phys-if-missing', label,
            `it is attached to net ${q(nets[0]?.name)} but has no underlay interface ("if")`, p, 'if');
        }
      } else {
        const prob = interfaceNameProblem(p.if);
        if (prob) this.error('phys-if-invalid', label, `interface name ${q(p.if)} ${prob}`, p, 'if');
        else if (host && nets.length > 0 && this.inScope(p) && !host.interfaces.has(p.if)) {
          this.error('underlay-interface-missing', label, `underlay interface ${q(p.if)} does not exist on this host`, p, 'if');
        }
      }

      if (p.ip === undefined) {
        const needing = typed.find(({ t }) => t.needsPhysIp);
        if (needing) {
          this.error('phys-ip-missing', label,
            `net ${q(needing.n.name)} is ${needing.t.name}, which needs an underlay IP ("ip") on each of its physes`, p, 'ip');
        }
      } else if (typeof p.ip !== 'string' || ipFamily(p.ip) === undefined) {
        this.error('phys-ip-invalid', label, `ip ${q(p.ip)} is not an IP address`, p, 'ip');
      } else {
        const norm = normalizeIp(p.ip) ?? p.ip;
        if (isMulticastIp(p.ip) || norm === '0.0.0.0' || norm === '::' || norm === '255.255.255.255') {
          this.error('phys-ip-invalid', label, `ip ${q(p.ip)} is not a unicast address`, p, 'ip');
        } else {
          const first = ips.get(norm);
          if (first) this.error('phys-ip-duplicate', label, `ip ${q(p.ip)} is also the ip of phys ${q(first.name)}`, p, 'ip');
          else ips.set(norm, p);
        }
      }

      this.checkMtu('phys-mtu-invalid', label, p.mtu, p);
      const u = this.underlayMtu(p);
      if (u) {
        let worst: { n: Net; t: NetworkType; oh: number } | undefined;
        for (const { n, t } of typed) {
          const oh = t.overhead(this.underlayFamily(p, n));
          if (!worst || oh > worst.oh) worst = { n, t, oh };
        }
        if (worst) {
          const left = u.mtu - worst.oh;
          const msg = `${u.from} ${u.mtu} minus ${worst.oh} bytes of ${worst.t.name} overhead (net ${q(worst.n.name)}) leaves ${left}`;
          const field = p.mtu !== undefined ? 'mtu' : 'if';
          if (left < MTU_MIN) {
            this.error('phys-mtu-too-small', label, `${msg}, below the minimum MTU ${MTU_MIN}`, p, field);
          } else if (left < IPV6_MIN_MTU) {
            this.warning('phys-mtu-below-ipv6-minimum', label,
              `${msg}, below ${IPV6_MIN_MTU}: the overlay cannot carry IPv6`, p, field);
          }
        }
      }

      // What types require of a phys carrying their nets (direct: no other net).
      for (const owner of networkTypes()) owner.checks?.phys?.(p, typed, this.typeChecks);

      this.checkPorts(p, label, typed);
    }
  }

  /** Nets on one phys that share a UDP port must be of one family, and (LSDN) agree on learning. */
  private checkPorts(p: Phys, label: string, typed: { n: Net; t: NetworkType }[]): void {
    const byPort = new Map<number, { n: Net; t: NetworkType }[]>();
    for (const e of typed) {
      const port = this.portOf(e.n);
      if (port === undefined) continue;
      const list = byPort.get(port) ?? [];
      list.push(e);
      byPort.set(port, list);
    }
    for (const [port, list] of byPort) {
      const first = list[0];
      if (!first) continue;
      const otherFamily = list.find((e) => e.t.family !== first.t.family);
      if (otherFamily) {
        this.error('port-family-clash', label,
          `nets ${q(first.n.name)} (${first.t.name}) and ${q(otherFamily.n.name)} (${otherFamily.t.name}) both use UDP port ${port}; one port can carry only one encapsulation`,
          p);
      }
      const vx = list.filter((e) => e.t.family === 'vxlan');
      const learning = vx.find((e) => e.t.learning);
      const fixed = vx.find((e) => !e.t.learning);
      if (learning && fixed) {
        this.error('port-learning-clash', label,
          `static net ${q(fixed.n.name)} (${fixed.t.name}) and learning net ${q(learning.n.name)} (${learning.t.name}) both use UDP port ${port}; give one of their settings another port`,
          p);
      }
    }
  }

  // --- virts ----------------------------------------------------------------------------------

  private checkVirts(): void {
    /** First virt by "phys\0if". */
    const ifs = new Map<string, Virt>();
    const host = this.opts.host;
    for (const n of this.model.nets.values()) {
      const t = this.typeOf(n);
      const macs = new Map<string, Virt>();
      const addrs = new Map<string, Virt>();
      for (const v of n.virts.values()) {
        const label = virtLabel(v);
        this.checkName(label, 'virt', v.name, v);

        // Connection.
        let phys: Phys | undefined;
        if (v.physRef !== undefined) {
          const p = v.phys;
          if (!p || this.model.physes.get(p.name) !== p) {
            this.error('virt-phys-unknown', label, `it is connected through phys ${q(v.physRef)}, which is not defined`, v, 'phys');
          } else {
            phys = p;
            if (!n.physes.has(p)) {
              this.error('virt-phys-not-attached', label,
                `it is connected through phys ${q(p.name)}, which is not attached to net ${q(n.name)}`, v, 'phys');
            }
          }
        }
        if (v.if === undefined) {
          if (phys && this.inScope(phys)) {
            this.error('virt-if-missing', label, `it is connected to phys ${q(phys.name)} but has no interface ("if")`, v, 'if');
          }
        } else {
          const prob = interfaceNameProblem(v.if);
          if (prob) {
            this.error('virt-if-invalid', label, `interface name ${q(v.if)} ${prob}`, v, 'if');
          } else if (phys) {
            const key = `${phys.name}\0${v.if}`;
            const first = ifs.get(key);
            if (first) {
              this.error('virt-if-duplicate', label,
                `interface ${q(v.if)} on phys ${q(phys.name)} is already the interface of virt ${first.id}`, v, 'if');
            } else {
              ifs.set(key, v);
            }
            if (v.if === phys.if) {
              this.error('virt-if-is-underlay', label,
                `interface ${q(v.if)} is the underlay interface of phys ${q(phys.name)}`, v, 'if');
            } else if (host && this.inScope(phys) && !host.interfaces.has(v.if) && !v.tap) {
              // (a `tap` virt's interface is created by apply)
              this.error('interface-missing', label, `interface ${q(v.if)} does not exist on this host (phys ${phys.name})`, v, 'if');
            }
          }
        }

        // MAC.
        if (v.mac === undefined) {
          if (t?.needsMac) {
            this.error('virt-mac-missing', label,
              `net ${q(n.name)} is ${t.name}, which programs every MAC: the virt needs a "mac"`, v, 'mac');
          }
        } else {
          const mac = typeof v.mac === 'string' ? normalizeMac(v.mac) : undefined;
          if (!mac) {
            this.error('virt-mac-invalid', label, `MAC ${q(v.mac)} is malformed (expected six hex pairs, like 02:00:00:00:00:01)`, v, 'mac');
          } else if (macIsZero(mac)) {
            this.error('virt-mac-invalid', label, `MAC ${q(v.mac)} is all zeros`, v, 'mac');
          } else if (macIsMulticast(mac)) {
            this.error('virt-mac-invalid', label, `MAC ${q(v.mac)} is a multicast address (its first byte is odd)`, v, 'mac');
          } else {
            const first = macs.get(mac);
            if (first) this.error('virt-mac-duplicate', label, `MAC ${q(v.mac)} is also the MAC of virt ${first.id} in net ${q(n.name)}`, v, 'mac');
            else macs.set(mac, v);
          }
        }

        // Addresses.
        for (const a of v.ips) {
          const pre = typeof a === 'string' && a.includes('/') ? parsePrefix(a) : undefined;
          if (!pre) {
            this.error('virt-ip-invalid', label, `address ${q(a)} is not an IP address with a prefix length (like "10.0.0.1/24")`, v, 'ips');
            continue;
          }
          const first = addrs.get(pre.ip);
          if (first && first !== v) this.error('virt-ip-duplicate', label, `address ${q(a)} is also an address of virt ${first.id} in net ${q(n.name)}`, v, 'ips');
          else if (!first) addrs.set(pre.ip, v);
        }

        // MTU.
        if (this.checkMtu('virt-mtu-invalid', label, v.mtu, v) && v.mtu !== undefined && phys && t) {
          const u = this.underlayMtu(phys);
          if (u) {
            const oh = t.overhead(this.underlayFamily(phys, n));
            if (v.mtu > u.mtu - oh) {
              this.error('mtu-too-large', label,
                `mtu ${v.mtu} exceeds what phys ${phys.name} carries: ${u.from} ${u.mtu} minus ${oh} bytes of ${t.name} overhead is ${u.mtu - oh}`,
                v, 'mtu');
            }
          }
        }

        this.checkRules(v);
        this.checkRates(v, label);
        this.checkPolicy(v, label);
      }
    }
  }

  // --- rules ----------------------------------------------------------------------------------

  private checkRules(v: Virt): void {
    const byMatch = new Map<string, Rule>();
    const layouts = new Map<string, { layout: string; rule: Rule }>();
    for (const r of v.rules) {
      const parsed = this.checkRule(r);
      if (!parsed) continue;
      const group = `${r.direction} ${r.spec.priority}`;
      const matchKey = `${group} ${parsed.matchKey}`;
      const same = byMatch.get(matchKey);
      if (same) {
        const act = same.spec.action !== r.spec.action ? ` with action ${q(same.spec.action)}` : '';
        this.error('rule-duplicate', ruleLabel(r),
          `${describeRule(r.spec)} matches the same packets as an earlier rule of priority ${r.spec.priority}${act}${where(same.loc)}`,
          r);
        continue;
      }
      byMatch.set(matchKey, r);
      const first = layouts.get(group);
      if (!first) {
        layouts.set(group, { layout: parsed.layout, rule: r });
      } else if (first.layout !== parsed.layout) {
        this.error('rule-layout-mismatch', ruleLabel(r),
          `it matches ${parsed.layout}, but an earlier rule of priority ${r.spec.priority} (${r.direction}) matches ${first.layout}${where(first.rule.loc)}; rules of one priority must use the same match fields and masks`,
          r);
      }
    }
  }

  /** Check one rule; its parsed form when every field is valid. */
  private checkRule(r: Rule): ParsedRule | undefined {
    const s = r.spec;
    const label = ruleLabel(r);
    let ok = true;
    const err = (code: string, msg: string, field: string): void => {
      ok = false;
      this.error(code, label, msg, r, field);
    };

    if (!isIntIn(s.priority, 0, RULE_PRIORITY_MAX)) err('rule-priority-invalid', `priority ${q(s.priority)} is outside 0..${RULE_PRIORITY_MAX}`, 'priority');
    if (!RULE_ACTIONS.includes(s.action)) err('rule-action-invalid', `action ${q(s.action)} is not one of ${RULE_ACTIONS.join(', ')}`, 'action');
    if (s.proto !== undefined && !IP_PROTOS.includes(s.proto)) err('rule-proto-invalid', `proto ${q(s.proto)} is not one of ${IP_PROTOS.join(', ')}`, 'proto');

    const key: string[] = [];
    const layout: string[] = [];
    const fams = new Map<string, IpFamily>();
    for (const f of ['srcIp', 'dstIp'] as const) {
      const text = s[f];
      if (text === undefined) continue;
      const pre = typeof text === 'string' ? parsePrefix(text) : undefined;
      if (!pre) {
        err('rule-ip-invalid', `${f} ${q(text)} is not an IP address or prefix (like "10.0.0.0/24")`, f);
        continue;
      }
      fams.set(f, pre.family);
      const net = (pre.family === 4 ? ipaddr.IPv4 : ipaddr.IPv6).networkAddressFromCIDR(`${pre.ip}/${pre.len}`).toString();
      key.push(`${f}=${net}/${pre.len}`);
      layout.push(`${f} ${familyName(pre.family)}/${pre.len}`);
    }
    for (const f of ['srcMac', 'dstMac'] as const) {
      const text = s[f];
      if (text === undefined) continue;
      const m = typeof text === 'string' ? parseMacMatch(text) : undefined;
      if (!m) {
        err('rule-mac-invalid', `${f} ${q(text)} is not a MAC or MAC/MASK (like "02:00:00:00:00:00/ff:ff:ff:00:00:00")`, f);
        continue;
      }
      key.push(`${f}=${m.mac}/${m.mask}`);
      layout.push(`${f}/${m.mask}`);
    }

    const used = ADDR_MATCHES.filter((f) => s[f] !== undefined);
    if (used.length > RULE_MAX_ADDR_MATCHES) {
      err('rule-too-many-matches', `it matches ${used.join(', ')}; a rule may use at most ${RULE_MAX_ADDR_MATCHES} of srcIp, dstIp, srcMac, dstMac`, used[RULE_MAX_ADDR_MATCHES] ?? 'srcIp');
    }

    const src = fams.get('srcIp');
    const dst = fams.get('dstIp');
    if (src !== undefined && dst !== undefined && src !== dst) {
      err('rule-ip-family-mismatch', `srcIp ${q(s.srcIp)} is ${familyName(src)} but dstIp ${q(s.dstIp)} is ${familyName(dst)}`, 'dstIp');
    } else {
      const fam = src ?? dst;
      const field = src !== undefined ? 'srcIp' : 'dstIp';
      if (s.proto === 'icmp' && fam === 6) err('rule-ip-family-mismatch', `proto "icmp" is IPv4's, but ${field} ${q(s[field])} is IPv6 (use "icmpv6")`, 'proto');
      if (s.proto === 'icmpv6' && fam === 4) err('rule-ip-family-mismatch', `proto "icmpv6" is IPv6's, but ${field} ${q(s[field])} is IPv4 (use "icmp")`, 'proto');
    }

    if (s.proto !== undefined) key.push(`proto=${s.proto}`);
    for (const f of ['srcPort', 'dstPort'] as const) {
      const v = s[f];
      if (v === undefined) continue;
      const range = typeof v === 'number' || typeof v === 'string' ? parsePortRange(v) : undefined;
      if (!range) {
        err('rule-port-invalid', `${f} ${q(v)} is not a port or a range "lo-hi" within 0..65535`, f);
        continue;
      }
      if (s.proto === undefined || !PORT_PROTOS.includes(s.proto)) {
        err('rule-port-without-proto', `${f} ${q(v)} needs proto tcp, udp or sctp${s.proto !== undefined ? ` (not ${q(s.proto)})` : ''}`, f);
      }
      key.push(`${f}=${range[0]}-${range[1]}`);
      layout.push(range[0] === range[1] ? f : `${f} range`);
    }
    if (s.proto !== undefined) layout.push('proto');
    if (s.icmpType !== undefined) {
      if (s.proto !== 'icmp' && s.proto !== 'icmpv6') {
        err('rule-icmp-without-proto', `icmpType ${q(s.icmpType)} needs proto icmp or icmpv6${s.proto !== undefined ? ` (not ${q(s.proto)})` : ''}`, 'icmpType');
      } else {
        const n = typeof s.icmpType === 'number' || typeof s.icmpType === 'string' ? icmpTypeNumber(s.proto, s.icmpType) : undefined;
        if (n === undefined) {
          err('rule-icmp-type-invalid', `icmpType ${q(s.icmpType)} is neither a number 0..255 nor a known ${s.proto} type name`, 'icmpType');
        } else {
          key.push(`icmpType=${n}`);
          layout.push('icmpType');
        }
      }
    }
    if (!ok) return undefined;
    return { matchKey: key.join(' '), layout: layout.length ? layout.join(', ') : 'everything' };
  }

  // --- policy ---------------------------------------------------------------------------------

  private checkPolicy(v: Virt, label: string): void {
    for (const dir of DIRECTIONS) {
      const a = v.policy[dir];
      if (!RULE_ACTIONS.includes(a)) {
        this.error('virt-policy-invalid', label, `policy ${dir} ${q(a)} is not one of ${RULE_ACTIONS.join(', ')}`, v, 'policy');
      }
    }
    if (v.stateful && v.mac === undefined) {
      this.error('virt-stateful-needs-mac', label,
        'it is stateful, which recognizes replies toward the VM by its MAC: give the virt a "mac"', v, 'stateful');
    }
  }

  // --- rates ----------------------------------------------------------------------------------

  /** Taps lsdn creates for VMs (virt option `tap`, src/vm/tap.ts). */
  private checkTaps(): void {
    for (const v of this.model.virts()) {
      const t = v.tap;
      if (!t) continue;
      const label = virtLabel(v);
      if (v.connected && v.if === undefined) {
        this.error('virt-tap-no-if', label, 'it asks for a tap ("tap") but names no interface ("if") for it', v, 'tap');
      }
      if (t.queues !== undefined && (!Number.isInteger(t.queues) || t.queues < 1 || t.queues > 256)) {
        this.error('virt-tap-queues-invalid', label, `tap queues ${q(t.queues)} is not a whole number from 1 to 256`, v, 'tap');
      }
      for (const [what, value] of [['user', t.user], ['group', t.group]] as const) {
        if (value !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(value)) {
          this.error('virt-tap-owner-invalid', label, `tap ${what} ${q(value)} is not a user/group name or number`, v, 'tap');
        }
      }
    }
  }

  private checkRates(v: Virt, virtText: string): void {
    for (const dir of DIRECTIONS) {
      const r = v.rates[dir];
      if (!r) continue;
      const label = `rate ${dir} of ${virtText}`;
      const { avg, burst, peak } = r.spec;
      const avgOk = typeof avg === 'number' && Number.isFinite(avg) && avg > 0;
      if (!avgOk) this.error('rate-avg-invalid', label, `avg ${q(avg)} bit/s is not a positive rate`, r, 'avg');
      const burstOk = typeof burst === 'number' && Number.isFinite(burst) && burst > 0;
      if (!burstOk) this.error('rate-burst-invalid', label, `burst ${q(burst)} bytes is not a positive size`, r, 'burst');
      if (peak !== undefined) {
        if (typeof peak !== 'number' || !Number.isFinite(peak) || peak < 0) {
          this.error('rate-peak-invalid', label, `peak ${q(peak)} bit/s is not a rate (it is negative or not a number)`, r, 'peak');
        } else if (avgOk && peak < avg) {
          this.error('rate-peak-invalid', label, `peak ${peak} bit/s is lower than avg ${avg} bit/s`, r, 'peak');
        }
      }
      // tc keeps a token bucket's size as the time it takes to fill at the average rate, in
      // 32-bit kernel ticks: past ~274.9 s it silently wraps (and the next apply sees drift).
      if (burstOk && avgOk && (burst * 8) / avg > MAX_BUCKET_SECONDS) {
        this.error('rate-burst-too-long', label,
          `burst ${burst} bytes takes ${Math.round((burst * 8) / avg)} s to earn at avg ${avg} bit/s; tc cannot hold a bucket of more than ${MAX_BUCKET_SECONDS} s (raise avg or lower burst)`,
          r, 'burst');
      }
      if (burstOk) {
        const mtu = v.mtu ?? v.net.mtu ?? 1500;
        if (burst < mtu) {
          this.warning('rate-burst-below-mtu', label,
            `burst ${burst} bytes is smaller than the MTU ${mtu}: larger packets can never pass`, r, 'burst');
        }
      }
    }
  }
}

/** A rule in words, for messages: "drop srcIp 10.0.0.0/24 proto tcp dstPort 22". */
function describeRule(s: RuleSpec): string {
  const parts: string[] = [String(s.action)];
  for (const f of ['srcIp', 'dstIp', 'srcMac', 'dstMac', 'proto', 'srcPort', 'dstPort', 'icmpType'] as const) {
    if (s[f] !== undefined) parts.push(`${f} ${String(s[f])}`);
  }
  return q(parts.join(' '));
}
