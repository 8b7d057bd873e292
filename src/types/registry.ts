/**
 * All network types by name, in the order lsdn lists them (doctor, the file schema, the goldens).
 * Adding a type: its file in this folder, and one line here.
 */
import type { NetworkTypeName, NetworkTypeOptions } from '../model/netmodel.js';
import type { NetworkType, SettingsShorthand } from './plugin.js';
import { direct } from './direct.js';
import { vlan } from './vlan.js';
import { vxlanMcast } from './vxlan-mcast.js';
import { vxlanE2e } from './vxlan-e2e.js';
import { vxlanStatic } from './vxlan-static.js';
import { geneveE2e, geneveStatic } from './geneve.js';
import { vxvde } from './vxvde.js';
import { publicNet } from './public.js';

export const NETWORK_TYPE_PLUGINS: { readonly [N in NetworkTypeName]: NetworkType<NetworkTypeOptions[N]> } = {
  direct,
  vlan,
  'vxlan/mcast': vxlanMcast,
  'vxlan/e2e': vxlanE2e,
  'vxlan/static': vxlanStatic,
  geneve: geneveStatic,
  'geneve/e2e': geneveE2e,
  vxvde,
  public: publicNet,
};

/** The type names, in registry order. */
export const NETWORK_TYPES = Object.keys(NETWORK_TYPE_PLUGINS) as [NetworkTypeName, ...NetworkTypeName[]];

export function isNetworkType(s: string): s is NetworkTypeName {
  return Object.prototype.hasOwnProperty.call(NETWORK_TYPE_PLUGINS, s);
}

export function networkType(name: NetworkTypeName): NetworkType {
  return NETWORK_TYPE_PLUGINS[name] as NetworkType;
}

/** Every type, in registry order. */
export function networkTypes(): NetworkType[] {
  return NETWORK_TYPES.map(networkType);
}

/** The UDP port a settings object uses (its own or its type's default). */
export function settingsPort(type: NetworkTypeName, port: number | undefined): number | undefined {
  return port ?? NETWORK_TYPE_PLUGINS[type].defaultPort;
}

/** The shorthands settings may be written as in the file (vxvde URLs), in registry order. */
export function settingsShorthands(): SettingsShorthand[] {
  return networkTypes().flatMap((t) => (t.shorthand ? [t.shorthand] : []));
}
