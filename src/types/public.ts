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
 *                         (that of private bridges: the host guard, src/policy/nft.ts), so
 *                         private nets stay isolated from the public one and the outside.
 */
import type { Net, Netmodel, Phys } from '../model/netmodel.js';
import { parsePrefix } from '../core/addr.js';
import type { AddrObject, KernelObject, NftTableObject, SysctlObject } from '../core/objects.js';
import { canonicalNftLine } from '../policy/nft.js';
import { nftTableName } from '../core/names.js';
import ipaddr from 'ipaddr.js';
import type { NetworkType } from './plugin.js';

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

export const publicNet: NetworkType = {
  name: 'public',
  summary: 'one routed segment per host: the host is the gateway (NAT or routed out of its uplink); nothing crosses hosts at L2',
  family: 'routed',
  needsPhysIp: false,
  needsMac: false,
  learning: true,
  needsGroup: false,
  overhead: () => 0,
  needs: { links: ['bridge'] },
  compile(ctx) {
    const gw = gatewayPrefix(ctx.net);
    return gw ? [{ kind: 'addr', dev: ctx.bridge, prefix: gw } satisfies AddrObject] : [];
  },
};

function subnetText(net: Net): string | undefined {
  const p = net.ipv4 ? parsePrefix(net.ipv4.spec.prefix) : undefined;
  if (!p) return undefined;
  return `${ipaddr.IPv4.networkAddressFromCIDR(`${p.ip}/${p.len}`).toString()}/${p.len}`;
}

/**
 * The host-wide objects of the public nets on `local`: forwarding and the `ip` table. `nets`:
 * every local net with its bridge and type (the public ones are taken).
 */
export function publicHostObjects(model: Netmodel, local: Phys, nets: { net: Net; bridge: string; type: string }[]): KernelObject[] {
  const pub = nets.filter((n) => n.type === 'public' && gatewayPrefix(n.net) !== undefined);
  if (!pub.length) return [];
  const nat: string[] = [];
  const forward: string[] = [FORWARD_HOOK];
  for (const { net, bridge } of pub) {
    const o = net.effectiveSettings()?.options ?? {};
    const uplink = o.uplink ?? local.if;
    const subnet = subnetText(net);
    if (!uplink || !subnet) continue;
    const up = JSON.stringify(uplink);
    const br = JSON.stringify(bridge);
    forward.push(`iifname ${br} oifname ${up} accept`);
    if ((o.mode ?? 'nat') === 'nat') {
      forward.push(`iifname ${up} oifname ${br} ct state established,related accept`);
      nat.push(`ip saddr ${subnet} oifname ${up} masquerade`);
    } else {
      forward.push(`iifname ${up} oifname ${br} accept`);
    }
  }
  // Other routed traffic of the public bridges is dropped; that of private bridges by the host
  // guard (src/policy/nft.ts hostGuardLines), on every host with a net.
  for (const { bridge } of [...pub].sort((a, b) => (a.bridge < b.bridge ? -1 : 1))) {
    const br = JSON.stringify(bridge);
    forward.push(`iifname ${br} oifname != ${br} drop`, `oifname ${br} iifname != ${br} drop`);
  }
  const chains: Record<string, string[]> = { forward: forward.map(canonicalNftLine) };
  if (nat.length) chains.postrouting = [NAT_HOOK, ...nat.map(canonicalNftLine)];
  const table: NftTableObject = { kind: 'nft', family: 'ip', name: nftTableName(model.name), chains };
  const sysctls: SysctlObject[] = FORWARDING_SYSCTLS.map((key) => ({ kind: 'sysctl', key, value: '1' }));
  return [table, ...sysctls];
}
