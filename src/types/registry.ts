/** All network types by name. Adding a type: one file in this folder, one line here. */
import type { NetworkTypeName } from '../model/netmodel.js';
import type { NetworkType } from './plugin.js';
import { direct } from './direct.js';
import { vlan } from './vlan.js';
import { vxlanMcast } from './vxlan-mcast.js';
import { vxlanE2e } from './vxlan-e2e.js';
import { vxlanStatic } from './vxlan-static.js';
import { geneveE2e, geneveStatic } from './geneve.js';
import { vxvde } from './vxvde.js';
import { publicNet } from './public.js';

export const NETWORK_TYPE_PLUGINS: Record<NetworkTypeName, NetworkType> = {
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

export function networkType(name: NetworkTypeName): NetworkType {
  return NETWORK_TYPE_PLUGINS[name];
}

/** The UDP port a settings object uses (its own or its type's default). */
export function settingsPort(type: NetworkTypeName, port: number | undefined): number | undefined {
  return port ?? NETWORK_TYPE_PLUGINS[type].defaultPort;
}
