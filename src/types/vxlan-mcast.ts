/** vxlan/mcast: one VXLAN device per net joined to a multicast group; the bridge learns. */
import type { NetworkType } from './plugin.js';
import { GROUP_FIELD, PORT_FIELD, TTL_FIELD, sameNamedFields, type GroupOptions, type PortOptions } from './common.js';
import { VXLAN_PORT, vxlanLink, vxlanOverhead } from './vxlan.js';

export type VxlanMcastOptions = PortOptions & GroupOptions;

declare module '../model/netmodel.js' {
  interface NetworkTypeOptions {
    'vxlan/mcast': VxlanMcastOptions;
  }
}

export const vxlanMcast: NetworkType<VxlanMcastOptions> = {
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
  file: sameNamedFields({ ...PORT_FIELD, ...GROUP_FIELD, ...TTL_FIELD }),
  compile(ctx) {
    const s = ctx.options;
    return [vxlanLink(ctx, { vni: ctx.net.vid ?? 0, learning: true, group: s.mcastIp, ttl: s.ttl })];
  },
};
