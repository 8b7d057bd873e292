/** vxlan/mcast: one VXLAN device per net joined to a multicast group; the bridge learns. */
import type { NetworkType } from './plugin.js';
import { VXLAN_PORT, vxlanLink, vxlanOverhead } from './vxlan.js';

export const vxlanMcast: NetworkType = {
  name: 'vxlan/mcast',
  summary: 'VXLAN with a multicast group for broadcast and unknown unicast; MACs are learned',
  family: 'vxlan',
  defaultPort: VXLAN_PORT,
  idRange: [1, 16777215],
  needsPhysIp: false,
  needsMac: false,
  learning: true,
  needsGroup: true,
  overhead: vxlanOverhead,
  needs: { links: ['bridge', 'vxlan'] },
  compile(ctx) {
    const s = ctx.settings.options;
    return [vxlanLink(ctx, { vni: ctx.net.vid ?? 0, learning: true, group: s.mcastIp, ttl: s.ttl })];
  },
};
