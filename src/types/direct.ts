/** direct: the underlay interface itself is a port of the net's bridge. No isolation: one net per phys. */
import { quoteList } from '../core/problem.js';
import type { NetworkType } from './plugin.js';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface DirectOptions {}

declare module '../model/netmodel.js' {
  interface NetworkTypeOptions {
    direct: DirectOptions;
  }
}

export const direct: NetworkType<DirectOptions> = {
  name: 'direct',
  summary: 'the underlay interface bridged with the virts (flat L2, no isolation, one net per phys)',
  family: 'direct',
  needsPhysIp: false,
  needsMac: false,
  learning: true,
  needsGroup: false,
  overhead: () => 0,
  needs: { links: ['bridge'] },
  checks: {
    // The underlay interface is bridged: no other net (of any type) can use it too.
    phys(p, nets, c) {
      const label = `phys ${p.name}`;
      const own = nets.filter(({ t }) => t.name === 'direct');
      if (own.length > 1) {
        c.error('direct-net-shared', label,
          `it carries direct nets ${quoteList(own.map(({ n }) => n.name))}; a direct net bridges the underlay interface, so only one may use a phys`,
          p);
      } else if (own.length === 1 && nets.length > 1) {
        const others = nets.filter(({ t }) => t.name !== 'direct').map(({ n }) => n.name);
        c.error('direct-net-exclusive', label,
          `direct net "${own[0]!.n.name}" bridges the underlay interface, which the overlay of ${quoteList(others)} needs for its own traffic; a phys with a direct net carries no other net`,
          p);
      }
    },
  },
  compile(ctx) {
    if (!ctx.local.if) return [];
    return [{ kind: 'port', name: ctx.local.if, master: ctx.bridge, up: true }];
  },
};
