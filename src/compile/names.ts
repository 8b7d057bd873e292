/**
 * Names and ownership marks of the kernel objects lsdn creates. Interface names are short
 * (12 characters, within Linux's 15), deterministic, and stable for the same object:
 *   ls<kind>-<8 hex of sha1(context, net, qualifier)>   e.g. lsb-3fa2c1d0 (bridge), lsx-... (vxlan)
 * Aliases carry what the object is for: "lsdn:<context>:net:<net>[:<suffix>]".
 */
import { createHash } from 'node:crypto';
import { OWNED_ALIAS_PREFIX, OWNED_NAME_PREFIX } from './state.js';

export function ownedIfname(context: string, kind: string, net: string, qualifier = ''): string {
  const h = createHash('sha1').update(`${context}\0${net}\0${qualifier}`).digest('hex').slice(0, 8);
  return `${OWNED_NAME_PREFIX}${kind}-${h}`;
}

export function netAlias(context: string, net: string, suffix?: string): string {
  return `${OWNED_ALIAS_PREFIX}${context}:net:${net}${suffix ? `:${suffix}` : ''}`;
}

/**
 * What an owned alias says: context, kind (`net` for links of a net, `tap` for a VM's tap:
 * src/vm/tap.ts), and for a net its name and the part of it.
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
