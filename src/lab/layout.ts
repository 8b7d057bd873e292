/**
 * The lab's layout (pure): the names of its namespaces, the addresses of its physes and virts,
 * which virts ask their net's server for addresses, and what keeps a model from being built
 * as a lab. See lab.ts for what the names stand for.
 */
import { createHash } from 'node:crypto';
import { interfaceNameProblem, normalizeMac, parsePrefix } from '../core/addr.js';
import type { Netmodel, Phys, Virt } from '../model/netmodel.js';
import { assignAddresses } from '../ipam/ipam.js';
import { served, servesAddresses } from '../services/dhcp.js';
import { isNetworkType, networkType } from '../types/registry.js';
import { LabError } from '../core/errors.js';

export interface LabOptions {
  /** Namespace name prefix; default derived from the model's name ("lsl-<name>"). */
  prefix?: string;
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
  };
}

/** What keeps the model from being built as a lab (empty when nothing). */
export function labProblems(model: Netmodel, layout: LabLayout): string[] {
  const problems: string[] = [];
  const physIps = new Map<string, string>();
  for (const p of model.physes.values()) {
    if (!p.if) problems.push(`phys "${p.name}": no underlay interface ("if")`);
    else {
      const why = interfaceNameProblem(p.if);
      if (why) problems.push(`phys "${p.name}": interface name "${p.if}" ${why}`);
    }
    if (!p.ip) problems.push(`phys "${p.name}": no underlay address ("ip")`);
    else if (!layout.physAddrs.has(p.name)) problems.push(`phys "${p.name}": "${p.ip}" is not an IP address`);
    else {
      const ip = (layout.physAddrs.get(p.name) as string).split('/')[0] as string;
      const other = physIps.get(ip);
      if (other) problems.push(`phys "${p.name}": address ${ip} is also phys "${other}"'s`);
      else physIps.set(ip, p.name);
    }
    if (p.mtu !== undefined && (!Number.isInteger(p.mtu) || p.mtu < 68)) problems.push(`phys "${p.name}": bad mtu ${p.mtu}`);
  }
  const ifs = new Map<string, string>(); // "phys\0if" -> owner
  for (const p of model.physes.values()) if (p.if) ifs.set(`${p.name}\0${p.if}`, `phys "${p.name}"'s underlay interface`);
  for (const v of labVirts(model)) {
    const phys = v.phys as Phys;
    if (!v.if) problems.push(`virt "${v.id}": connected to "${phys.name}" without an interface name ("if")`);
    else {
      const why = interfaceNameProblem(v.if);
      if (why) problems.push(`virt "${v.id}": interface name "${v.if}" ${why}`);
      const key = `${phys.name}\0${v.if}`;
      const owner = ifs.get(key);
      if (owner) problems.push(`virt "${v.id}": interface "${v.if}" on "${phys.name}" is also ${owner}`);
      else ifs.set(key, `virt "${v.id}"'s`);
    }
    if (v.mac !== undefined && !normalizeMac(v.mac)) problems.push(`virt "${v.id}": bad MAC "${v.mac}"`);
    for (const ip of v.ips) if (!parsePrefix(ip)) problems.push(`virt "${v.id}": bad address "${ip}"`);
  }
  return problems;
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

