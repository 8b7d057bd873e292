/**
 * The subnets of a net (pure): each one's own checks (its gateway, server, DNS servers, pools
 * and reserved ranges, SLAAC's /64) and what assignment needs of it (the pool, the addresses
 * taken by the subnet itself), and the address of the net's address server.
 */
import type { Net, Subnet } from '../model/netmodel.js';
import type { Located } from '../core/location.js';
import type { Severity } from '../core/problem.js';
import {
  bigToV6, mergeRanges, numToV4, parseRange4, parseSubnet4, parseSubnet6, subtractRanges, v4ToNum, v6ToBig,
  type Range4, type Subnet4, type Subnet6,
} from './numbers.js';
import { Pool } from './pool.js';

/** A problem of the net's subnet (object "net NAME"), located at the subnet's field. */
export type NetIssue = (code: string, severity: Severity, message: string, at: Located, field?: string) => void;

/**
 * The address of the net's address server on every host (DHCPv4 / router advertisements):
 * the subnet's `server`, else for IPv4 the highest usable host address (.254 of a /24), for
 * IPv6 prefix::fffe. Throws when the subnet (or its server) is malformed: validate() first.
 */
export function serverAddress(subnet: Subnet): string {
  const given = subnet.spec.server;
  if (subnet.family === 4) {
    if (given !== undefined) {
      const n = v4ToNum(given);
      if (n === undefined) throw new Error(`net ${subnet.net.name}: server "${given}" is not an IPv4 address`);
      return numToV4(n);
    }
    const p = parseSubnet4(subnet.spec.prefix);
    if ('error' in p) throw new Error(`net ${subnet.net.name}: ${p.error}`);
    return numToV4(defaultServer4(p));
  }
  if (given !== undefined) {
    const n = v6ToBig(given);
    if (n === undefined) throw new Error(`net ${subnet.net.name}: server "${given}" is not an IPv6 address`);
    return bigToV6(n);
  }
  const p = parseSubnet6(subnet.spec.prefix);
  if ('error' in p) throw new Error(`net ${subnet.net.name}: ${p.error}`);
  return bigToV6(defaultServer6(p));
}

export function defaultServer4(p: Subnet4): number {
  return p.lastUsable;
}

export function defaultServer6(p: Subnet6): bigint {
  return p.len <= 112 ? p.net + 0xfffen : p.last > p.net ? p.last - 1n : p.net;
}

/** A valid IPv4 subnet of a net and what it takes of its own addresses. */
export interface Subnet4Plan {
  sub: Subnet;
  p: Subnet4;
  gateway: number | undefined;
  /** The server's address, where a server runs (given, or the default). */
  server: number | undefined;
  /** The allocatable addresses: pools minus reserved, network, broadcast, gateway and server. */
  pool: Pool;
  poolsGiven: boolean;
  inSubnet(n: number): boolean;
}

/** The net's IPv4 subnet, checked; undefined when it has none or it is malformed (reported). */
export function checkSubnet4(net: Net, issue: NetIssue): Subnet4Plan | undefined {
  const sub = net.ipv4;
  if (!sub) return undefined;
  const r = parseSubnet4(sub.spec.prefix);
  if ('error' in r) {
    issue(r.code, 'error', r.error, sub, 'subnet');
    return undefined;
  }
  const p4 = r;
  const inSubnet = (n: number) => n >= p4.net && n <= p4.last;
  const single = (field: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const n = typeof text === 'string' ? v4ToNum(text) : undefined;
    if (n === undefined) {
      issue('subnet-address-invalid', 'error', `ipv4 ${field} ${JSON.stringify(text)} is not an IPv4 address`, sub, field);
      return undefined;
    }
    if (!inSubnet(n)) {
      issue('subnet-address-outside', 'error', `ipv4 ${field} ${text} is outside the subnet ${sub.spec.prefix}`, sub, field);
      return undefined;
    }
    if (p4.len <= 30 && (n === p4.net || n === p4.last)) {
      issue('subnet-address-invalid', 'error',
        `ipv4 ${field} ${text} is the ${n === p4.net ? 'network' : 'broadcast'} address of ${sub.spec.prefix}`, sub, field);
      return undefined;
    }
    return n;
  };
  const gateway = single('gateway', sub.spec.gateway);
  // The default server address is kept free only where a server runs (dhcp not false).
  const server = sub.spec.server !== undefined ? single('server', sub.spec.server) : sub.spec.serve !== false ? defaultServer4(p4) : undefined;
  if (gateway !== undefined && server !== undefined && gateway === server) {
    issue('subnet-server-is-gateway', 'error',
      `the address server ${numToV4(server)}${sub.spec.server === undefined ? ' (the default: the highest host address)' : ''} is also the gateway; give the server another address ("server")`,
      sub, sub.spec.server === undefined ? 'gateway' : 'server');
  }
  for (const d of sub.spec.dns ?? []) {
    // DNS servers may be anywhere (a resolver outside the subnet is common); only the family matters.
    if (typeof d !== 'string' || v4ToNum(d) === undefined) {
      issue('subnet-address-invalid', 'error', `ipv4 dns ${JSON.stringify(d)} is not an IPv4 address`, sub, 'dns');
    }
  }
  const usable: Range4 = { lo: p4.first, hi: p4.lastUsable };
  const ranges = (field: 'pools' | 'reserved'): Range4[] => {
    const out: Range4[] = [];
    for (const text of sub.spec[field] ?? []) {
      const r = parseRange4(text);
      if ('error' in r) {
        issue(`subnet-${field === 'pools' ? 'pool' : 'reserved'}-invalid`, 'error', `ipv4 ${field}: ${r.error}`, sub, field);
        continue;
      }
      if (!inSubnet(r.lo) || !inSubnet(r.hi)) {
        issue(`subnet-${field === 'pools' ? 'pool' : 'reserved'}-invalid`, 'error',
          `ipv4 ${field}: "${text}" is ${inSubnet(r.lo) || inSubnet(r.hi) ? 'partly ' : ''}outside the subnet ${sub.spec.prefix}`, sub, field);
        continue;
      }
      out.push(r);
    }
    return out;
  };
  const poolsGiven = (sub.spec.pools ?? []).length > 0;
  const poolRanges = poolsGiven ? mergeRanges(ranges('pools')) : [usable];
  const reserved = ranges('reserved');
  const excluded: Range4[] = [...reserved];
  if (p4.len <= 30) excluded.push({ lo: p4.net, hi: p4.net }, { lo: p4.last, hi: p4.last });
  if (gateway !== undefined) excluded.push({ lo: gateway, hi: gateway });
  if (server !== undefined) excluded.push({ lo: server, hi: server });
  return { sub, p: p4, gateway, server, pool: new Pool(subtractRanges(poolRanges, excluded)), poolsGiven, inSubnet };
}

/** A valid IPv6 subnet of a net. */
export interface Subnet6Plan {
  sub: Subnet;
  p: Subnet6;
  gateway: bigint | undefined;
  server: bigint | undefined;
  /** Router advertisements for SLAAC are sent (served, and a /64). */
  slaac: boolean;
}

/** The net's IPv6 subnet, checked; undefined when it has none or it is malformed (reported). */
export function checkSubnet6(net: Net, issue: NetIssue): Subnet6Plan | undefined {
  const sub6 = net.ipv6;
  if (!sub6) return undefined;
  const r = parseSubnet6(sub6.spec.prefix);
  if ('error' in r) {
    issue(r.code, 'error', r.error, sub6, 'subnet');
    return undefined;
  }
  const p6 = r;
  const inSubnet = (n: bigint) => n >= p6.net && n <= p6.last;
  const single = (field: string, text: string | undefined): bigint | undefined => {
    if (text === undefined) return undefined;
    const n = v6ToBig(text);
    if (n === undefined) {
      issue('subnet-address-invalid', 'error', `ipv6 ${field} ${JSON.stringify(text)} is not an IPv6 address`, sub6, field);
      return undefined;
    }
    // The IPv6 gateway may be link-local (routers advertise from fe80::).
    if (!inSubnet(n) && !(field === 'gateway' && n >> 118n === 0x3fan)) {
      issue('subnet-address-outside', 'error', `ipv6 ${field} ${text} is outside the subnet ${sub6.spec.prefix}`, sub6, field);
      return undefined;
    }
    return n;
  };
  const gw6 = single('gateway', sub6.spec.gateway);
  const srv6 = sub6.spec.server !== undefined ? single('server', sub6.spec.server) : sub6.spec.serve !== false ? defaultServer6(p6) : undefined;
  if (gw6 !== undefined && gw6 === srv6) {
    issue('subnet-server-is-gateway', 'error', `the address server ${bigToV6(srv6)} is also the gateway; give the server another address ("server")`,
      sub6, sub6.spec.server === undefined ? 'gateway' : 'server');
  }
  for (const d of sub6.spec.dns ?? []) {
    if (v6ToBig(d) === undefined) issue('subnet-address-invalid', 'error', `ipv6 dns ${JSON.stringify(d)} is not an IPv6 address`, sub6, 'dns');
  }
  if ((sub6.spec.pools ?? []).length) {
    issue('subnet-pool-invalid', 'error', 'ipv6 subnets have no pools: IPv6 addresses are static or configured by the guest (SLAAC)', sub6, 'pools');
  }
  for (const r of sub6.spec.reserved ?? []) {
    if (v6ToBig(r) === undefined) issue('subnet-reserved-invalid', 'error', `ipv6 reserved ${JSON.stringify(r)} is not an IPv6 address`, sub6, 'reserved');
  }
  let slaac = false;
  if (sub6.spec.serve !== false) {
    if (p6.len !== 64) {
      issue('subnet-slaac-prefix', 'error',
        `SLAAC needs a /64, but the ipv6 subnet is ${sub6.spec.prefix}; use a /64 or set "slaac: false" and give virts static addresses`, sub6, 'subnet');
    } else {
      slaac = true;
    }
  }
  return { sub: sub6, p: p6, gateway: gw6, server: srv6, slaac };
}
