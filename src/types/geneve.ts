/**
 * geneve (static) and geneve/e2e (learning). A Geneve device is point-to-point, so a net gets
 * one Geneve port per remote phys on its bridge. Broadcast is replicated by the bridge to all
 * of them. The static type programs every remote MAC on the port toward its phys and turns
 * learning and unknown-unicast flooding off; geneve/e2e lets the bridge learn. Tunnel ports
 * are `isolated`: a frame from one remote host is never sent on to another, which would loop
 * broadcasts around the full mesh of three or more hosts.
 */
import type { LinkObject } from '../core/objects.js';
import type { NetCompileContext, NetworkType } from './plugin.js';
import { PORT_FIELD, STATIC_PORT, TTL_FIELD, sameNamedFields, staticBridgeEntries, tunnelLink, type PortOptions } from './common.js';

export const GENEVE_PORT = 6081;

/** Options of geneve and geneve/e2e: the UDP port, the tunnels' TTL. */
export type GeneveOptions = PortOptions & { ttl?: number };

declare module '../model/netmodel.js' {
  interface NetworkTypeOptions {
    geneve: GeneveOptions;
    'geneve/e2e': GeneveOptions;
  }
}

function genevePorts(ctx: NetCompileContext<GeneveOptions>, brport?: LinkObject['brport']): LinkObject[] {
  const links: LinkObject[] = [];
  for (const r of ctx.remotes) {
    if (!r.ip) continue;
    const attrs: LinkObject['attrs'] = { id: ctx.net.vid ?? 0, remote: r.ip };
    if (ctx.options.ttl !== undefined) attrs.ttl = ctx.options.ttl;
    attrs.dstport = ctx.port;
    links.push(tunnelLink(ctx, 'geneve', ctx.ifname('g', r.name), `geneve:${r.name}`, attrs, brport));
  }
  return links;
}

const common = {
  family: 'geneve',
  defaultPort: GENEVE_PORT,
  idRange: [1, 16777215],
  needsPhysIp: true,
  needsGroup: false,
  overhead: (family: 4 | 6) => (family === 6 ? 70 : 50),
  needs: { links: ['bridge', 'geneve'] },
  file: sameNamedFields<GeneveOptions>({ ...PORT_FIELD, ...TTL_FIELD }),
} as const;

export const geneveStatic: NetworkType<GeneveOptions> = {
  ...common,
  name: 'geneve',
  summary: 'Geneve with every MAC programmed (no learning, no unknown-unicast flooding)',
  needsMac: true,
  learning: false,
  compile(ctx) {
    const ports = genevePorts(ctx, { ...STATIC_PORT, isolated: true });
    return [...ports, ...staticBridgeEntries(ctx, (phys) => ctx.ifname('g', phys))];
  },
};

export const geneveE2e: NetworkType<GeneveOptions> = {
  ...common,
  name: 'geneve/e2e',
  summary: 'Geneve with a tunnel port per remote phys; MACs are learned',
  needsMac: false,
  learning: true,
  compile(ctx) {
    return genevePorts(ctx, { isolated: true });
  },
};
