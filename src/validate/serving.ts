/**
 * The last validation phase (called from src/validate/validate.ts, after the addresses): the
 * types' late checks (public: its settings and nets) and address serving:
 *   dhcp-virt-no-mac        warning  a virt of a net serving DHCPv4 without a MAC never gets a lease
 */
import type { Netmodel } from '../model/netmodel.js';
import type { TypeCheckContext } from '../types/plugin.js';
import { isNetworkType, networkType, networkTypes } from '../types/registry.js';
import { served } from '../services/dhcp.js';

export function checkServing(model: Netmodel, c: TypeCheckContext): void {
  for (const s of model.settings.values()) for (const t of networkTypes()) t.checks?.lateOptions?.(s, c);
  for (const n of model.nets.values()) {
    const settings = n.effectiveSettings();
    if (settings && isNetworkType(settings.type)) networkType(settings.type).checks?.lateNet?.(n, settings, c);
    if (served(n.ipv4)) {
      for (const v of n.virts.values()) {
        if (v.mac === undefined && v.phys && c.inScope(v.phys)) {
          c.warning('dhcp-virt-no-mac', `virt ${v.id}`,
            `net ${n.name} serves DHCPv4 by MAC, and the virt has no "mac": it will get no lease (give it a MAC, or a static address)`, v, 'mac');
        }
      }
    }
  }
}
