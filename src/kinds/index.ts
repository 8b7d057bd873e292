/** Every kernel object kind, by its `kind`. Adding a kind: its file in this folder, its data type in src/core/objects.ts, one line here. */
import type { KernelObject } from '../core/objects.js';
import type { ObjectKind } from './kind.js';
import { ADDR } from './addr.js';
import { DHCP } from './dhcp.js';
import { FDB } from './fdb.js';
import { FILTER } from './filter.js';
import { LINK } from './link.js';
import { NEIGH } from './neigh.js';
import { NFT } from './nft.js';
import { PORT } from './port.js';
import { QDISC } from './qdisc.js';
import { SYSCTL } from './sysctl.js';
import { TAP } from './tap.js';

export const OBJECT_KINDS: { readonly [K in KernelObject['kind']]: ObjectKind<Extract<KernelObject, { kind: K }>> } = {
  link: LINK,
  port: PORT,
  fdb: FDB,
  neigh: NEIGH,
  addr: ADDR,
  nft: NFT,
  qdisc: QDISC,
  filter: FILTER,
  dhcp: DHCP,
  sysctl: SYSCTL,
  tap: TAP,
};

/** The kind of an object. */
export function kindOf<O extends KernelObject>(o: O): ObjectKind<O> {
  return OBJECT_KINDS[o.kind] as unknown as ObjectKind<O>;
}
