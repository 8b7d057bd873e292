/**
 * Which addresses each virt has (pure):
 *
 * - IPv4: a virt's static address (the first of its `ip` in the net's subnet), else its
 *   recorded allocation (the model file's `allocations` section, written by `lsdn allocate`)
 *   when it is still valid, else a new allocation from the net's pools.
 * - IPv6: its static addresses, plus, on a /64 subnet served by router advertisements (SLAAC)
 *   and with a known MAC, the SLAAC address the guest kernel configures (prefix + modified
 *   EUI-64), plus its link-local address fe80::EUI-64.
 *
 * New allocations are a pure function of the model: the preferred slot of a virt is a hash of
 * "net/virt" into the pool, probing to the next free address; new virts are placed in name
 * order after every recorded and static address is taken. Every host computes the same result
 * from the same file without coordination. Recording the result in the file (`lsdn allocate`,
 * record.ts) makes it stable: a recorded allocation is kept as long as its virt exists and it
 * stays valid, so adding or removing other virts never renumbers it.
 *
 * Speed: addresses are numbers, pools sorted ranges (pool.ts), taken addresses a Set, and the
 * next free slot is found through a path-compressed skip map: no per-virt scan of a pool.
 */
import type { Net, Netmodel, Virt } from '../model/netmodel.js';
import type { Located } from '../core/location.js';
import type { Severity } from '../core/problem.js';
import { bigToV6, eui64, formatV6, hash32, linkLocalAddress, numToV4, upperGroups, v4ToNum, v6ToBig } from './numbers.js';
import { checkSubnet4, checkSubnet6, type NetIssue, type Subnet4Plan, type Subnet6Plan } from './subnets.js';

export interface AssignedAddress {
  ip: string;
  len: number;
  source: 'static' | 'recorded' | 'allocated' | 'slaac' | 'link-local';
}

export interface VirtAddressing {
  v4?: AssignedAddress;
  v6: AssignedAddress[];
}

/** A problem found while assigning addresses; validate() locates it, `lsdn allocate` prints it. */
export interface IpamIssue {
  code: string;
  severity: Severity;
  /** "net NAME", "virt NET/NAME", "allocation NET/NAME". */
  object: string;
  message: string;
  /** The object (and field) to locate it at. */
  at?: Located;
  field?: string;
}

export interface IpamResult {
  addressing: Map<string, VirtAddressing>;
  issues: IpamIssue[];
}

/** The location key of a recorded allocation in `Netmodel.fieldLocs` (set by the loader). */
export function allocationField(virtId: string): string {
  return `allocations:${virtId}`;
}

// --- addresses of one virt ---------------------------------------------------------------------

interface StaticAddr {
  text: string;
  fam: 4 | 6;
  /** v4 number (fam 4) */
  n4?: number;
  n6?: bigint;
  ip: string;
  len: number;
}

const NONE: StaticAddr[] = [];

/** The virt's static addresses ("ip"), parsed; malformed ones are validate()'s (virt-ip-invalid). */
function staticAddrs(v: Virt): StaticAddr[] {
  if (v.ips.length === 0) return NONE;
  const out: StaticAddr[] = [];
  for (const text of v.ips) {
    if (typeof text !== 'string') continue;
    const slash = text.indexOf('/');
    if (slash < 0) continue;
    const ip = text.slice(0, slash);
    const lenText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText)) continue;
    const len = Number(lenText);
    const n4 = v4ToNum(ip);
    if (n4 !== undefined) {
      if (len <= 32) out.push({ text, fam: 4, n4, ip: numToV4(n4), len });
      continue;
    }
    const n6 = v6ToBig(ip);
    if (n6 !== undefined && len <= 128) out.push({ text, fam: 6, n6, ip: bigToV6(n6), len });
  }
  return out;
}

// --- the whole model ----------------------------------------------------------------------------

const netLabel = (n: Net): string => `net ${n.name}`;
const virtLabel = (v: Virt): string => `virt ${v.id}`;

function virtError(issues: IpamIssue[], v: Virt, code: string, message: string): void {
  issues.push({ code, severity: 'error', object: virtLabel(v), message, at: v, field: 'ip' });
}

/** A virt of the net being assigned: its id, parsed static addresses and result. */
interface VirtRec {
  v: Virt;
  id: string;
  st: StaticAddr[];
  out: VirtAddressing;
}

function byRecName(a: VirtRec, b: VirtRec): number {
  return a.v.name < b.v.name ? -1 : a.v.name > b.v.name ? 1 : 0;
}

/** Assign every virt its addresses, with the problems found on the way. */
export function analyzeAddresses(model: Netmodel): IpamResult {
  const addressing = new Map<string, VirtAddressing>();
  const issues: IpamIssue[] = [];
  for (const net of model.nets.values()) assignNet(model, net, addressing, issues);
  // Recorded allocations of virts that no longer need one.
  for (const [id, ip] of model.allocations) {
    const v = model.virt(id);
    const a = v ? addressing.get(id)?.v4 : undefined;
    if (!v || !v.net.ipv4 || (a && a.source === 'static')) {
      const why = !v ? 'there is no such virt' : !v.net.ipv4 ? `net "${v.net.name}" has no ipv4 subnet` : `the virt has the static address ${a!.ip}`;
      issues.push({
        code: 'allocation-stale', severity: 'warning', object: `allocation ${id}`,
        message: `recorded allocation ${ip} is not used: ${why} (\`lsdn allocate\` drops it)`,
        at: model, field: allocationField(id),
      });
    }
  }
  return { addressing, issues };
}

/** Every virt's addresses (virt id -> addressing). Pure, deterministic, identical on every host. */
export function assignAddresses(model: Netmodel): Map<string, VirtAddressing> {
  return analyzeAddresses(model).addressing;
}

function assignNet(model: Netmodel, net: Net, addressing: Map<string, VirtAddressing>, issues: IpamIssue[]): void {
  const recs: VirtRec[] = [];
  for (const v of net.virts.values()) {
    const rec: VirtRec = { v, id: v.id, st: staticAddrs(v), out: { v6: [] } };
    addressing.set(rec.id, rec.out);
    recs.push(rec);
  }
  const netIssue: NetIssue = (code: string, severity: Severity, message: string, at: Located, field?: string) =>
    issues.push({ code, severity, object: netLabel(net), message, at, field });

  const s4 = checkSubnet4(net, netIssue);
  if (!s4) {
    // No (valid) subnet: static addresses only.
    for (const r of recs) {
      const s = r.st.find((a) => a.fam === 4);
      if (s) r.out.v4 = { ip: s.ip, len: s.len, source: 'static' };
    }
  } else {
    const need = staticV4(net, s4, recs, issues);
    const fresh = recordedV4(model, s4, need, issues);
    allocateV4(net, s4, fresh, netIssue);
  }
  assignV6(net, checkSubnet6(net, netIssue), recs, issues);
}

/** Static IPv4 addresses: checked against the subnet and taken; the virts that have none (name order). */
function staticV4(net: Net, s4: Subnet4Plan, recs: VirtRec[], issues: IpamIssue[]): VirtRec[] {
  const { sub, p: p4, gateway, server, pool, inSubnet } = s4;
  const need: VirtRec[] = [];
  for (const r of recs) {
    const v = r.v;
    const all = r.st;
    const s4s = all.length ? all.filter((a) => a.fam === 4) : NONE;
    for (const a of s4s) {
      const n = a.n4!;
      pool.take(n);
      if (!inSubnet(n)) virtError(issues, v, 'virt-ip-outside-subnet', `address ${a.text} is outside the ipv4 subnet ${sub.spec.prefix} of net "${net.name}"`);
      else if (n === gateway) virtError(issues, v, 'virt-ip-gateway', `address ${a.text} is the gateway of net "${net.name}"`);
      else if (n === server) virtError(issues, v, 'virt-ip-server', `address ${a.text} is the address server's of net "${net.name}" (${sub.spec.server === undefined ? 'the default server address, the highest host address; set "server" to move it' : 'its "server"'})`);
      else if (p4.len <= 30 && (n === p4.net || n === p4.last)) virtError(issues, v, 'virt-ip-network', `address ${a.text} is the ${n === p4.net ? 'network' : 'broadcast'} address of ${sub.spec.prefix}`);
      else if (a.len !== p4.len) {
        issues.push({ code: 'virt-ip-prefix-mismatch', severity: 'warning', object: virtLabel(v),
          message: `address ${a.text} has prefix length ${a.len}, but the ipv4 subnet of net "${net.name}" is ${sub.spec.prefix}`, at: v, field: 'ip' });
      }
    }
    const first = s4s.find((a) => inSubnet(a.n4!)) ?? s4s[0];
    if (first) r.out.v4 = { ip: first.ip, len: first.len, source: 'static' };
    else need.push(r);
  }
  return need.sort(byRecName);
}

/** Recorded allocations still valid are kept (in name order: of two clashing, the first wins); the virts still without one. */
function recordedV4(model: Netmodel, s4: Subnet4Plan, need: VirtRec[], issues: IpamIssue[]): VirtRec[] {
  const { sub, p: p4, pool, inSubnet } = s4;
  const fresh: VirtRec[] = [];
  for (const r of need) {
    const rec = model.allocations.get(r.id);
    if (rec === undefined) {
      fresh.push(r);
      continue;
    }
    const n = typeof rec === 'string' ? v4ToNum(rec) : undefined;
    let why: string | undefined;
    if (n === undefined) why = 'is not an IPv4 address';
    else if (!inSubnet(n)) why = `is outside the subnet ${sub.spec.prefix}`;
    else if (!pool.contains(n) && !pool.taken.has(n)) why = 'is outside the pools (or reserved, the gateway, the server, the network or broadcast address)';
    else if (pool.taken.has(n)) why = 'is already used (by a static address or an earlier recorded allocation)';
    if (why) {
      issues.push({
        code: 'allocation-invalid', severity: 'warning', object: virtLabel(r.v),
        message: `recorded allocation ${String(rec)} ${why}; it gets a new address (run \`lsdn allocate\` to record it)`,
        at: model, field: allocationField(r.id),
      });
      fresh.push(r);
      continue;
    }
    pool.take(n!);
    // v4ToNum accepts only canonical text, so the recorded text is the address's.
    r.out.v4 = { ip: rec, len: p4.len, source: 'recorded' };
  }
  return fresh;
}

/** New allocations: hashed slot, next free, in name order; a net whose pools run out says for whom. */
function allocateV4(net: Net, s4: Subnet4Plan, fresh: VirtRec[], netIssue: NetIssue): void {
  const { sub, p: p4, pool, poolsGiven } = s4;
  const starved: Virt[] = [];
  const netPrefix = `${net.name}/`;
  for (const r of fresh) {
    const a = pool.size > 0 ? pool.takeFrom(hash32(netPrefix + r.v.name) % pool.size) : undefined;
    if (a === undefined) starved.push(r.v);
    else r.out.v4 = { ip: numToV4(a), len: p4.len, source: 'allocated' };
  }
  if (starved.length) {
    netIssue('subnet-pool-exhausted', 'error',
      `the ipv4 pools of ${sub.spec.prefix} (${pool.size} allocatable addresses) have no address left for ${starved.length === 1 ? 'virt' : 'virts'} ${starved.map((v) => v.name).join(', ')}`,
      sub, poolsGiven ? 'pools' : 'subnet');
  }
}

/** IPv6: static addresses (checked against the subnet), the SLAAC address, the link-local one. */
function assignV6(net: Net, s6: Subnet6Plan | undefined, recs: VirtRec[], issues: IpamIssue[]): void {
  const p6 = s6?.p;
  const sub6 = s6?.sub;
  const prefixGroups = p6 ? upperGroups(p6.net) : [];
  for (const r of recs) {
    const v = r.v;
    const out = r.out;
    const all = r.st;
    const s6s = all.length ? all.filter((a) => a.fam === 6) : NONE;
    const seen = (ip: string) => s6s.length > 0 && out.v6.some((x) => x.ip === ip);
    for (const a of s6s) {
      out.v6.push({ ip: a.ip, len: a.len, source: 'static' });
      if (p6 && sub6) {
        const n = a.n6!;
        const linkLocal = n >> 118n === 0x3fan;
        if (!linkLocal && (n < p6.net || n > p6.last)) virtError(issues, v, 'virt-ip-outside-subnet', `address ${a.text} is outside the ipv6 subnet ${sub6.spec.prefix} of net "${net.name}"`);
        else if (n === s6?.gateway) virtError(issues, v, 'virt-ip-gateway', `address ${a.text} is the gateway of net "${net.name}"`);
        else if (n === s6?.server) virtError(issues, v, 'virt-ip-server', `address ${a.text} is the address server's of net "${net.name}"${sub6.spec.server === undefined ? ' (the default, prefix::fffe; set "server" to move it)' : ''}`);
      }
    }
    const mac = v.mac;
    if (s6?.slaac && p6) {
      if (mac === undefined) {
        issues.push({ code: 'virt-slaac-no-mac', severity: 'warning', object: virtLabel(v),
          message: `net "${net.name}" configures IPv6 by SLAAC, but the virt has no "mac", so its address is unknown (anti-spoofing lets no IPv6 source through)`, at: v });
      } else {
        const id = eui64(mac);
        if (id !== undefined) {
          const ip = formatV6([prefixGroups[0]!, prefixGroups[1]!, prefixGroups[2]!, prefixGroups[3]!, id[0]!, id[1]!, id[2]!, id[3]!]);
          if (!seen(ip)) out.v6.push({ ip, len: 64, source: 'slaac' });
        }
      }
    }
    if (mac !== undefined && (p6 || s6s.length)) {
      const ll = linkLocalAddress(mac);
      if (ll !== undefined && !seen(ll)) out.v6.push({ ip: ll, len: 64, source: 'link-local' });
    }
  }
}

/**
 * The allocation record the model should have: every virt whose IPv4 address is recorded or
 * allocated (virt id -> address, sorted by id), what is new or changed (`added`) and which
 * recorded entries go (`dropped`: the virt is gone, has a static address, or was re-allocated).
 */
export function allocate(model: Netmodel): { allocations: Map<string, string>; added: string[]; dropped: string[]; problems: string[] } {
  const { addressing, issues } = analyzeAddresses(model);
  const entries: [string, string][] = [];
  for (const [id, a] of addressing) {
    if (a.v4 && (a.v4.source === 'recorded' || a.v4.source === 'allocated')) entries.push([id, a.v4.ip]);
  }
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const allocations = new Map(entries);
  const added: string[] = [];
  const dropped: string[] = [];
  for (const [id, ip] of allocations) if (model.allocations.get(id) !== ip) added.push(id);
  for (const [id, ip] of model.allocations) if (allocations.get(id) !== ip) dropped.push(id);
  dropped.sort();
  const problems = issues
    .filter((i) => i.severity === 'error' || i.code === 'allocation-invalid')
    .map((i) => `${i.severity}: ${i.object}: ${i.message}`);
  return { allocations, added, dropped, problems };
}
