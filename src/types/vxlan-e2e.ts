/**
 * vxlan/e2e: one VXLAN device per net without a group; broadcast and unknown unicast are
 * replicated to every other attached phys (an all-zero FDB entry each); MACs are learned.
 */
import type { NetworkType } from './plugin.js';
import { floodEntries, PORT_FIELD, sameNamedFields, type PortOptions } from './common.js';
import { VXLAN_PORT, vxlanLink, vxlanOverhead } from './vxlan.js';

export type VxlanE2eOptions = PortOptions;

declare module '../model/netmodel.js' {
  interface NetworkTypeOptions {
    'vxlan/e2e': VxlanE2eOptions;
  }
}

export const vxlanE2e: NetworkType<VxlanE2eOptions> = {
  name: 'vxlan/e2e',
  summary: 'VXLAN with head-end replication to every attached phys; MACs are learned',
  family: 'vxlan',
  defaultPort: VXLAN_PORT,
  idRange: [1, 16777215],
  needsPhysIp: true,
  needsMac: false,
  learning: true,
  needsGroup: false,
  overhead: vxlanOverhead,
  needs: { links: ['bridge', 'vxlan'] },
  file: sameNamedFields(PORT_FIELD),
  compile(ctx) {
    const link = vxlanLink(ctx, { vni: ctx.net.vid ?? 0, learning: true });
    return [link, ...floodEntries(link.name, ctx)];
  },
};
