/**
 * Settings: name, type, the options every type shares (port, multicast group, TTL), then the
 * options types own (their `checks.options`, src/types).
 */
import type { Settings } from '../model/netmodel.js';
import { ipFamily, isMulticastIp } from '../core/addr.js';
import { NETWORK_TYPES, isNetworkType, networkType, networkTypes } from '../types/registry.js';
import { isIntIn, q, settingsLabel, type Checker } from './checker.js';

export function checkSettings(c: Checker, s: Settings): void {
  const label = settingsLabel(s);
  c.checkName(label, 'settings', s.name, s);
  if (!isNetworkType(s.type)) {
    c.error('settings-type-unknown', label,
      `unknown network type ${q(s.type)} (known: ${NETWORK_TYPES.join(', ')})`, s, 'type');
    return;
  }
  const t = networkType(s.type);
  const o = s.options;
  const unused = (field: string, value: unknown): void =>
    c.warning('settings-option-unused', label, `${field} ${q(value)} is ignored by type ${t.name}`, s, field);

  if (o.port !== undefined) {
    if (!isIntIn(o.port, 1, 65535)) c.error('settings-port-invalid', label, `port ${q(o.port)} is outside 1..65535`, s, 'port');
    else if (t.defaultPort === undefined) unused('port', o.port);
  }

  if (o.mcastIp === undefined) {
    if (t.needsGroup) {
      c.error('settings-mcast-missing', label, `type ${t.name} needs a multicast group ("mcastIp")`, s, 'mcastIp');
    }
  } else if (!c.usesGroup(t)) {
    unused('mcastIp', o.mcastIp);
  } else if (typeof o.mcastIp !== 'string' || ipFamily(o.mcastIp) === undefined) {
    c.error('settings-mcast-invalid', label, `mcastIp ${q(o.mcastIp)} is not an IP address`, s, 'mcastIp');
  } else if (!isMulticastIp(o.mcastIp)) {
    c.error('settings-mcast-invalid', label,
      `mcastIp ${q(o.mcastIp)} is not a multicast address (IPv4 224.0.0.0/4, IPv6 ff00::/8)`, s, 'mcastIp');
  }

  if (o.ttl !== undefined && !isIntIn(o.ttl, 1, 255)) {
    c.error('settings-ttl-invalid', label, `ttl ${q(o.ttl)} is outside 1..255`, s, 'ttl');
  }

  // The options types own (vxvde: vni, iface).
  for (const owner of networkTypes()) owner.checks?.options?.(s, c.typeChecks);
}