/** direct: the underlay interface itself is a port of the net's bridge. No isolation: one net per phys. */
import type { NetworkType } from './plugin.js';

export const direct: NetworkType = {
  name: 'direct',
  summary: 'the underlay interface bridged with the virts (flat L2, no isolation, one net per phys)',
  family: 'direct',
  needsPhysIp: false,
  needsMac: false,
  learning: true,
  needsGroup: false,
  overhead: () => 0,
  needs: { links: ['bridge'] },
  compile(ctx) {
    if (!ctx.local.if) return [];
    return [{ kind: 'port', name: ctx.local.if, master: ctx.bridge, up: true }];
  },
};
