/**
 * Dumps of a netmodel: the canonical file form (YAML or JSON; loading it gives the same
 * model back) and LSDN's JSON dump (`lsdnName`, `lsdnSettings`, `lsdnPhyses`, `lsdnNets`).
 */
import { stringify } from 'yaml';
import ipaddr from 'ipaddr.js';
import type { Netmodel, Rate, Rule, Virt } from '../model/netmodel.js';
import type { Subnet } from '../model/netmodel.js';
import { networkTypes, settingsPort } from '../types/registry.js';

const K = 1024;

/** A rate in bits/s in the largest 1024-based unit that holds it exactly. */
export function formatRateHuman(bits: number): string {
  for (const [unit, f] of [['gbit', K ** 3], ['mbit', K ** 2], ['kbit', K]] as const) {
    if (bits >= f && bits % f === 0) return `${bits / f}${unit}`;
  }
  return `${bits}bit`;
}

/** A size in bytes in the largest 1024-based unit that holds it exactly. */
export function formatSizeHuman(bytes: number): string {
  for (const [unit, f] of [['gb', K ** 3], ['mb', K ** 2], ['kb', K]] as const) {
    if (bytes >= f && bytes % f === 0) return `${bytes / f}${unit}`;
  }
  return `${bytes}b`;
}

function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    out[k] = v;
  }
  return out as Partial<T>;
}

function rateToFile(r: Rate | undefined) {
  if (!r) return undefined;
  return compact({
    avg: formatRateHuman(r.spec.avg),
    burst: formatSizeHuman(r.spec.burst),
    peak: r.spec.peak !== undefined ? formatRateHuman(r.spec.peak) : undefined,
  });
}

function ruleToFile(r: Rule) {
  return compact({ dir: r.direction, ...r.spec });
}

function virtToFile(v: Virt) {
  return compact({
    phys: v.physRef,
    if: v.if,
    mac: v.mac,
    ip: v.ips.length === 1 ? v.ips[0] : v.ips.length ? [...v.ips] : undefined,
    mtu: v.mtu,
    rules: v.rules.map(ruleToFile),
    rate: compact({ in: rateToFile(v.rates.in), out: rateToFile(v.rates.out) }),
    policy: policyToFile(v),
    stateful: v.stateful ? true : undefined,
    antiSpoof: v.antiSpoof ? undefined : false,
    tap: v.tap ? (Object.keys(v.tap).length ? { ...v.tap } : true) : undefined,
  });
}

/** The default actions, only when one differs from accept; one word when both are the same. */
function policyToFile(v: Virt) {
  const { in: i, out: o } = v.policy;
  if (i === 'accept' && o === 'accept') return undefined;
  return i === o ? i : compact({ in: i === 'accept' ? undefined : i, out: o === 'accept' ? undefined : o });
}

/** A net's subnet in the file form (`serve` is `dhcp` for IPv4, `slaac` for IPv6). */
function subnetToFile(sub: Subnet | undefined) {
  if (!sub) return undefined;
  const s = sub.spec;
  return compact({
    subnet: s.prefix,
    gateway: s.gateway,
    pools: sub.family === 4 ? s.pools : undefined,
    reserved: s.reserved,
    dns: s.dns,
    [sub.family === 4 ? 'dhcp' : 'slaac']: s.serve,
    server: s.server,
  });
}

/** The model as a plain object in the file schema (canonical: every attachment a virt does not imply is explicit). */
export function modelToFile(model: Netmodel): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const s of model.settings.values()) {
    // Every type's fields (in the file schema's order): options the type ignores are kept.
    settings[s.name] = compact({ type: s.type, ...Object.assign({}, ...networkTypes().map((t) => t.file?.toFile(s.options) ?? {})) });
  }
  const nets: Record<string, unknown> = {};
  for (const n of model.nets.values()) {
    const virts: Record<string, unknown> = {};
    for (const v of n.virts.values()) virts[v.name] = virtToFile(v);
    nets[n.name] = compact({ vid: n.vid, settings: n.settingsRef, mtu: n.mtu, ipv4: subnetToFile(n.ipv4), ipv6: subnetToFile(n.ipv6), virts });
  }
  const physes: Record<string, unknown> = {};
  for (const p of model.physes.values()) {
    const implied = new Set(p.virts().map((v) => v.net));
    const explicit = [...model.nets.values()].filter((n) => n.physes.has(p) && !implied.has(n)).map((n) => n.name);
    physes[p.name] = compact({ if: p.if, ip: p.ip, mtu: p.mtu, nets: explicit });
  }
  return compact({ name: model.name, settings, nets, physes, allocations: Object.fromEntries(model.allocations) });
}

export function dumpYaml(model: Netmodel): string {
  return stringify(modelToFile(model), { lineWidth: 0 });
}

export function dumpJson(model: Netmodel): string {
  return JSON.stringify(modelToFile(model), null, 2) + '\n';
}

function prefixMask(prefix: string): { ip: string; mask: string; family: 4 | 6 } {
  const [addr, len] = prefix.split('/');
  const parsed = ipaddr.parse(addr ?? '');
  const family = parsed.kind() === 'ipv4' ? 4 : 6;
  const bits = len !== undefined ? Number(len) : family === 4 ? 32 : 128;
  const mask = ipaddr.IPv4.isValid(addr ?? '') && family === 4 ? ipaddr.IPv4.subnetMaskFromPrefixLength(bits) : ipaddr.IPv6.subnetMaskFromPrefixLength(bits);
  return { ip: parsed.toString(), mask: mask.toString(), family };
}

function lsdnTargets(spec: Rule['spec']) {
  const targets: Record<string, string>[] = [];
  for (const dir of ['src', 'dst'] as const) {
    const mac = spec[`${dir}Mac`];
    if (mac) {
      const [m, mask] = mac.split('/');
      targets.push({ target: `${dir}_mac`, match: (m ?? '').toLowerCase(), matchMask: (mask ?? 'ff:ff:ff:ff:ff:ff').toLowerCase() });
    }
    const ip = spec[`${dir}Ip`];
    if (ip) {
      const p = prefixMask(ip);
      targets.push({ target: `${dir}_ipv${p.family}`, match: p.ip, matchMask: p.mask });
    }
  }
  return targets;
}

function lsdnQos(r: Rate | undefined) {
  if (!r) return undefined;
  // LSDN's C API took bytes per second and bytes.
  return compact({ avgRate: r.spec.avg / 8, burstSize: r.spec.burst, burstRate: r.spec.peak !== undefined ? r.spec.peak / 8 : undefined });
}

/** LSDN's JSON dump (`show -json`), with the same keys. */
export function dumpLsdnJson(model: Netmodel): string {
  const out = {
    lsdnName: model.name,
    lsdnSettings: [...model.settings.values()].map((s) =>
      compact({ settingsName: s.name, settingsType: s.type, port: settingsPort(s.type, s.options.port), ip: s.options.mcastIp }),
    ),
    lsdnPhyses: [...model.physes.values()].map((p) => compact({ physName: p.name, attrIp: p.ip, iface: p.if, isLocal: p.isLocal })),
    lsdnNets: [...model.nets.values()].map((n) => ({
      netName: n.name,
      vnetId: n.vid ?? 0,
      settings: n.effectiveSettings()?.name,
      physList: [...n.physes].map((p) => p.name),
      virts: [...n.virts.values()].map((v) =>
        compact({
          virtName: v.name,
          attrMac: v.mac,
          phys: v.physRef,
          iface: v.if,
          rules: v.rules.map((r) => ({ targets: lsdnTargets(r.spec), dir: r.direction, prio: r.spec.priority, action: r.spec.action })),
          qosIn: lsdnQos(v.rates.in),
          qosOut: lsdnQos(v.rates.out),
        }),
      ),
    })),
  };
  return JSON.stringify(out, null, 2) + '\n';
}
