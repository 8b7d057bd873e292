/** Building blocks shared by several network types. */
import type { FdbObject, KernelObject, LinkObject, PortObject } from '../core/objects.js';
import type { NetCompileContext } from './plugin.js';

export const ZERO_MAC = '00:00:00:00:00:00';

/** Bridge-port flags of a port that must neither learn nor receive unknown unicast (static types). */
export const STATIC_PORT = { learning: false, flood: false } as const;

/** An owned tunnel link enslaved to the net's bridge. */
export function tunnelLink(
  ctx: NetCompileContext,
  type: LinkObject['type'],
  name: string,
  aliasSuffix: string,
  attrs: LinkObject['attrs'],
  brport?: LinkObject['brport'],
): LinkObject {
  const link: LinkObject = {
    kind: 'link',
    name,
    type,
    alias: ctx.alias(aliasSuffix),
    up: true,
    mtu: ctx.virtMtu,
    master: ctx.bridge,
    attrs,
  };
  if (brport) link.brport = { ...brport };
  return link;
}

/**
 * Static switching (vxlan/static, geneve): every virt's MAC is programmed where it lives.
 * Local virts get a bridge entry on their port; remote virts one on `uplinkFor(virt)`.
 */
export function staticBridgeEntries(ctx: NetCompileContext, uplinkFor: (physName: string) => string): FdbObject[] {
  const out: FdbObject[] = [];
  for (const v of ctx.localVirts) {
    if (v.mac && v.if) out.push({ kind: 'fdb', dev: v.if, mac: v.mac, table: 'master' });
  }
  for (const v of ctx.remoteVirts) {
    if (v.mac && v.physRef) out.push({ kind: 'fdb', dev: uplinkFor(v.physRef), mac: v.mac, table: 'master' });
  }
  return out;
}

/** Head-end replication: an all-zero entry per remote phys on a VXLAN device. */
export function floodEntries(dev: string, ctx: NetCompileContext): FdbObject[] {
  return ctx.remotes.filter((p) => p.ip).map((p) => ({ kind: 'fdb', dev, mac: ZERO_MAC, dst: p.ip, table: 'self' }) as FdbObject);
}

export type { KernelObject, PortObject };
