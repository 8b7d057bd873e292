/**
 * vxvde: join VDE's vxvde Local Area Cloud (see docs: VDE clients send from an ephemeral port
 * and answer to the source port they learned). The kernel device sends from its listening port
 * (`srcport P P+1`), so vxvde endpoints can answer it. Unicast, where the protocol allows it:
 *
 *   - toward remote lsdn hosts: a VXLAN entry per virt MAC whose host's IP the model gives
 *     (`dst IP`, the group port: lsdn hosts listen there), so lsdn hosts never flood each
 *     other's unicast to the group;
 *   - toward VDE clients (IPv4 group): the device learns (`learning`) MAC -> client IP, and the
 *     context's `ip` table (hostObjects below) learns the client's ephemeral port from its
 *     datagrams and writes it into the destination port of the kernel's unicast to that client
 *     (the kernel would send it to IP:P, where no vxvde socket listens). The port is written raw,
 *     without a checksum fix-up, so the device sends zero UDP checksums (`noudpcsum`); nft's
 *     fix-up of a UDP port is wrong for zero and for offloaded checksums (measured: nothing
 *     arrives). ICMP port-unreachable for such a datagram (the client restarted, its port went)
 *     forgets the port; the client's next datagram teaches the new one.
 *   - over IPv6 none of that: a zero UDP checksum is not allowed there (RFC 8200; the kernel
 *     drops such datagrams), so the datapath cannot rewrite ports; the device does not learn and
 *     everything not addressed to an lsdn host goes to the group (validation warns).
 *
 * Settings: `{ type: vxvde, mcastIp, port, vni, ttl, if }`, or a URL as VDE writes them:
 * "vxvde://[GROUP][/port=P][/vni=V][/ttl=T][/if=IF][/v4|/v6]".
 */
import { z } from 'zod';
import { familyOf } from '../core/addr.js';
import { interfaceNameProblem } from '../core/charset.js';
import { quote } from '../core/problem.js';
import type { FdbObject, NftTableObject } from '../core/objects.js';
import { nftTableName } from '../core/names.js';
import { canonicalNftLine } from '../kinds/nft.js';
import type { Phys } from '../model/netmodel.js';
import type { NetworkType, SettingsShorthand } from './plugin.js';
import { GROUP_FIELD, PORT_FIELD, TTL_FIELD, type GroupOptions, type PortOptions } from './common.js';
import { vxlanLink, vxlanOverhead } from './vxlan.js';

export const VXVDE_PORT = 14789;
export const VXVDE_GROUP_V4 = '239.0.0.1';
export const VXVDE_GROUP_V6 = 'ff05:56de::1';
/** The VNI of a net that gives no vid, when the settings name none. */
export const VXVDE_DEFAULT_VNI = 1;

export type VxvdeOptions = PortOptions & GroupOptions & {
  /** The default VNI of its nets (1). */
  vni?: number;
  /** Interface for the multicast join, overriding the phys interface (file: `if`). */
  iface?: string;
};

declare module '../model/netmodel.js' {
  interface NetworkTypeOptions {
    vxvde: VxvdeOptions;
  }
}

const ID_RANGE = [1, 16777215] as const;

/** Parse "vxvde://[GROUP][/opt=val]..." into the file fields of vxvde settings. */
export function parseVxvdeUrl(url: string): ({ type: 'vxvde' } & Record<string, unknown>) | { error: string } {
  const m = /^vxvde:\/\/([^/]*)((?:\/[^/]*)*)$/.exec(url.trim());
  if (!m) return { error: `invalid vxvde URL "${url}"` };
  const out: { type: 'vxvde' } & Record<string, unknown> = { type: 'vxvde' };
  if (m[1]) out.mcastIp = m[1].replace(/^\[|\]$/g, '');
  for (const opt of (m[2] ?? '').split('/').filter(Boolean)) {
    const [k, v] = opt.split('=', 2);
    const num = Number(v);
    switch (k) {
      case 'port':
      case 'vni':
      case 'ttl':
        if (v === undefined || !/^\d+$/.test(v)) return { error: `vxvde URL option ${k} needs a number, got "${v ?? ''}"` };
        out[k] = num;
        break;
      case 'if':
        if (!v) return { error: 'vxvde URL option if needs an interface name' };
        out.if = v;
        break;
      case 'v4':
      case 'v6':
        if (!out.mcastIp) out.mcastIp = k === 'v6' ? VXVDE_GROUP_V6 : VXVDE_GROUP_V4;
        break;
      default:
        return { error: `unsupported vxvde URL option "${k}" (lsdn supports port, vni, ttl, if, v4, v6)` };
    }
  }
  return out;
}

const shorthand: SettingsShorthand = {
  pattern: /^vxvde:\/\//,
  message: 'a settings object or a vxvde:// URL',
  parse: parseVxvdeUrl,
};

const int = z.number().int();

/** The group a vxvde device of these options joins on `phys` (the settings', else VDE's default of the phys' family). */
export function vxvdeGroup(o: VxvdeOptions, phys: Pick<Phys, 'ip'>): string {
  return o.mcastIp ?? (familyOf(phys.ip) === 6 ? VXVDE_GROUP_V6 : VXVDE_GROUP_V4);
}

/** The names in the context's `ip` table (merged with other types' chains there: public's), per group port P. */
export const VXVDE_NFT = {
  ports: (p: number) => `vxvde-ports-${p}`,
  seen: (p: number) => `vxvde-seen-${p}`,
  learn: (p: number) => `vxvde-learn-${p}`,
  in: 'vxvde-in',
  out: 'vxvde-out',
  rewrite: 'vxvde-rewrite',
} as const;
/**
 * How long the device keeps a learnt MAC without a frame from it (seconds; the kernel's default
 * is 300). It bounds how long unicast to a VDE client that restarted on another port and says
 * nothing is lost: once the entry is gone, frames for it go to the group again, and its answer
 * teaches the new port (VDE's own clients forget after 128 s, or at once when told it left).
 */
export const VXVDE_AGEING = 30;
/** How long a learnt client port is kept without a datagram from it: longer than the device's entry (the same datagrams refresh both). */
const PORT_TIMEOUT = '1m';

/**
 * The port learning of the vxvde nets on one host, as `nft -s list` prints it (the kernel keeps
 * the elements). Per group port P (the device sends from P, so a datagram to P from another
 * port is a VDE client's):
 *
 *   map  vxvde-ports-P  (client IP . VNI . inner source MAC) -> the client's UDP port
 *   set  vxvde-seen-P   (client IP . VNI . MAC . port) pairs already in the map: most datagrams
 *                       only refresh both; a new port replaces the map's (nft cannot update a
 *                       map's data in place, and replacing it per datagram races with lookups)
 *   input   a VXLAN datagram to P from another port -> learn; ICMP port-unreachable quoting our
 *           datagram (IPv4 header without options, source port P) -> forget that port
 *   output  the device's unicast (source and destination port P, not to a group) -> its
 *           destination port from the map (no entry: left as it is, an lsdn host's)
 *
 * One map per port, not the port in the key: nft 1.0.6 places a map's data in the register
 * after 16 bytes of key, so a longer key (20 bytes) is overwritten by its own data. The rewrite
 * runs in a chain without a protocol match of its own (the jump has it), so that nft writes and
 * prints it as a raw `th dport` store: in a `udp` context it prints (and reads back) `udp dport
 * set`, which fixes the checksum up.
 */
export function vxvdePortLearning(context: string, ports: readonly number[]): NftTableObject {
  const key = 'ip saddr . @th,96,24 . @th,176,48';
  const seen = `${key} . udp sport`;
  const hex = (n: number) => `0x${n.toString(16)}`;
  const sorted = [...new Set(ports)].sort((a, b) => a - b);
  const table: NftTableObject = { kind: 'nft', family: 'ip', name: nftTableName(context), sets: {}, chains: {} };
  const sets = table.sets as Record<string, string[]>;
  const inLines = ['type filter hook input priority filter; policy accept;'];
  for (const p of sorted) {
    const map = VXVDE_NFT.ports(p);
    const set = VXVDE_NFT.seen(p);
    sets[`map ${map}`] = [`typeof ${key} : udp sport`, 'size 65535', 'flags dynamic,timeout', `timeout ${PORT_TIMEOUT}`];
    sets[`set ${set}`] = [`typeof ${seen}`, 'size 65535', 'flags dynamic,timeout', `timeout ${PORT_TIMEOUT}`];
    table.chains[VXVDE_NFT.learn(p)] = [
      `${seen} @${set} update @${set} { ${seen} } update @${map} { ${key} : udp sport } return`,
      `delete @${map} { ${key} : udp sport } add @${map} { ${key} : udp sport } add @${set} { ${seen} }`,
    ];
    inLines.push(
      `udp dport ${p} udp sport != ${p} @th,64,8 0x8 jump ${VXVDE_NFT.learn(p)}`,
      // The quote: IPv4 header (0x45: no options) of UDP (0x11) from port P, then VXLAN flags, VNI, inner destination MAC.
      `icmp type destination-unreachable icmp code port-unreachable @th,64,8 0x45 @th,136,8 0x11 @th,224,16 ${hex(p)} @th,288,8 0x8 delete @${map} { ip saddr . @th,320,24 . @th,352,48 : 0 }`,
    );
  }
  table.chains[VXVDE_NFT.in] = inLines;
  table.chains[VXVDE_NFT.rewrite] = sorted.map((p) => `@th,0,32 ${hex(p * 65536 + p)} th dport set ip daddr . @th,96,24 . @th,128,48 map @${VXVDE_NFT.ports(p)}`);
  table.chains[VXVDE_NFT.out] = ['type filter hook output priority filter; policy accept;', `ip protocol udp ip daddr != 224.0.0.0/4 jump ${VXVDE_NFT.rewrite}`];
  for (const c of Object.keys(table.chains)) table.chains[c] = (table.chains[c] ?? []).map(canonicalNftLine);
  return table;
}

export const vxvde: NetworkType<VxvdeOptions> = {
  name: 'vxvde',
  summary: "VDE's vxvde cloud (multicast VXLAN that qemu, vde_plug and vdens can join)",
  family: 'vxlan',
  defaultPort: VXVDE_PORT,
  idRange: ID_RANGE,
  defaultId: (o) => o.vni ?? VXVDE_DEFAULT_VNI,
  needsPhysIp: false,
  needsMac: false,
  learning: true,
  needsGroup: false,
  acceptsGroup: true,
  overhead: vxlanOverhead,
  needs: { links: ['bridge', 'vxlan'] },
  file: {
    schema: {
      ...PORT_FIELD, ...GROUP_FIELD, ...TTL_FIELD,
      vni: int.optional().describe('vxvde: VNI of its nets when they give no vid (default 1)'),
      if: z.string().optional().describe('vxvde: interface for the multicast join (default: the phys interface)'),
    },
    fromFile: (f) => ({
      port: f.port as number | undefined, mcastIp: f.mcastIp as string | undefined, ttl: f.ttl as number | undefined,
      vni: f.vni as number | undefined, iface: f.if as string | undefined,
    }),
    toFile: (o) => ({ port: o.port, mcastIp: o.mcastIp, ttl: o.ttl, vni: o.vni, if: o.iface }),
  },
  shorthand,
  checks: {
    lateNet(n, s, c) {
      if (s.type !== 'vxvde') return;
      const o = s.options as VxvdeOptions;
      const v6 = [...n.physes].filter((p) => c.inScope(p) && familyOf(vxvdeGroup(o, p)) === 6).map((p) => p.name);
      if (v6.length) {
        c.warning('vxvde-ipv6-unicast', `net ${n.name}`,
          `over IPv6 (${v6.join(', ')}) lsdn sends what is not for an lsdn host to the group: every VDE client receives it (learning VDE clients' ports needs zero UDP checksums, which IPv6 forbids)`,
          n);
      }
    },
    // vni and iface are vxvde's alone.
    options(s, c) {
      const o = s.options;
      const label = `settings ${s.name}`;
      if (o.vni !== undefined) {
        if (s.type !== 'vxvde') c.unused(s, 'vni', o.vni);
        else if (!Number.isInteger(o.vni) || o.vni < ID_RANGE[0] || o.vni > ID_RANGE[1]) {
          c.error('settings-vni-invalid', label, `vni ${quote(o.vni)} is outside ${ID_RANGE[0]}..${ID_RANGE[1]}`, s, 'vni');
        }
      }
      if (o.iface !== undefined) {
        if (s.type !== 'vxvde') c.unused(s, 'iface', o.iface);
        else {
          const prob = interfaceNameProblem(o.iface);
          if (prob) c.error('settings-iface-invalid', label, `iface ${quote(o.iface)} ${prob}`, s, 'iface');
          else if (c.host && !c.host.interfaces.has(o.iface) && c.usedOnScopedPhys(s)) {
            c.error('underlay-interface-missing', label, `multicast interface ${quote(o.iface)} does not exist on this host`, s, 'iface');
          }
        }
      }
    },
  },
  compile(ctx) {
    const s = ctx.options;
    const group = vxvdeGroup(s, ctx.local);
    const v4 = familyOf(group) === 4;
    const link = vxlanLink(ctx, {
      vni: ctx.net.vid ?? s.vni ?? VXVDE_DEFAULT_VNI,
      // IPv4: learn VDE clients' IPs (their ports: hostObjects), with zero UDP checksums.
      learning: v4,
      group,
      ttl: s.ttl ?? 1,
      srcport: [ctx.port, ctx.port + 1],
      dev: s.iface,
      ...(v4 ? { udpcsum: false, ageing: VXVDE_AGEING } : {}),
    });
    // Remote lsdn virts: unicast to their host (which listens on the group port).
    const physIp = new Map(ctx.remotes.map((p) => [p.name, p.ip]));
    const entries: FdbObject[] = [];
    for (const v of ctx.remoteVirts) {
      const dst = v.physRef !== undefined ? physIp.get(v.physRef) : undefined;
      if (v.mac && dst && familyOf(dst) === familyOf(group)) entries.push({ kind: 'fdb', dev: link.name, mac: v.mac, dst, table: 'self' });
    }
    return [link, ...entries];
  },
  /** The port learning of the host's vxvde nets over IPv4 (one table, every group port). */
  hostObjects(model, local, nets) {
    const ports = nets.flatMap(({ net }) => {
      const o = (net.effectiveSettings()?.options ?? {}) as VxvdeOptions;
      return familyOf(vxvdeGroup(o, local)) === 4 ? [o.port ?? VXVDE_PORT] : [];
    });
    return ports.length ? [vxvdePortLearning(model.name, ports)] : [];
  },
};
