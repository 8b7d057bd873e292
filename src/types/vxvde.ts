/**
 * vxvde: join VDE's vxvde Local Area Cloud (see docs: VDE clients send from an ephemeral port
 * and answer to the source port they learned). The kernel device uses the group for all
 * traffic (`nolearning`, no per-MAC entries) and sends from its listening port (`srcport P
 * P+1`), so vxvde endpoints can answer it.
 *
 * Settings: `{ type: vxvde, mcastIp, port, vni, ttl, if }`, or a URL as VDE writes them:
 * "vxvde://[GROUP][/port=P][/vni=V][/ttl=T][/if=IF][/v4|/v6]".
 */
import { z } from 'zod';
import { familyOf, interfaceNameProblem } from '../core/addr.js';
import { quote } from '../core/problem.js';
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
    const group = s.mcastIp ?? (familyOf(ctx.local.ip) === 6 ? VXVDE_GROUP_V6 : VXVDE_GROUP_V4);
    return [
      vxlanLink(ctx, {
        vni: ctx.net.vid ?? s.vni ?? VXVDE_DEFAULT_VNI,
        learning: false,
        group,
        ttl: s.ttl ?? 1,
        srcport: [ctx.port, ctx.port + 1],
        dev: s.iface,
      }),
    ];
  },
};
