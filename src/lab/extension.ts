/**
 * The lab's own section of a model file (`lab:`), pure: what `lsdn lab` adds to the simulated
 * cluster that is no part of the netmodel (apply and validate ignore the section), checked here
 * into the lab's report with file:line locations (codes `lab-*`):
 *
 *   lab:
 *     physes:                       extra interfaces of simulated lsdn hosts
 *       b:
 *         links: { eth1: { segment: mgmt, ip: 198.18.0.2/24 } }
 *         multicast: eth1           the host's 224.0.0.0/4 route (default: its underlay interface; "none")
 *     clients:                      VDE clients, each on a host of its own on the underlay
 *       plug:
 *         run: vde_plug             vde_plug (a tap joined by `vde_plug tap://vde0 URL`), vdens, qemu
 *         url: vxvde://239.0.0.1    the cloud it joins (VDE's URL: /port=, /vni=, /ttl=, /if=)
 *         ip: 10.77.0.10/24         its address(es) in the cloud
 *         mac: 02:00:00:00:77:10    (default: made from its name)
 *         host: { ip: 192.168.77.10, links: {...}, multicast: ... }   its host: eth0 on the underlay
 *
 * Why a section of the file and not the netmodel: VDE clients are not lsdn's (lsdn never starts
 * them on real hosts), and a second segment or a host's multicast route is the simulated
 * network's, not the model's; one file still runs as `lsdn lab demo FILE` and applies as is.
 *
 * Clouds: a member's cloud is what it joins: a vxvde net's (group, port, VNI), a client URL's,
 * any other net by name. The lab's ping matrix expects members of one cloud to reach each other
 * and nobody else (check.ts).
 */
import { createHash } from 'node:crypto';
import { z, type ZodError, type ZodType } from 'zod';
import ipaddr from 'ipaddr.js';
import { familyOf, macIsMulticast, macIsZero, normalizeMac, parsePrefix } from '../core/addr.js';
import { interfaceNameProblem } from '../core/charset.js';
import type { SourceLoc } from '../core/location.js';
import type { Problem } from '../core/problem.js';
import type { FileSection } from '../file/load.js';
import type { Netmodel, Phys, Virt } from '../model/netmodel.js';
import { vxlanOverhead } from '../types/vxlan.js';
import { parseVxvdeUrl, VXVDE_DEFAULT_VNI, VXVDE_GROUP_V4, VXVDE_PORT, vxvdeGroup, type VxvdeOptions } from '../types/vxvde.js';

export const CLIENT_RUNS = ['vde_plug', 'vdens', 'qemu'] as const;
export type ClientRun = (typeof CLIENT_RUNS)[number];

// ---- the section's schema (also in the JSON Schema: scripts/gen-schema.ts) -----------------------

const linkSchema = z
  .object({
    segment: z.string().describe('the underlay segment it is on: a bridge of its own in the underlay namespace'),
    ip: z.string().describe('its address, with prefix length'),
  })
  .strict();
const hostFields = {
  links: z.record(z.string(), linkSchema).optional().describe('interfaces besides the underlay one, by name'),
  multicast: z.string().optional().describe('interface of the host\'s 224.0.0.0/4 route (default: its underlay interface), or "none"'),
};
const physSchema = z.object(hostFields).strict();
const clientSchema = z
  .object({
    run: z.enum(CLIENT_RUNS).describe('vde_plug: a tap joined by vde_plug; vdens: a vdens namespace; qemu: a guest on qemu\'s vde netdev'),
    url: z.string().describe('the VDE URL it joins: vxvde://GROUP[/port=P][/vni=V][/ttl=T][/if=IF]'),
    ip: z.union([z.string(), z.array(z.string())]).describe('its address(es) in the cloud, with prefix length (qemu: one IPv4 address)'),
    mac: z.string().optional().describe('its MAC (default: made from its name)'),
    host: z.object({ ip: z.string().describe("its host's underlay address (on eth0)"), ...hostFields }).strict(),
  })
  .strict();
export const labSectionSchema = z
  .object({
    physes: z.record(z.string(), physSchema).optional().describe('extra interfaces of simulated lsdn hosts'),
    clients: z.record(z.string(), clientSchema).optional().describe('VDE clients on hosts of their own on the underlay'),
  })
  .strict()
  .describe('lsdn lab only (apply ignores it): VDE clients and extra host interfaces of the simulated cluster');

// ---- what the section says -----------------------------------------------------------------------

export interface LabLink {
  name: string;
  segment: string;
  /** "ip/len" */
  ip: string;
}

export interface LabHost {
  links: LabLink[];
  /** The interface of the host's multicast route; "none": no such route; undefined: the underlay's. */
  multicast?: string;
}

/** A vxvde cloud: what VDE's URL and lsdn's settings name. */
export interface Cloud {
  group: string;
  port: number;
  vni: number;
}

export interface LabClient {
  name: string;
  run: ClientRun;
  url: string;
  cloud: Cloud;
  /** The URL's `/if=` (the interface it joins the group on). */
  urlIf?: string;
  /** "ip/len" */
  ips: string[];
  mac: string;
  /** Its host: eth0 on the underlay with `ip` ("ip/len"), and more. */
  host: LabHost & { ip: string };
  /** Its MTU: the cloud's overlay over its host's underlay (lsdn's default, 1500 minus 50/70). */
  mtu: number;
}

export interface LabExtension {
  physes: Map<string, LabHost>;
  clients: LabClient[];
  /** The section's own problems (fields, values), located. */
  problems: Problem[];
  /** Where parts of the section were written. */
  at(path: (string | number)[], key?: boolean): SourceLoc | undefined;
}

/** The client interface (vde_plug's tap, vdens' and the guest's NIC are named alike): `vde0`. */
export const CLIENT_IF = 'vde0';
/** A client host's underlay interface. */
export const CLIENT_UNDERLAY_IF = 'eth0';
const NAME_RE = /^[A-Za-z0-9_.-]{1,32}$/;
const SEGMENT_RE = /^[a-z0-9]{1,12}$/;
const UNDERLAY_MTU = 1500;

function normalizeGroup(ip: string): string {
  return ipaddr.isValid(ip) ? ipaddr.parse(ip).toNormalizedString() : ip;
}

/** The cloud of a VDE URL (`parseVxvdeUrl`'s fields), VDE's defaults filled in. */
export function urlCloud(f: Record<string, unknown>): Cloud {
  return {
    group: normalizeGroup((f.mcastIp as string | undefined) ?? VXVDE_GROUP_V4),
    port: (f.port as number | undefined) ?? VXVDE_PORT,
    vni: (f.vni as number | undefined) ?? VXVDE_DEFAULT_VNI,
  };
}

/** The cloud key of a lab member: a virt's net (vxvde: its cloud; other types: the net itself), or a client's URL. */
export function virtCloud(v: Virt): string {
  const s = v.net.effectiveSettings();
  if (s?.type !== 'vxvde' || !v.phys) return `net ${v.net.name}`;
  const o = s.options as VxvdeOptions;
  return cloudKey({ group: normalizeGroup(vxvdeGroup(o, v.phys)), port: o.port ?? VXVDE_PORT, vni: v.net.vid ?? o.vni ?? VXVDE_DEFAULT_VNI });
}

export function cloudKey(c: Cloud): string {
  return `vxvde ${c.group} port ${c.port} vni ${c.vni}`;
}

/** A client's member id in the lab's matrix: `<run>:<name>` (never a virt's `net/virt`). */
export function clientId(c: Pick<LabClient, 'run' | 'name'>): string {
  return `${c.run}:${c.name}`;
}

function madeMac(name: string): string {
  const h = createHash('sha1').update(`lab client\0${name}`).digest('hex');
  return `02:1d:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}:${h.slice(6, 8)}`;
}

function prefixText(s: string, defaultLen?: number): string | undefined {
  const p = parsePrefix(s);
  if (!p) return undefined;
  return `${p.ip}/${s.includes('/') ? p.len : (defaultLen ?? p.len)}`;
}

/** The lab section, parsed and checked on its own (the model's physes and settings: `labExtensionReport`). */
export function labExtension(section: FileSection | undefined): LabExtension {
  const problems: Problem[] = [];
  const at = section?.at ?? (() => undefined);
  const ext: LabExtension = { physes: new Map(), clients: [], problems, at };
  if (!section) return ext;
  const problem = (code: string, object: string, path: (string | number)[], message: string, key = false) =>
    problems.push({ code, severity: 'error', object, message, loc: at(path, key), path: ['lab', ...path] });
  function check<T>(schema: ZodType<T>, value: unknown, path: (string | number)[], object: string): T | undefined {
    const r = schema.safeParse(value ?? {});
    if (r.success) return r.data;
    for (const issue of (r.error as ZodError).issues) {
      const p = [...path, ...(issue.path as (string | number)[])];
      if (issue.code === 'unrecognized_keys') {
        for (const k of issue.keys) problem('lab-field-unknown', object, [...p, k], `unknown field "${k}"`, true);
      } else {
        problem('lab-field-invalid', object, p, `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`);
      }
    }
    return undefined;
  }
  const top = check(z.object({ physes: z.record(z.string(), z.unknown()).optional(), clients: z.record(z.string(), z.unknown()).optional() }).strict(), section.value, [], 'lab');
  if (!top) return ext;

  const host = (h: z.infer<typeof physSchema>, path: (string | number)[], object: string, main: string): LabHost => {
    const out: LabHost = { links: [] };
    for (const [name, l] of Object.entries(h.links ?? {})) {
      const why = interfaceNameProblem(name);
      if (why) problem('lab-link-invalid', object, [...path, 'links', name], `interface ${JSON.stringify(name)} ${why}`, true);
      else if (name === main) problem('lab-link-invalid', object, [...path, 'links', name], `interface "${name}" is the host's underlay interface already`, true);
      if (!SEGMENT_RE.test(l.segment)) problem('lab-segment-invalid', object, [...path, 'links', name, 'segment'], `segment ${JSON.stringify(l.segment)}: 1 to 12 lower-case letters and digits`);
      const ip = prefixText(l.ip);
      if (!ip || !l.ip.includes('/')) problem('lab-ip-invalid', object, [...path, 'links', name, 'ip'], `${JSON.stringify(l.ip)} is not an address with a prefix length`);
      if (!why && name !== main && ip && l.ip.includes('/') && SEGMENT_RE.test(l.segment)) out.links.push({ name, segment: l.segment, ip });
    }
    if (h.multicast !== undefined) {
      // (A phys's underlay interface is the model's: labExtensionReport checks against it.)
      if (main !== '' && h.multicast !== 'none' && h.multicast !== main && !(h.links ?? {})[h.multicast]) {
        problem('lab-multicast-unknown', object, [...path, 'multicast'], `multicast route interface "${h.multicast}" is neither ${main} nor one of the host's links ("none": no route)`);
      } else out.multicast = h.multicast;
    }
    return out;
  };

  for (const [name, raw] of Object.entries(top.physes ?? {})) {
    const h = check(physSchema, raw, ['physes', name], `phys ${name}`);
    if (h) ext.physes.set(name, host(h, ['physes', name], `phys ${name}`, ''));
  }

  for (const [name, raw] of Object.entries(top.clients ?? {})) {
    const path = ['clients', name];
    const object = `client ${name}`;
    if (!NAME_RE.test(name)) {
      problem('lab-client-name-invalid', object, path, 'a client name is 1 to 32 letters, digits, "_", "." or "-"', true);
      continue;
    }
    const c = check(clientSchema, raw, path, object);
    if (!c) continue;
    let ok = true;
    const url = parseVxvdeUrl(c.url);
    if ('error' in url) {
      problem('lab-url-invalid', object, [...path, 'url'], String(url.error));
      ok = false;
    }
    const ips: string[] = [];
    for (const [i, a] of (Array.isArray(c.ip) ? c.ip : [c.ip]).entries()) {
      const p = prefixText(a);
      if (!p || !a.includes('/')) {
        problem('lab-ip-invalid', object, [...path, 'ip', ...(Array.isArray(c.ip) ? [i] : [])], `${JSON.stringify(a)} is not an address with a prefix length`);
        ok = false;
      } else ips.push(p);
    }
    if (c.run === 'qemu' && (ips.length !== 1 || familyOf(ips[0]) !== 4)) {
      problem('lab-ip-invalid', object, [...path, 'ip'], 'a qemu guest takes one IPv4 address (its /init configures one)');
      ok = false;
    }
    const mac = c.mac !== undefined ? normalizeMac(c.mac) : madeMac(name);
    if (!mac || macIsZero(mac) || macIsMulticast(mac)) {
      problem('lab-mac-invalid', object, [...path, 'mac'], `MAC ${JSON.stringify(c.mac)} is not a unicast MAC`);
      ok = false;
    }
    const hostIp = prefixText(c.host.ip, 16);
    if (!hostIp) {
      problem('lab-ip-invalid', object, [...path, 'host', 'ip'], `${JSON.stringify(c.host.ip)} is not an IP address`);
      ok = false;
    }
    const h = host(c.host, [...path, 'host'], object, CLIENT_UNDERLAY_IF);
    if (!ok || 'error' in url || !mac || !hostIp) continue;
    const cloud = urlCloud(url);
    const urlIf = url.if as string | undefined;
    if (urlIf !== undefined && urlIf !== CLIENT_UNDERLAY_IF && !h.links.some((l) => l.name === urlIf)) {
      problem('lab-url-if-unknown', object, [...path, 'url'], `the URL's if=${urlIf} is no interface of the client's host (${[CLIENT_UNDERLAY_IF, ...h.links.map((l) => l.name)].join(', ')})`);
      continue;
    }
    ext.clients.push({
      name, run: c.run, url: c.url, cloud, ...(urlIf !== undefined ? { urlIf } : {}), ips, mac,
      host: { ...h, ip: hostIp },
      mtu: UNDERLAY_MTU - vxlanOverhead(familyOf(cloud.group)),
    });
  }
  return ext;
}

/**
 * The section against the model and the lab's layout: physes it names exist; the interfaces
 * vxvde settings join on (`if`) exist on the lab's hosts; no underlay address twice (physes,
 * clients, links); no MAC twice (clients, virts).
 */
export function labExtensionReport(model: Netmodel, ext: LabExtension, physAddrs: ReadonlyMap<string, string>): Problem[] {
  const out: Problem[] = [];
  const problem = (code: string, object: string, path: (string | number)[], message: string, key = false) =>
    out.push({ code, severity: 'error', object, message, loc: ext.at(path, key), path: ['lab', ...path] });
  for (const [name, h] of ext.physes) {
    const p = model.physes.get(name);
    if (!p) {
      problem('lab-phys-unknown', `phys ${name}`, ['physes', name], `no phys "${name}" in the model`, true);
      continue;
    }
    for (const l of h.links) {
      if (l.name === p.if) problem('lab-link-invalid', `phys ${name}`, ['physes', name, 'links', l.name], `interface "${l.name}" is the phys's underlay interface already`, true);
    }
    if (h.multicast !== undefined && h.multicast !== 'none' && h.multicast !== p.if && !h.links.some((l) => l.name === h.multicast)) {
      problem('lab-multicast-unknown', `phys ${name}`, ['physes', name, 'multicast'], `multicast route interface "${h.multicast}" is neither ${p.if ?? 'its underlay interface'} nor one of its links ("none": no route)`);
    }
  }
  const ifsOf = (p: Phys) => new Set([p.if, ...(ext.physes.get(p.name)?.links ?? []).map((l) => l.name)].filter((x): x is string => x !== undefined));
  for (const n of model.nets.values()) {
    const s = n.effectiveSettings();
    const iface = s?.type === 'vxvde' ? (s.options as VxvdeOptions).iface : undefined;
    if (!s || iface === undefined) continue;
    for (const p of n.physes) {
      if (!ifsOf(p).has(iface)) {
        out.push({
          code: 'lab-settings-if-missing', severity: 'error', object: `settings ${s.name}`,
          message: `net ${n.name} joins its group on "${iface}", which simulated phys ${p.name} lacks (give it lab.physes.${p.name}.links.${iface})`,
          ...(s.locOf('iface') ? { loc: s.locOf('iface') } : {}),
          path: ['settings', s.name, 'if'],
        });
      }
    }
  }
  const ips = new Map<string, string>();
  const seen = (ip: string, who: string, object: string, path: (string | number)[]) => {
    const bare = ip.split('/')[0] as string;
    const first = ips.get(bare);
    if (first) problem('lab-ip-duplicate', object, path, `address ${bare} is also ${first}'s`);
    else ips.set(bare, who);
  };
  for (const [name, a] of physAddrs) ips.set(a.split('/')[0] as string, `phys "${name}"`);
  for (const [name, h] of ext.physes) for (const l of h.links) seen(l.ip, `phys "${name}" ${l.name}`, `phys ${name}`, ['physes', name, 'links', l.name, 'ip']);
  const macs = new Map<string, string>();
  for (const v of model.virts()) {
    const m = v.mac !== undefined ? normalizeMac(v.mac) : undefined;
    if (m) macs.set(m, `virt ${v.id}`);
  }
  for (const c of ext.clients) {
    seen(c.host.ip, `client "${c.name}"`, `client ${c.name}`, ['clients', c.name, 'host', 'ip']);
    for (const l of c.host.links) seen(l.ip, `client "${c.name}" ${l.name}`, `client ${c.name}`, ['clients', c.name, 'host', 'links', l.name, 'ip']);
    const first = macs.get(c.mac);
    if (first) problem('lab-mac-duplicate', `client ${c.name}`, ['clients', c.name, 'mac'], `MAC ${c.mac} is also ${first}'s`);
    else macs.set(c.mac, `client ${c.name}`);
  }
  return out;
}

/** The segments the lab's hosts have links on (besides the underlay), sorted: a bridge `br-<segment>` each. */
export function labSegments(ext: LabExtension | undefined): string[] {
  if (!ext) return [];
  const all = [...ext.physes.values(), ...ext.clients.map((c) => c.host)].flatMap((h) => h.links.map((l) => l.segment));
  return [...new Set(all)].sort();
}
