/**
 * vxlan/static: nothing is learned and unknown unicast is never flooded. Every virt's MAC is
 * programmed where it lives: on this host as a bridge entry on the virt's port; for remote
 * virts as a bridge entry on the VXLAN port plus a VXLAN entry toward the virt's phys.
 * Broadcast still reaches every virt: all-zero VXLAN entries replicate it to each remote phys.
 *
 * Works without tc flower (bridge + VXLAN FDB only) and with any number of hosts: replication
 * is done by the VXLAN driver, not by chained tc actions (LSDN's 32-action limit).
 */
import type { FdbObject } from '../core/objects.js';
import type { NetworkType } from './plugin.js';
import { STATIC_PORT, floodEntries, staticBridgeEntries, PORT_FIELD, sameNamedFields, type PortOptions } from './common.js';
import { VXLAN_PORT, vxlanLink, vxlanOverhead } from './vxlan.js';

export type VxlanStaticOptions = PortOptions;

declare module '../model/netmodel.js' {
  interface NetworkTypeOptions {
    'vxlan/static': VxlanStaticOptions;
  }
}

export const vxlanStatic: NetworkType<VxlanStaticOptions> = {
  name: 'vxlan/static',
  summary: 'VXLAN with every MAC programmed (no learning, no unknown-unicast flooding)',
  family: 'vxlan',
  defaultPort: VXLAN_PORT,
  idRange: [1, 16777215],
  needsPhysIp: true,
  needsMac: true,
  learning: false,
  needsGroup: false,
  overhead: vxlanOverhead,
  needs: { links: ['bridge', 'vxlan'] },
  file: sameNamedFields(PORT_FIELD),
  compile(ctx) {
    const link = vxlanLink(ctx, { vni: ctx.net.vid ?? 0, learning: false, brport: STATIC_PORT });
    const physIp = new Map([ctx.local, ...ctx.remotes].map((p) => [p.name, p.ip]));
    const remoteEntries: FdbObject[] = [];
    for (const v of ctx.remoteVirts) {
      const dst = v.physRef !== undefined ? physIp.get(v.physRef) : undefined;
      if (v.mac && dst) remoteEntries.push({ kind: 'fdb', dev: link.name, mac: v.mac, dst, table: 'self' });
    }
    return [link, ...floodEntries(link.name, ctx), ...remoteEntries, ...staticBridgeEntries(ctx, () => link.name)];
  },
};
