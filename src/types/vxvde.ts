/**
 * vxvde: join VDE's vxvde Local Area Cloud (see docs: VDE clients send from an ephemeral port
 * and answer to the source port they learned). The kernel device uses the group for all
 * traffic (`nolearning`, no per-MAC entries) and sends from its listening port (`srcport P
 * P+1`), so vxvde endpoints can answer it.
 */
import type { NetworkType } from './plugin.js';
import { vxlanLink, vxlanOverhead } from './vxlan.js';

export const VXVDE_PORT = 14789;
export const VXVDE_GROUP_V4 = '239.0.0.1';
export const VXVDE_GROUP_V6 = 'ff05:56de::1';

export const vxvde: NetworkType = {
  name: 'vxvde',
  summary: "VDE's vxvde cloud (multicast VXLAN that qemu, vde_plug and vdens can join)",
  family: 'vxlan',
  defaultPort: VXVDE_PORT,
  idRange: [1, 16777215],
  needsPhysIp: false,
  needsMac: false,
  learning: true,
  needsGroup: false,
  overhead: vxlanOverhead,
  needs: { links: ['bridge', 'vxlan'] },
  compile(ctx) {
    const s = ctx.settings.options;
    const group = s.mcastIp ?? (ctx.local.ip?.includes(':') ? VXVDE_GROUP_V6 : VXVDE_GROUP_V4);
    return [
      vxlanLink(ctx, {
        vni: ctx.net.vid ?? s.vni ?? 1,
        learning: false,
        group,
        ttl: s.ttl ?? 1,
        srcport: [ctx.port, ctx.port + 1],
        dev: s.iface,
      }),
    ];
  },
};
