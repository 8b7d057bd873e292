/** Helpers for the VXLAN family (vxlan/mcast, vxlan/e2e, vxlan/static, vxvde). */
import type { LinkObject } from '../core/objects.js';
import type { NetCompileContext } from './plugin.js';
import { tunnelLink } from './common.js';

export const VXLAN_PORT = 4789;

export function vxlanOverhead(family: 4 | 6): number {
  return family === 6 ? 70 : 50;
}

export interface VxlanOptions {
  vni: number;
  learning: boolean;
  group?: string;
  ttl?: number;
  srcport?: [number, number];
  /** Underlay device (default: the phys interface). */
  dev?: string;
  /** Seconds a learnt FDB entry lives without traffic (unset: the kernel's 300). */
  ageing?: number;
  /** IPv4 outer UDP checksums (false: `noudpcsum`, zero checksums); unset: the kernel's default. */
  udpcsum?: boolean;
  brport?: LinkObject['brport'];
}

/** The net's VXLAN device, in iproute2's argument order. */
export function vxlanLink(ctx: NetCompileContext<unknown>, o: VxlanOptions): LinkObject {
  const attrs: LinkObject['attrs'] = { id: o.vni };
  if (o.group) attrs.group = o.group;
  if (ctx.local.ip) attrs.local = ctx.local.ip;
  const dev = o.dev ?? ctx.local.if;
  if (dev) attrs.dev = dev;
  if (o.ttl !== undefined) attrs.ttl = o.ttl;
  attrs.dstport = ctx.port;
  if (o.srcport) attrs.srcport = `${o.srcport[0]} ${o.srcport[1]}`;
  attrs.learning = o.learning;
  if (o.udpcsum !== undefined) attrs.udpcsum = o.udpcsum;
  if (o.ageing !== undefined) attrs.ageing = o.ageing;
  return tunnelLink(ctx, 'vxlan', ctx.ifname('x'), 'vxlan', attrs, o.brport);
}
