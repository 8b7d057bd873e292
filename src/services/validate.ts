/**
 * Validation of address serving and public nets (called from src/validate/validate.ts):
 *   public-subnet-missing   error    a public net needs an IPv4 subnet with a gateway (the host's address on it)
 *   public-mode-invalid     error    settings `mode` is not nat or routed
 *   public-uplink-invalid   error    settings `uplink` is not a valid interface name
 *   public-uplink-missing   error    (apply) the uplink is not an interface of this host
 *   public-uplink-unknown   error    a public net on a phys with no interface and no `uplink`
 *   settings-option-unused  warning  mode/uplink on settings of another type
 *   dhcp-virt-no-mac        warning  a virt of a net serving DHCPv4 without a MAC never gets a lease
 *   public-ipv6-local       warning  a public net's IPv6 subnet is local to each host (only IPv4 is routed; RAs carry no default route)
 */
import type { Netmodel, Settings } from '../model/netmodel.js';
import type { Located } from '../core/location.js';
import type { Severity } from '../core/problem.js';
import { interfaceNameProblem, parsePrefix } from '../core/addr.js';
import { served } from './dhcp.js';

export type AddProblem = (severity: Severity, code: string, object: string, message: string, at?: Located, field?: string) => void;

export interface ServingScope {
  physes?: string[];
  host?: { interfaces: ReadonlySet<string> };
}

function checkPublicSettings(s: Settings, add: AddProblem): void {
  const label = `settings ${s.name}`;
  const o = s.options;
  if (s.type !== 'public') {
    for (const f of ['mode', 'uplink'] as const) {
      if (o[f] !== undefined) add('warning', 'settings-option-unused', label, `${f} ${JSON.stringify(o[f])} is ignored by type ${s.type}`, s, f);
    }
    return;
  }
  if (o.mode !== undefined && o.mode !== 'nat' && o.mode !== 'routed') {
    add('error', 'public-mode-invalid', label, `mode ${JSON.stringify(o.mode)} is neither "nat" nor "routed"`, s, 'mode');
  }
  if (o.uplink !== undefined) {
    const why = typeof o.uplink === 'string' ? interfaceNameProblem(o.uplink) : 'is not a string';
    if (why) add('error', 'public-uplink-invalid', label, `uplink ${JSON.stringify(o.uplink)} ${why}`, s, 'uplink');
  }
}

export function checkServing(model: Netmodel, scope: ServingScope, add: AddProblem): void {
  for (const s of model.settings.values()) checkPublicSettings(s, add);
  const inScope = (name: string) => !scope.physes || scope.physes.includes(name);
  for (const n of model.nets.values()) {
    const label = `net ${n.name}`;
    const settings = n.effectiveSettings();
    if (settings?.type === 'public') {
      const s = n.ipv4;
      if (!s || !parsePrefix(s.spec.prefix) || !s.spec.gateway) {
        add('error', 'public-subnet-missing', label,
          `a public net needs an ipv4 subnet with a gateway (the address its hosts answer on as the virts' router)${s ? ': ipv4 has no gateway' : ''}`,
          s ?? n, s ? 'gateway' : undefined);
      }
      if (n.ipv6 && parsePrefix(n.ipv6.spec.prefix)) {
        add('warning', 'public-ipv6-local', label,
          'hosts route only IPv4 for a public net: its IPv6 subnet reaches nothing beyond the virts of one host (router advertisements announce no default route)',
          n.ipv6, 'subnet');
      }
      const uplink = settings.options.uplink;
      for (const p of n.physes) {
        if (!inScope(p.name)) continue;
        const dev = uplink ?? p.if;
        if (dev === undefined) {
          add('error', 'public-uplink-unknown', label, `phys ${p.name} has no interface ("if") and settings ${settings.name} name no uplink: where would public traffic leave?`, n);
        } else if (scope.host && !scope.host.interfaces.has(dev)) {
          add('error', 'public-uplink-missing', label, `uplink ${dev} of phys ${p.name} does not exist on this host`, settings, uplink !== undefined ? 'uplink' : undefined);
        }
      }
    }
    if (served(n.ipv4)) {
      for (const v of n.virts.values()) {
        if (v.mac === undefined && v.phys && inScope(v.phys.name)) {
          add('warning', 'dhcp-virt-no-mac', `virt ${v.id}`,
            `net ${n.name} serves DHCPv4 by MAC, and the virt has no "mac": it will get no lease (give it a MAC, or a static address)`, v, 'mac');
        }
      }
    }
  }
}
