/** vlan: an 802.1Q sub-interface of the underlay (id = the net's vid) in the net's bridge. */
import type { NetworkType } from './plugin.js';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface VlanOptions {}

declare module '../model/netmodel.js' {
  interface NetworkTypeOptions {
    vlan: VlanOptions;
  }
}

export const vlan: NetworkType<VlanOptions> = {
  name: 'vlan',
  summary: '802.1Q VLAN on the underlay interface; MACs are learned',
  family: 'vlan',
  idRange: [1, 4094],
  needsPhysIp: false,
  needsMac: false,
  learning: true,
  needsGroup: false,
  overhead: () => 4,
  needs: { links: ['bridge', 'vlan'] },
  compile(ctx) {
    if (!ctx.local.if) return [];
    return [
      {
        kind: 'link',
        name: ctx.ifname('v'),
        type: 'vlan',
        alias: ctx.alias('vlan'),
        lower: ctx.local.if,
        up: true,
        mtu: ctx.virtMtu,
        master: ctx.bridge,
        attrs: { id: ctx.net.vid ?? 0 },
      },
    ];
  },
};
