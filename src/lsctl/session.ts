/**
 * The Node side of lsctl: holds the netmodel of one script run and executes the commands the
 * Tcl prelude (prelude.tcl) sends, one request at a time. The prelude has already parsed the
 * options and checked scopes; this side resolves names, changes the model through the builder
 * API, validates, commits and prints (through the answer, so the output keeps its order with
 * the script's own).
 */
import { Netmodel, type Direction, type Net, type Phys, type RuleSpec, type SettingsOptions, type Virt } from '../model/netmodel.js';
import { isNetworkType, networkType, settingsShorthands } from '../types/registry.js';
import type { SourceLoc } from '../core/location.js';
import { parseRate, parseSize } from '../model/units.js';
import { validate, hasErrors } from '../validate/validate.js';
import { formatProblem, type Problem } from '../core/problem.js';
import { dumpLsdnJson, dumpYaml } from '../file/dump.js';
import { dumpLsctl, tclList } from './dump.js';
import { LsctlError } from '../core/errors.js';

/** One request of the prelude. Option values are strings ("1" for flags), lists for -ip. */
export interface LsctlRequest {
  cmd: string;
  opts: Record<string, string | string[]>;
  args: string[];
  ctx: { net?: string; phys?: string; virt?: [string, string] };
  loc?: { file: string; line: number };
}

/** What to do for a command: text for stdout/stderr, then a result or an error message. */
export interface LsctlAnswer {
  out: string[];
  err: string[];
  result?: string;
  error?: string;
}

/** What commit and cleanup do to the host; the script-to-model converter passes no-ops. */
export interface LsctlHost {
  /** Configure this host as phys `phys` of the model; returns warnings, throws on failure. */
  commit(model: Netmodel, phys: Phys, print: (s: string) => void): Promise<void>;
  /** Remove what the model's context owns on this host. */
  cleanup(model: Netmodel, print: (s: string) => void): Promise<void>;
}

const fail = (msg: string): never => {
  throw new LsctlError(msg);
};

function list(names: Iterable<string>): string {
  const a = [...names];
  return a.length ? a.map((n) => `"${n}"`).join(', ') : 'none';
}

function str(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(' ') : v;
}

/** A decimal integer the prelude has checked already. */
function int(v: string | string[] | undefined): number | undefined {
  const s = str(v);
  return s === undefined ? undefined : Number(s);
}

/** A port or ICMP type: a number when it is one, else the text (a range, a name). */
function numOrText(v: string | undefined): number | string | undefined {
  if (v === undefined) return undefined;
  return /^\d+$/.test(v) ? Number(v) : v;
}

/** One option of an lsdn:: command: the model field it sets (for its location too), and how its value reads. */
interface OptionSpec {
  opt: string;
  field: string;
  read?: (v: string | string[] | undefined) => unknown;
}

/**
 * The options of each command that set a model field, once: the values they give and where
 * they were written (a field's location is its command's place). Options without a field
 * (-remove, -net, -phys as a scope, -...Clear) are the commands' own.
 */
const OPTIONS = {
  settings: [
    { opt: '-name', field: 'name' },
    { opt: '-port', field: 'port', read: int },
    { opt: '-mcastIp', field: 'mcastIp', read: str },
    { opt: '-ttl', field: 'ttl', read: int },
    { opt: '-vni', field: 'vni', read: int },
    { opt: '-if', field: 'iface', read: str },
  ],
  net: [
    { opt: '-vid', field: 'vid' },
    { opt: '-settings', field: 'settings' },
    { opt: '-mtu', field: 'mtu', read: int },
  ],
  phys: [
    { opt: '-if', field: 'if', read: str },
    { opt: '-ip', field: 'ip', read: str },
    { opt: '-mtu', field: 'mtu', read: int },
  ],
  virt: [
    { opt: '-mac', field: 'mac' },
    { opt: '-if', field: 'if' },
    { opt: '-ip', field: 'ips' },
    { opt: '-mtu', field: 'mtu' },
    { opt: '-phys', field: 'phys' },
  ],
  rule: [
    ...(['srcIp', 'dstIp', 'srcMac', 'dstMac'] as const).map((f) => ({ opt: `-${f}`, field: f, read: str })),
    { opt: '-proto', field: 'proto', read: str },
    ...(['srcPort', 'dstPort', 'icmpType'] as const).map((f) => ({ opt: `-${f}`, field: f, read: (v: string | string[] | undefined) => numOrText(str(v)) })),
  ],
  rate: [
    { opt: '-avg', field: 'avg' },
    { opt: '-burst', field: 'burst' },
    { opt: '-burstRate', field: 'peak' },
  ],
} satisfies Record<string, OptionSpec[]>;

/** The values of the options given (those with a reader), by field. */
function optionValues(req: LsctlRequest, specs: readonly OptionSpec[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of specs) if (o.read && req.opts[o.opt] !== undefined) out[o.field] = o.read(req.opts[o.opt]);
  return out;
}

/** Settings written as a type's URL (the file's shorthands: vxvde://...): the type and its options. */
function settingsFromUrl(url: string): { type: string; options: SettingsOptions } {
  const tried = settingsShorthands().map((sh) => sh.parse(url));
  const parsed = tried.find((r): r is { type: string } & Record<string, unknown> => !('error' in r));
  if (!parsed) return fail(`settings: ${tried.map((r) => (r as { error: string }).error).join('; ') || `no network type is written as a URL ("${url}")`}`);
  const t = isNetworkType(parsed.type) ? networkType(parsed.type) : undefined;
  const options = Object.fromEntries(Object.entries(t?.file?.fromFile(parsed) ?? {}).filter(([, v]) => v !== undefined)) as SettingsOptions;
  return { type: parsed.type, options };
}

/** LSDN's rates: a bare number is bytes per second; units as tc's (1024-based). */
export function parseLsctlRate(text: string): number {
  return /^\s*\d+(\.\d+)?\s*$/.test(text) ? parseRate(`${text.trim()}bps`) : parseRate(text);
}

export class LsctlSession {
  model: Netmodel;
  /** YAML of the model at each commit (kept when `keepCommits`). */
  readonly commits: string[] = [];

  constructor(
    private readonly host: LsctlHost,
    private readonly opts: {
      keepCommits?: boolean;
      /** commit validates first (default); converting a script keeps even an invalid model. */
      validateOnCommit?: boolean;
      contextName?: string;
    } = {},
  ) {
    this.model = new Netmodel(opts.contextName ?? 'lsdn');
  }

  async handle(req: LsctlRequest): Promise<LsctlAnswer> {
    const answer: LsctlAnswer = { out: [], err: [] };
    try {
      answer.result = (await this.run(req, answer)) ?? '';
    } catch (e) {
      if (e instanceof LsctlError) answer.error = e.message;
      else answer.error = `${req.cmd}: ${e instanceof Error ? e.message : String(e)}`;
    }
    return answer;
  }

  private loc(req: LsctlRequest): SourceLoc | undefined {
    return req.loc ? { file: req.loc.file, line: req.loc.line, col: 1 } : undefined;
  }

  /** Field locations: every option given on the command, at the command's place. */
  private fields(req: LsctlRequest, specs: readonly OptionSpec[]): Record<string, SourceLoc | undefined> {
    const loc = this.loc(req);
    const out: Record<string, SourceLoc | undefined> = {};
    for (const o of specs) if (o.opt in req.opts) out[o.field] = loc;
    return out;
  }

  private settingsNamed(cmd: string, name: string): void {
    if (!this.model.settings.has(name)) {
      fail(`${cmd}: settings "${name}" are not defined${this.model.settings.size ? ` (settings: ${list(this.model.settings.keys())})` : ' (no settings are defined yet)'}; define them before referring to them`);
    }
  }

  private net(cmd: string, name: string): Net {
    return this.model.net(name) ?? fail(`${cmd}: net "${name}" is not defined (nets: ${list(this.model.nets.keys())}); define a net before referring to it`);
  }

  private phys(cmd: string, name: string): Phys {
    return this.model.phys(name) ?? fail(`${cmd}: phys "${name}" is not defined (physes: ${list(this.model.physes.keys())}); define a phys before referring to it`);
  }

  private virtOf(req: LsctlRequest): Virt {
    const [net, name] = req.ctx.virt ?? fail(`${req.cmd}: not in a virt body`);
    return this.model.net(net)?.virts.get(name) ?? fail(`${req.cmd}: virt "${name}" of net "${net}" no longer exists`);
  }

  /** "_1", "_2"...: names of objects created without -name, unique among `taken` (in the names' alphabet: core/charset.ts). */
  private generatedName(taken: { has(name: string): boolean }): string {
    for (let i = 1; ; i++) if (!taken.has(`_${i}`)) return `_${i}`;
  }

  private printProblems(problems: Problem[], a: LsctlAnswer): void {
    for (const p of problems) a.err.push(`${formatProblem(p)}\n`);
  }

  private async run(req: LsctlRequest, a: LsctlAnswer): Promise<string | undefined> {
    const o = req.opts;
    const loc = this.loc(req);
    switch (req.cmd) {
      case 'context': {
        this.model.name = req.args[0] ?? '';
        return;
      }

      case 'settings': {
        const name = str(o['-name']) ?? 'default';
        if (o['-remove'] !== undefined) {
          const s = this.model.settings.get(name) ?? fail(`settings: settings "${name}" are not defined (settings: ${list(this.model.settings.keys())})`);
          s.remove();
          return;
        }
        const word = req.args[0] ?? '';
        // A type's URL (vxvde://GROUP/port=P/...): its type and options, as the file's shorthand reads it.
        const url = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(word) ? settingsFromUrl(word) : undefined;
        const type = url?.type ?? word;
        if (!isNetworkType(type)) fail(`settings: unknown network type "${type}"`);
        if (this.model.settings.has(name)) {
          fail(o['-name'] === undefined
            ? 'settings: the default settings (unnamed) are defined already; give the new settings a -name'
            : `settings: settings "${name}" are defined already`);
        }
        if (!isNetworkType(type)) return;
        const options = url ? url.options : (optionValues(req, OPTIONS.settings) as SettingsOptions);
        const fieldLocs = url ? Object.fromEntries(Object.keys(url.options).map((k) => [k, loc])) : this.fields(req, OPTIONS.settings);
        this.model
          .addSettings(type, { name, ...options })
          .setLoc(loc, { type: loc, ...fieldLocs, ...(o['-name'] !== undefined ? { name: loc } : {}) });
        return;
      }

      case 'net': {
        const name = req.args[0] ?? '';
        if (o['-remove'] !== undefined) {
          this.net('net', name).remove();
          return;
        }
        const settings = str(o['-settings']);
        if (settings !== undefined) this.settingsNamed('net', settings);
        const physName = req.ctx.phys ?? str(o['-phys']);
        const phys = physName !== undefined ? this.phys('net', physName) : undefined;
        const existing = this.model.net(name);
        if (!existing && settings === undefined && !this.model.defaultSettings()) {
          fail(this.model.settings.size === 0
            ? `net: no settings are defined yet: define them first (settings TYPE), or name them with -settings`
            : `net: there are no default settings among ${list(this.model.settings.keys())}: give the net -settings NAME, or define unnamed settings first`);
        }
        const vid = o['-vid'] !== undefined ? int(o['-vid']) : !existing && /^\d+$/.test(name) ? Number(name) : undefined;
        const net = this.model.addNet(name, {
          ...(vid !== undefined ? { vid } : {}),
          ...(settings !== undefined ? { settings } : {}),
          ...optionValues(req, OPTIONS.net),
        });
        if (!existing) net.setLoc(loc, { name: loc, vid: loc });
        net.setLoc(undefined, this.fields(req, OPTIONS.net));
        if (phys) net.attach(phys);
        return net.name;
      }

      case 'phys': {
        const given = str(o['-name']);
        if (o['-remove'] !== undefined) {
          this.phys('phys', given ?? '').remove();
          return;
        }
        const netName = req.ctx.net ?? str(o['-net']);
        const net = netName !== undefined ? this.net('phys', netName) : undefined;
        const name = given ?? this.generatedName(this.model.physes);
        const existing = this.model.phys(name);
        const phys = this.model.addPhys(name, {
          ...(o['-ifClear'] !== undefined ? { if: undefined } : {}),
          ...(o['-ipClear'] !== undefined ? { ip: undefined } : {}),
          ...optionValues(req, OPTIONS.phys),
        });
        if (!existing) phys.setLoc(loc, { name: loc });
        phys.setLoc(undefined, this.fields(req, OPTIONS.phys));
        if (net) net.attach(phys);
        return phys.name;
      }

      case 'virt': {
        const netName = req.ctx.net ?? str(o['-net']) ?? fail('virt: which net? Give -net NET, or put the virt in a net body');
        const net = this.net('virt', netName);
        const given = str(o['-name']);
        if (o['-remove'] !== undefined) {
          const v = net.virts.get(given ?? '') ?? fail(`virt: net "${net.name}" has no virt "${given}" (virts: ${list(net.virts.keys())})`);
          v.remove();
          return;
        }
        const physName = req.ctx.phys ?? str(o['-phys']);
        const phys = physName !== undefined ? this.phys('virt', physName) : undefined;
        const name = given ?? this.generatedName(net.virts);
        const existing = net.virts.get(name);
        const virt = net.virt(name);
        if (o['-mac'] !== undefined) virt.mac = str(o['-mac']);
        if (o['-macClear'] !== undefined) virt.mac = undefined;
        if (o['-ip'] !== undefined) virt.ips = Array.isArray(o['-ip']) ? [...o['-ip']] : [o['-ip']];
        if (o['-mtu'] !== undefined) virt.mtu = int(o['-mtu']);
        const ifname = o['-if'] !== undefined ? str(o['-if']) : virt.if;
        if (phys) virt.connect(phys, ifname);
        else if (o['-if'] !== undefined) virt.connect(virt.phys ?? virt.physRef, ifname);
        if (!existing) virt.setLoc(loc, { name: loc });
        virt.setLoc(undefined, {
          ...this.fields(req, OPTIONS.virt),
          ...(req.ctx.phys !== undefined ? { phys: loc } : {}),
        });
        return tclList([net.name, virt.name]);
      }

      case 'attach':
      case 'detach': {
        const cmd = req.cmd;
        const netName = req.ctx.net ?? str(o['-net']);
        const physName = req.ctx.phys ?? str(o['-phys']);
        const pairs: [Phys, Net][] = [];
        if (netName !== undefined && physName !== undefined) {
          if (req.args.length) {
            fail(`${cmd}: the phys and the net are both given already (by option or body); unexpected arguments: ${req.args.join(' ')}`);
          }
          pairs.push([this.phys(cmd, physName), this.net(cmd, netName)]);
        } else if (netName !== undefined) {
          const net = this.net(cmd, netName);
          if (!req.args.length) fail(`${cmd}: which phys? Give -phys P, PHYS names as arguments, or use ${cmd} in a phys body`);
          for (const p of req.args) pairs.push([this.phys(cmd, p), net]);
        } else if (physName !== undefined) {
          const phys = this.phys(cmd, physName);
          if (!req.args.length) fail(`${cmd}: which net? Give -net N, NET names as arguments, or use ${cmd} in a net body`);
          for (const n of req.args) pairs.push([phys, this.net(cmd, n)]);
        } else {
          fail(`${cmd}: give -phys P -net N, -phys P NET..., or -net N PHYS... (or use ${cmd} in a net or phys body)`);
        }
        for (const [p, n] of pairs) {
          if (cmd === 'attach') n.attach(p);
          else n.detach(p);
        }
        return;
      }

      case 'claimLocal': {
        const one = req.ctx.phys ?? str(o['-phys']);
        if (one !== undefined && req.args.length) {
          fail(`claimLocal: ${req.ctx.phys !== undefined ? 'in a phys body' : 'with -phys'} it takes no list of physes (got: ${req.args.join(' ')})`);
        }
        const names = one !== undefined ? [one] : req.args;
        if (!names.length) fail('claimLocal: which phys? Give PHYS names, -phys P, or use claimLocal in a phys body');
        const physes = names.map((n) =>
          this.model.phys(n) ??
          fail(`claimLocal: phys "${n}" is not defined (physes: ${list(this.model.physes.keys())})${n === '' ? '; a script claiming [lindex $argv 0] needs the phys name as its argument' : ''}`));
        for (const p of physes) this.model.claimLocal(p);
        return;
      }

      case 'rule': {
        const virt = this.virtOf(req);
        const [dir, prio, action] = req.args as [Direction, string, 'drop' | 'accept'];
        const spec: RuleSpec = { priority: Number(prio), action, ...(optionValues(req, OPTIONS.rule) as Partial<RuleSpec>) };
        virt.rule(dir, spec).setLoc(loc, { priority: loc, action: loc, ...this.fields(req, OPTIONS.rule) });
        return;
      }

      case 'rate': {
        const virt = this.virtOf(req);
        const dir = req.args[0] as Direction;
        const parse = (opt: string, f: (s: string) => number): number => {
          try {
            return f(str(o[opt]) ?? '');
          } catch (e) {
            return fail(`rate: ${opt}: ${(e as Error).message}`);
          }
        };
        const avg = parse('-avg', parseLsctlRate);
        const burst = parse('-burst', parseSize);
        const peak = o['-burstRate'] !== undefined ? parse('-burstRate', parseLsctlRate) : undefined;
        virt.rate(dir, { avg, burst, ...(peak !== undefined ? { peak } : {}) });
        virt.rates[dir]?.setLoc(loc, this.fields(req, OPTIONS.rate));
        return;
      }

      case 'flushVr': {
        this.virtOf(req).flushRulesAndRates();
        return;
      }

      case 'validate': {
        const problems = validate(this.model, this.scope());
        this.printProblems(problems, a);
        const errors = problems.filter((p) => p.severity === 'error').length;
        if (errors) fail(`validate: the model has ${errors} problem(s)`);
        return;
      }

      case 'commit': {
        if (this.opts.validateOnCommit ?? true) {
          const problems = validate(this.model, this.scope());
          this.printProblems(problems, a);
          if (hasErrors(problems)) {
            fail(`commit: the model is invalid (${problems.filter((p) => p.severity === 'error').length} problem(s)); nothing was changed`);
          }
        }
        const local = [...this.model.localPhyses];
        if (local.length > 1 && (this.opts.validateOnCommit ?? true)) {
          fail(`commit: more than one phys is claimed local (${local.map((p) => p.name).join(', ')}); lsdn configures one phys per host`);
        }
        if (this.opts.keepCommits) this.commits.push(dumpYaml(this.model));
        if (local[0]) await this.host.commit(this.model, local[0], (s) => a.err.push(s.endsWith('\n') ? s : `${s}\n`));
        return;
      }

      case 'cleanup': {
        await this.host.cleanup(this.model, (s) => a.err.push(s.endsWith('\n') ? s : `${s}\n`));
        this.model = new Netmodel(this.model.name);
        return;
      }

      case 'free': {
        this.model = new Netmodel(this.model.name);
        return;
      }

      case 'show': {
        a.out.push(o['-json'] !== undefined ? dumpLsdnJson(this.model) : dumpLsctl(this.model));
        return;
      }

      default:
        return fail(`${req.cmd}: unknown command`);
    }
  }

  /** Validation scope: the claimed-local physes, else all. */
  private scope(): { physes?: string[] } {
    const local = [...this.model.localPhyses].map((p) => p.name);
    return local.length ? { physes: local } : {};
  }
}
