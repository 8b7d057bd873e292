/** Building blocks shared by several network types: settings options, links and FDB entries. */
import { z } from 'zod';
import type { FdbObject, KernelObject, LinkObject, PortObject } from '../core/objects.js';
import type { NetCompileContext, SettingsFileFields } from './plugin.js';

// ---- settings options several types take --------------------------------------------------------

/** The overlay's UDP port (the type's default when unset). */
export interface PortOptions {
  port?: number;
}
/** A multicast group and its TTL. */
export interface GroupOptions {
  mcastIp?: string;
  ttl?: number;
}

const int = z.number().int();
export const PORT_FIELD = { port: int.optional().describe('UDP port of the overlay (vxlan 4789, geneve 6081, vxvde 14789 by default)') };
export const GROUP_FIELD = { mcastIp: z.string().optional().describe('multicast group (vxlan/mcast; vxvde, default 239.0.0.1)') };
export const TTL_FIELD = { ttl: int.optional().describe('multicast TTL (vxlan/mcast, vxvde)') };

/**
 * File fields named like the model's options: each is copied both ways (the loader has always
 * given these keys, undefined when the file leaves them out).
 */
export function sameNamedFields<O>(schema: Record<string, z.ZodType>): SettingsFileFields<O> {
  const keys = Object.keys(schema);
  return {
    schema,
    fromFile: (f) => Object.fromEntries(keys.map((k) => [k, f[k]])) as O,
    toFile: (o) => Object.fromEntries(keys.map((k) => [k, (o as Record<string, unknown>)[k]])),
  };
}

// ---- kernel objects ----------------------------------------------------------------------------

export const ZERO_MAC = '00:00:00:00:00:00';

/** Bridge-port flags of a port that must neither learn nor receive unknown unicast (static types). */
export const STATIC_PORT = { learning: false, flood: false } as const;

/** An owned tunnel link enslaved to the net's bridge. */
export function tunnelLink(
  ctx: NetCompileContext<unknown>,
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
export function staticBridgeEntries(ctx: NetCompileContext<unknown>, uplinkFor: (physName: string) => string): FdbObject[] {
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
export function floodEntries(dev: string, ctx: NetCompileContext<unknown>): FdbObject[] {
  return ctx.remotes.filter((p) => p.ip).map((p) => ({ kind: 'fdb', dev, mac: ZERO_MAC, dst: p.ip, table: 'self' }) as FdbObject);
}

export type { KernelObject, PortObject };
