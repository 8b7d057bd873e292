/**
 * public: the net through which virts reach the outside world via their host (the Cyclades
 * design's one public network). Nothing crosses hosts at L2: each host's bridge of the net is a
 * separate segment carrying the subnet's gateway address, and the host routes between it and
 * its uplink: with `mode: nat` (default) the subnet is masqueraded out of the uplink, with
 * `mode: routed` it is forwarded as it is (the outside must route the subnet to the hosts).
 *
 * Host-wide objects (one per host, whatever the number of public nets):
 *   sysctl net.ipv4.ip_forward = 1   forwarding on (destroy leaves it on: other things may rely on it)
 *   table ip lsdn_<context>
 *     chain postrouting   nat: `ip saddr SUBNET oifname UPLINK masquerade` per nat-mode net
 *     chain forward       public bridge -> uplink accepted, replies (nat) or everything (routed)
 *                         back; any other routed traffic into or out of a public bridge dropped
 *                         (that of private bridges: the host guard, src/policy/firewall.ts), so
 *                         private nets stay isolated from the public one and the outside.
 *
 * Validation (after the addresses, with the address-serving checks):
 *   public-subnet-missing   error    a public net needs an IPv4 subnet with a gateway (the host's address on it)
 *   public-mode-invalid     error    settings `mode` is not nat or routed
 *   public-uplink-invalid   error    settings `uplink` is not a valid interface name
 *   public-uplink-missing   error    (apply) the uplink is not an interface of this host
 *   public-uplink-unknown   error    a public net on a phys with no interface and no `uplink`
 *   settings-option-unused  warning  mode/uplink on settings of another type
 *   public-ipv6-local       warning  a public net's IPv6 subnet is local to each host (only IPv4 is routed; RAs carry no default route)
 */
import { z } from 'zod';
import ipaddr from 'ipaddr.js';
import type { Net } from '../model/netmodel.js';
import { parsePrefix } from '../core/addr.js';
import { interfaceNameProblem } from '../core/charset.js';
import type { AddrObject, KernelObject, NftTableObject, SysctlObject } from '../core/objects.js';
import { nftTableName } from '../core/names.js';
import { canonicalNftLine } from '../kinds/nft.js';
import { nftString } from '../kinds/escape.js';
import type { NetworkType } from './plugin.js';

export interface PublicOptions {
  /** How virts reach the outside: `nat` (masquerade on the uplink, default) or `routed`. */
  mode?: 'nat' | 'routed';
  /** The host's interface to the outside (default: the phys interface). */
  uplink?: string;
}

declare module '../model/netmodel.js' {
  interface NetworkTypeOptions {
    public: PublicOptions;
  }
}

export const FORWARDING_SYSCTLS = ['net.ipv4.ip_forward'];

export const NAT_HOOK = 'type nat hook postrouting priority srcnat; policy accept;';
export const FORWARD_HOOK = 'type filter hook forward priority filter; policy accept;';

/** The gateway address on the net's bridge ("ip/len"), when the net has an IPv4 subnet with a gateway. */
export function gatewayPrefix(net: Net): string | undefined {
  const s = net.ipv4;
  const p = s ? parsePrefix(s.spec.prefix) : undefined;
  if (!s?.spec.gateway || !p || parsePrefix(s.spec.gateway)?.family !== 4) return undefined;
  return `${s.spec.gateway}/${p.len}`;
}

function subnetText(net: Net): string | undefined {
  const p = net.ipv4 ? parsePrefix(net.ipv4.spec.prefix) : undefined;
  if (!p) return undefined;
  return `${ipaddr.IPv4.networkAddressFromCIDR(`${p.ip}/${p.len}`).toString()}/${p.len}`;
}

const OPTIONS = ['mode', 'uplink'] as const;

export const publicNet: NetworkType<PublicOptions> = {
  name: 'public',
  summary: 'one routed segment per host: the host is the gateway (NAT or routed out of its uplink); nothing crosses hosts at L2',
  family: 'routed',
  needsPhysIp: false,
  needsMac: false,
  learning: true,
  needsGroup: false,
  overhead: () => 0,
  needs: { links: ['bridge'] },
  file: {
    schema: {
      mode: z.enum(['nat', 'routed']).optional().describe('public: nat (masquerade on the uplink, default) or routed'),
      uplink: z.string().optional().describe('public: the host interface to the outside (default: the phys interface)'),
    },
    fromFile: (f) => ({
      ...(f.mode !== undefined ? { mode: f.mode as PublicOptions['mode'] } : {}),
      ...(f.uplink !== undefined ? { uplink: f.uplink as string } : {}),
    }),
    toFile: (o) => ({ mode: o.mode, uplink: o.uplink }),
  },
  routed: { gateway: gatewayPrefix },
  checks: {
    lateOptions(s, c) {
      const label = `settings ${s.name}`;
      const o = s.options;
      if (s.type !== 'public') {
        for (const f of OPTIONS) {
          if (o[f] !== undefined) c.warning('settings-option-unused', label, `${f} ${JSON.stringify(o[f])} is ignored by type ${s.type}`, s, f);
        }
        return;
      }
      if (o.mode !== undefined && o.mode !== 'nat' && o.mode !== 'routed') {
        c.error('public-mode-invalid', label, `mode ${JSON.stringify(o.mode)} is neither "nat" nor "routed"`, s, 'mode');
      }
      if (o.uplink !== undefined) {
        const why = typeof o.uplink === 'string' ? interfaceNameProblem(o.uplink) : 'is not a string';
        if (why) c.error('public-uplink-invalid', label, `uplink ${JSON.stringify(o.uplink)} ${why}`, s, 'uplink');
      }
    },
    lateNet(n, settings, c) {
      const label = `net ${n.name}`;
      const s = n.ipv4;
      if (!s || !parsePrefix(s.spec.prefix) || !s.spec.gateway) {
        c.error('public-subnet-missing', label,
          `a public net needs an ipv4 subnet with a gateway (the address its hosts answer on as the virts' router)${s ? ': ipv4 has no gateway' : ''}`,
          s ?? n, s ? 'gateway' : undefined);
      }
      if (n.ipv6 && parsePrefix(n.ipv6.spec.prefix)) {
        c.warning('public-ipv6-local', label,
          'hosts route only IPv4 for a public net: its IPv6 subnet reaches nothing beyond the virts of one host (router advertisements announce no default route)',
          n.ipv6, 'subnet');
      }
      const uplink = settings.options.uplink;
      for (const p of n.physes) {
        if (!c.inScope(p)) continue;
        const dev = uplink ?? p.if;
        if (dev === undefined) {
          c.error('public-uplink-unknown', label, `phys ${p.name} has no interface ("if") and settings ${settings.name} name no uplink: where would public traffic leave?`, n);
        } else if (c.host && !c.host.interfaces.has(dev)) {
          c.error('public-uplink-missing', label, `uplink ${dev} of phys ${p.name} does not exist on this host`, settings, uplink !== undefined ? 'uplink' : undefined);
        }
      }
    },
  },
  compile(ctx) {
    const gw = gatewayPrefix(ctx.net);
    return gw ? [{ kind: 'addr', dev: ctx.bridge, prefix: gw } satisfies AddrObject] : [];
  },
  /** Forwarding and the `ip` table of the public nets on `local` (those with a gateway). */
  hostObjects(model, local, nets) {
    const pub = nets.filter((n) => gatewayPrefix(n.net) !== undefined);
    if (!pub.length) return [];
    const nat: string[] = [];
    const forward: string[] = [FORWARD_HOOK];
    for (const { net, bridge } of pub) {
      const o: PublicOptions = net.effectiveSettings()?.options ?? {};
      const uplink = o.uplink ?? local.if;
      const subnet = subnetText(net);
      if (!uplink || !subnet) continue;
      const up = nftString(uplink);
      const br = nftString(bridge);
      forward.push(`iifname ${br} oifname ${up} accept`);
      if ((o.mode ?? 'nat') === 'nat') {
        forward.push(`iifname ${up} oifname ${br} ct state established,related accept`);
        nat.push(`ip saddr ${subnet} oifname ${up} masquerade`);
      } else {
        forward.push(`iifname ${up} oifname ${br} accept`);
      }
    }
    // Other routed traffic of the public bridges is dropped; that of private bridges by the host
    // guard (src/policy/firewall.ts hostGuardLines), on every host with a net.
    for (const { bridge } of [...pub].sort((a, b) => (a.bridge < b.bridge ? -1 : 1))) {
      const br = nftString(bridge);
      forward.push(`iifname ${br} oifname != ${br} drop`, `oifname ${br} iifname != ${br} drop`);
    }
    const chains: Record<string, string[]> = { forward: forward.map(canonicalNftLine) };
    if (nat.length) chains.postrouting = [NAT_HOOK, ...nat.map(canonicalNftLine)];
    const table: NftTableObject = { kind: 'nft', family: 'ip', name: nftTableName(model.name), chains };
    const sysctls: SysctlObject[] = FORWARDING_SYSCTLS.map((key) => ({ kind: 'sysctl', key, value: '1' }));
    const out: KernelObject[] = [table, ...sysctls];
    return out;
  },
  // IP forwarding is lsdn's concern only where its public nets' chains are (one process then);
  // the context's ip table may hold another type's chains only (vxvde's).
  hostSysctls: (owned) => (owned.some((o) => o.kind === 'nft' && o.family === 'ip' && 'forward' in o.chains) ? FORWARDING_SYSCTLS : []),
};
