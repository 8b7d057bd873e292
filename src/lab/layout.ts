/**
 * The lab's layout (pure): the names of its namespaces, the addresses of its physes and virts,
 * which virts ask their net's server for addresses, and what keeps a model from being built
 * as a lab. See lab.ts for what the names stand for.
 */
import { createHash } from 'node:crypto';
import { parsePrefix } from '../core/addr.js';
import { formatLoc, type Located } from '../core/location.js';
import type { Problem } from '../core/problem.js';
import { validate } from '../validate/validate.js';
import { Report } from '../validate/report.js';
import type { Netmodel, Phys, Virt } from '../model/netmodel.js';
import { assignAddresses } from '../ipam/ipam.js';
import { served, servesAddresses } from '../services/dhcp.js';
import { isNetworkType, networkType } from '../types/registry.js';
import { LabError } from '../core/errors.js';
import { labExtensionReport, type LabExtension } from './extension.js';

export interface LabOptions {
  /** Namespace name prefix; default derived from the model's name ("lsl-<name>"). */
  prefix?: string;
  /** The file's `lab` section, parsed (extension.ts): VDE clients, extra host interfaces. */
  lab?: LabExtension;
}

export interface LabLayout {
  prefix: string;
  underlayNs: string;
  /** phys name -> netns */
  physNs: Map<string, string>;
  /** virt.id -> netns (connected virts only) */
  virtNs: Map<string, string>;
  /** virt.id -> ["ip/len"]: the virt's own addresses, else generated ones */
  virtIps: Map<string, string[]>;
  /** phys name -> "ip/len" put on its underlay interface (absent when phys.ip is unusable) */
  physAddrs: Map<string, string>;
  /** Virts that get their addresses from the net's server (DHCPv4, SLAAC), and the outside namespace (src/lab/serving.ts). */
  serving?: LabAddressing;
  /** The lab section (VDE clients, extra interfaces), when the file has one. */
  lab?: LabExtension;
  /** client name -> the namespace of its host (`<prefix>-c-<name>`). */
  clientNs: Map<string, string>;
}

/** Name of the underlay bridge inside `${prefix}-underlay`. */
export const UNDERLAY_BRIDGE = 'br0';
/** Name of each virt's interface inside its own namespace. */
export const VIRT_IF = 'eth0';
/** Prefix length of phys underlay addresses given without one. */
export const UNDERLAY_PREFIX_LEN = { 4: 16, 6: 64 } as const;
/** Generated virt addresses: net i, virt j -> 10.100.i.(j+1)/16 (one shared subnet, see below). */
const GEN_V4 = { first: 10, second: 100, len: 16 };

function shortHash(s: string, n = 6): string {
  return createHash('sha256').update(s).digest('hex').slice(0, n);
}

/** Characters kept in namespace-name parts: letters, digits, '_', '.', and '-' when allowed. */
function sanitize(s: string, allowDash: boolean, max: number): string {
  let t = s.replace(allowDash ? /[^A-Za-z0-9_.-]/g : /[^A-Za-z0-9_.]/g, '_');
  if (t === '' || t === '.' || t === '..') t = `_${shortHash(s, 4)}`;
  if (t.length > max) t = `${t.slice(0, max - 7)}_${shortHash(s)}`;
  return t;
}

export const PREFIX_RE = /^[A-Za-z0-9_.][A-Za-z0-9_.-]*$/;

export function labPrefix(model: Netmodel, opts: LabOptions = {}): string {
  if (opts.prefix !== undefined) {
    if (!PREFIX_RE.test(opts.prefix) || opts.prefix.length > 64) {
      throw new LabError(`invalid lab prefix "${opts.prefix}" (letters, digits, "_", ".", "-"; at most 64 characters)`);
    }
    return opts.prefix;
  }
  // No '-' in the derived part: then no derived prefix is `${other derived prefix}-...`, and
  // labDown of one lab can never take another lab's namespaces.
  return `lsl-${sanitize(model.name, false, 16)}`;
}

/**
 * Connected virts (their phys exists in the model), in model order. Virts with `tap` are a
 * hypervisor's: apply creates their tap in the phys namespace and a VM (qemu) attaches to
 * it, so the lab makes neither a namespace nor a veth for them.
 */
export function labVirts(model: Netmodel): Virt[] {
  return model.virts().filter((v) => v.phys !== undefined && model.physes.get(v.phys.name) === v.phys && !v.tap);
}

/** Give every key a distinct name: colliding candidates get a hash of their key appended. */
function uniqueNames(cands: [key: string, name: string][]): Map<string, string> {
  const count = new Map<string, number>();
  for (const [, n] of cands) count.set(n, (count.get(n) ?? 0) + 1);
  const out = new Map<string, string>();
  const used = new Set<string>();
  for (const [k, n] of cands) {
    let name = (count.get(n) ?? 0) > 1 ? `${n}-${shortHash(k)}` : n;
    for (let i = 2; used.has(name); i++) name = `${n}-${shortHash(k)}${i}`;
    used.add(name);
    out.set(k, name);
  }
  return out;
}

function generatedIp(netIndex: number, virtIndex: number): string {
  if (netIndex > 255 || virtIndex > 253) {
    throw new LabError(`cannot generate an address for virt #${virtIndex + 1} of net #${netIndex + 1}: give the virt "ips"`);
  }
  return `${GEN_V4.first}.${GEN_V4.second}.${netIndex}.${virtIndex + 1}/${GEN_V4.len}`;
}

function physAddr(phys: Phys): string | undefined {
  if (!phys.ip) return undefined;
  const p = parsePrefix(phys.ip);
  if (!p) return undefined;
  const len = phys.ip.includes('/') ? p.len : UNDERLAY_PREFIX_LEN[p.family];
  return `${p.ip}/${len}`;
}

/**
 * The lab's names and addresses (pure). Virts without addresses get generated IPv4 ones: all
 * nets share 10.100.0.0/16 (net i, virt j -> 10.100.i.(j+1)), so a ping across nets is on-link
 * and tests the nets' isolation rather than routing.
 */
export function labLayout(model: Netmodel, opts: LabOptions = {}): LabLayout {
  const prefix = labPrefix(model, opts);
  const physNames = uniqueNames([...model.physes.keys()].map((n) => [n, `${prefix}-p-${sanitize(n, true, 40)}`]));
  const virts = labVirts(model);
  const virtNames = uniqueNames(virts.map((v) => [v.id, `${prefix}-v-${sanitize(v.net.name, true, 40)}-${sanitize(v.name, true, 40)}`]));
  const virtIps = new Map<string, string[]>();
  const nets = [...model.nets.values()];
  const serving = labAddressing(model, virts, prefix);
  for (const v of virts) {
    const planned = serving.planned.get(v.id);
    if (planned) {
      virtIps.set(v.id, planned);
    } else if (v.ips.length) {
      virtIps.set(v.id, v.ips.map((s) => {
        const p = parsePrefix(s);
        return p ? `${p.ip}/${p.len}` : s;
      }));
    } else {
      virtIps.set(v.id, [generatedIp(nets.indexOf(v.net), [...v.net.virts.values()].indexOf(v))]);
    }
  }
  const physAddrs = new Map<string, string>();
  for (const p of model.physes.values()) {
    const a = physAddr(p);
    if (a) physAddrs.set(p.name, a);
  }
  return {
    prefix,
    underlayNs: `${prefix}-underlay`,
    physNs: physNames,
    virtNs: new Map(virts.map((v) => [v.id, virtNames.get(v.id) as string])),
    virtIps,
    physAddrs,
    serving,
    ...(opts.lab ? { lab: opts.lab } : {}),
    clientNs: uniqueNames((opts.lab?.clients ?? []).map((c) => [c.name, `${prefix}-c-${sanitize(c.name, true, 40)}`])),
  };
}

/**
 * The validation checks of what the lab builds from the model itself: interface names, MACs,
 * underlay MTUs. The lab takes them from validation (the same report, the same words); a lab
 * needs no valid lsdn model otherwise (its `apply` may be anything: tests wire it by hand).
 */
const LAB_VALIDATION = new Set(['phys-if-invalid', 'phys-mtu-invalid', 'virt-if-invalid', 'virt-mac-invalid']);

/**
 * What keeps the model from being built as a lab, as one report: validation's problems of what
 * the lab builds (LAB_VALIDATION, on the physes and the virts it makes), and the lab's own
 * checks (`lab-*`): every phys needs an underlay interface and address (distinct ones), and
 * every connected virt an interface of its own on its phys and addresses the lab can set.
 */
export function labReport(model: Netmodel, layout: LabLayout): Problem[] {
  const report = new Report(model);
  const built = new Set([...[...model.physes.keys()].map((n) => `phys ${n}`), ...labVirts(model).map((v) => `virt ${v.id}`)]);
  report.problems.push(...validate(model).filter((p) => LAB_VALIDATION.has(p.code) && built.has(p.object)));
  const lab = (code: string, object: string, message: string, at: Located, field?: string) => report.add('error', `lab-${code}`, object, message, at, field);
  const physIps = new Map<string, string>();
  for (const p of model.physes.values()) {
    const label = `phys ${p.name}`;
    if (!p.if) lab('phys-if-missing', label, 'no underlay interface ("if")', p, 'if');
    if (!p.ip) lab('phys-ip-missing', label, 'no underlay address ("ip")', p, 'ip');
    else if (!layout.physAddrs.has(p.name)) lab('phys-ip-invalid', label, `"${p.ip}" is not an IP address`, p, 'ip');
    else {
      const ip = (layout.physAddrs.get(p.name) as string).split('/')[0] as string;
      const other = physIps.get(ip);
      if (other) lab('phys-ip-duplicate', label, `address ${ip} is also phys "${other}"'s`, p, 'ip');
      else physIps.set(ip, p.name);
    }
  }
  const ifs = new Map<string, string>(); // "phys\0if" -> owner
  for (const p of model.physes.values()) if (p.if) ifs.set(`${p.name}\0${p.if}`, `phys "${p.name}"'s underlay interface`);
  for (const v of labVirts(model)) {
    const phys = v.phys as Phys;
    const label = `virt ${v.id}`;
    if (!v.if) lab('virt-if-missing', label, `connected to "${phys.name}" without an interface name ("if")`, v, 'if');
    else {
      const key = `${phys.name}\0${v.if}`;
      const owner = ifs.get(key);
      if (owner) lab('virt-if-taken', label, `interface "${v.if}" on "${phys.name}" is also ${owner}`, v, 'if');
      else ifs.set(key, `virt "${v.id}"'s`);
    }
    // (The lab also takes an address without a prefix length: a host address.)
    for (const ip of v.ips) if (!parsePrefix(ip)) lab('virt-ip-invalid', label, `bad address "${ip}"`, v, 'ips');
  }
  // The lab section: its own problems, then against the model and the physes' addresses.
  if (layout.lab) report.problems.push(...layout.lab.problems, ...labExtensionReport(model, layout.lab, layout.physAddrs));
  return report.problems;
}

/** A problem as the lab words it: `KIND "NAME": MESSAGE` (`phys "a": no underlay interface ("if")`). */
export function labLine(p: Problem): string {
  const sp = p.object.indexOf(' ');
  const at = p.loc ? `${formatLoc(p.loc)}: ` : '';
  return sp < 0 ? `${at}${p.object}: ${p.message}` : `${at}${p.object.slice(0, sp)} "${p.object.slice(sp + 1)}": ${p.message}`;
}

/** What keeps the model from being built as a lab, one line each (empty when nothing): labReport's. */
export function labProblems(model: Netmodel, layout: LabLayout): string[] {
  return labReport(model, layout).map(labLine);
}

/** The outside world of a lab (documentation range, RFC 5737). */
export const OUTSIDE_ADDR = { addr: '203.0.113.1/24', ip: '203.0.113.1', net: '203.0.113.0/24' } as const;

export interface LabAddressing {
  /** virt id -> the addresses its net's server hands it ("ip/len"): these virts ask, they get no static address. */
  planned: Map<string, string[]>;
  /** Virts that ask for an IPv4 lease (DHCP) / use SLAAC. */
  dhcp: Set<string>;
  slaac: Set<string>;
  /** `<prefix>-outside`, when the model has a public net. */
  outsideNs?: string;
}

/** Which virts ask for their addresses (a served subnet, a MAC, no static address), and what they get (pure). */
export function labAddressing(model: Netmodel, virts: Virt[], prefix: string): LabAddressing {
  const out: LabAddressing = { planned: new Map(), dhcp: new Set(), slaac: new Set() };
  // Routed nets (public) reach the outside world: the lab stands it up.
  const routed = [...model.nets.values()].some((n) => {
    const s = n.effectiveSettings();
    return s !== undefined && isNetworkType(s.type) && networkType(s.type).routed !== undefined;
  });
  if (routed) out.outsideNs = `${prefix}-outside`;
  const asking = virts.filter((v) => v.ips.length === 0 && v.mac !== undefined && servesAddresses(v.net));
  if (!asking.length) return out;
  const assigned = assignAddresses(model);
  for (const v of asking) {
    const a = assigned.get(v.id);
    const addrs: string[] = [];
    if (served(v.net.ipv4) && a?.v4) {
      addrs.push(`${a.v4.ip}/${a.v4.len}`);
      out.dhcp.add(v.id);
    }
    const slaac = served(v.net.ipv6) ? a?.v6.find((x) => x.source === 'slaac') : undefined;
    if (slaac) {
      addrs.push(`${slaac.ip}/${slaac.len}`);
      out.slaac.add(v.id);
    }
    if (addrs.length) out.planned.set(v.id, addrs);
  }
  return out;
}

/** Underlay links of the outside namespace (run in the underlay namespace, next to br0). */
export function outsideLinks(ns: string): string[] {
  return [
    `link add uo-outside master br0 type veth peer name eth0 netns ${ns}`,
    'link set uo-outside addrgenmode none',
    'link set uo-outside up',
  ];
}

