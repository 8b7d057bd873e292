/**
 * Names and ownership marks of everything lsdn creates, and the tests that tell its objects
 * from others' (the reader, the planner and destroy rely on these alone):
 *
 *   links       ls<kind>-<8 hex of sha1(context, net, qualifier)>, alias "lsdn:<context>:net:<net>[:<part>]"
 *               (both marks required); e.g. lsb-3fa2c1d0 (bridge), lsx-... (vxlan), lsd-... (server veth)
 *   taps        the user's name (virt.if), alias "lsdn:<context>:tap:<net>/<virt>" on a tun link in tap mode
 *   servers     network namespace "<host tag>-d<8 hex of sha1(context, net)>"; host end of its veth lsd-...
 *   nftables    tables "lsdn" and "lsdn_*" (a context's: lsdn_<context>); a virt's chains v{in,out}-<8 hex>
 *
 * Interface names are short (12 characters, within Linux's 15), deterministic, and stable for
 * the same object.
 */
import { createHash } from 'node:crypto';

/** Prefix every interface lsdn creates starts with, and the alias prefix that marks ownership. */
export const OWNED_NAME_PREFIX = 'ls';
export const OWNED_ALIAS_PREFIX = 'lsdn:';

export function ownedIfname(context: string, kind: string, net: string, qualifier = ''): string {
  const h = createHash('sha1').update(`${context}\0${net}\0${qualifier}`).digest('hex').slice(0, 8);
  return `${OWNED_NAME_PREFIX}${kind}-${h}`;
}

export function netAlias(context: string, net: string, suffix?: string): string {
  return `${OWNED_ALIAS_PREFIX}${context}:net:${net}${suffix ? `:${suffix}` : ''}`;
}

/**
 * What an owned alias says: context, kind (`net` for links of a net, `tap` for a VM's tap),
 * and for a net its name and the part of it.
 */
export function parseAlias(alias: string): { context: string; kind?: string; net?: string; part?: string } | undefined {
  if (!alias.startsWith(OWNED_ALIAS_PREFIX)) return undefined;
  const [context, kind, net, ...part] = alias.slice(OWNED_ALIAS_PREFIX.length).split(':');
  if (!context) return undefined;
  return {
    context, ...(kind !== undefined ? { kind } : {}),
    ...(kind === 'net' && net !== undefined ? { net } : {}), ...(part.length ? { part: part.join(':') } : {}),
  };
}

/** Is this link (by name and alias) owned by lsdn (optionally: by one context)? */
export function isOwnedLink(name: string, alias: string | undefined, context?: string): boolean {
  if (!name.startsWith(OWNED_NAME_PREFIX) || !alias?.startsWith(OWNED_ALIAS_PREFIX)) return false;
  return context === undefined || alias.startsWith(`${OWNED_ALIAS_PREFIX}${context}:`);
}

// ---- taps (the name is the user's: the alias alone marks them) ---------------------------------

export function tapAlias(context: string, virt: { id: string }): string {
  return `${OWNED_ALIAS_PREFIX}${context}:tap:${virt.id}`;
}

/** Does an alias mark a tap (any context)? Its kind field says so (`lsdn:<context>:tap:...`). */
export function isTapAlias(alias: string | undefined): boolean {
  return alias !== undefined && parseAlias(alias)?.kind === 'tap';
}

/** Is this link an lsdn tap (of `context`, when given)? Both the kind and the alias must say so. */
export function isOwnedTap(kind: string | undefined, tunType: unknown, alias: string | undefined, context?: string): boolean {
  if (kind !== 'tun' || tunType !== 'tap' || !isTapAlias(alias)) return false;
  return context === undefined || parseAlias(alias as string)?.context === context;
}

// ---- address servers ---------------------------------------------------------------------------

/** Kind letter of the host end of a server's veth: `lsd-<hash>`. */
export const SERVER_PORT_KIND = 'd';
/** The server's interface inside its namespace. */
export const SERVER_IF = 'lsdn0';
/** Alias part that marks the host end of a server veth. */
export const SERVER_ALIAS_PART = 'dhcp';

/**
 * What names this host's server namespaces: the netns apply targets (`--netns`; a lab's phys
 * namespace, so the lab's prefix covers its servers), or `lsdn-<context>` in the root namespace.
 */
export function serverHostTag(netns: string | undefined, context: string): string {
  return netns ?? `lsdn-${context}`;
}

/** The namespace of a net's server on a host: `<hostTag>-d<8 hex of sha1(context, net)>`. */
export function serverNsName(hostTag: string, context: string, net: string): string {
  const h = createHash('sha1').update(`${context}\0${net}`).digest('hex').slice(0, 8);
  return `${hostTag}-d${h}`;
}

/** Does a namespace name look like a server of this host tag? */
export function isServerNsName(name: string, hostTag: string): boolean {
  return name.startsWith(`${hostTag}-d`) && /^[0-9a-f]{8}$/.test(name.slice(hostTag.length + 2));
}

/** Is this owned link the host end of an address server's veth? */
export function isServerPort(alias: string | undefined): boolean {
  return alias !== undefined && parseAlias(alias)?.part === SERVER_ALIAS_PART;
}

// ---- nftables ----------------------------------------------------------------------------------

/** The nftables table of a model context (the reader owns `lsdn` and `lsdn_*`). */
export function nftTableName(context: string): string {
  return `lsdn_${context}`;
}

/** Names of the nftables tables lsdn owns: `lsdn` and `lsdn_*`, in any family. */
export function isOwnedNftTable(name: string): boolean {
  return name === 'lsdn' || name.startsWith('lsdn_');
}

/** Chain of one virt and direction: `vin-<8 hex>` / `vout-<8 hex>` of sha1(context, net, virt). */
export function virtChainName(context: string, net: string, virt: string, dir: 'in' | 'out'): string {
  const h = createHash('sha1').update(`${context}\0${net}\0${virt}`).digest('hex').slice(0, 8);
  return `v${dir}-${h}`;
}
