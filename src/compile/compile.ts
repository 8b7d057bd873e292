/**
 * The compiler: (netmodel, local phys, host facts) -> the desired kernel state of that host.
 * Pure and deterministic. Common to every type: one bridge per net attached here and the
 * local virts' interfaces as its ports; the net's type plug-in adds its uplinks and entries.
 */
import type { Net, Netmodel, Phys, Virt } from '../model/netmodel.js';
import { networkType, networkTypes, settingsPort } from '../types/registry.js';
import { STATIC_PORT } from '../types/common.js';
import { familyOf } from '../core/addr.js';
import type { LocalNet, NetCompileContext } from '../types/plugin.js';
import { HostState, objectKey, type KernelObject, type LinkObject, type NftTableObject, type PortObject } from '../core/objects.js';
import { netAlias, ownedIfname, serverHostTag } from '../core/names.js';
import { shapingObjects } from '../policy/shaping.js';
import { firewallTables, type LocalVirt } from '../policy/firewall.js';
import { tapObject } from './tap.js';
import { compileServers } from '../services/dhcp.js';
import { assignAddresses, type VirtAddressing } from '../ipam/ipam.js';
import type { OwnerIds } from '../kinds/tap.js';

/** What the compiler needs to know about the host besides the model. */
export interface HostFacts {
  /** MTU of interfaces by name (the underlay's, when the model gives none). */
  mtu?: ReadonlyMap<string, number>;
  /**
   * What names this host's address-server namespaces (src/services/dhcp.ts): the netns apply
   * targets (`--netns`), else `lsdn-<context>` (the default).
   */
  hostTag?: string;
  /** Runtime dir root of the address servers' files (default /run/lsdn; `LSDN_RUN_DIR` at apply). */
  runDir?: string;
  /**
   * Every virt's addresses, when already computed for this model (validation computes them:
   * `validateWithAddressing`); default: `assignAddresses(model)`. A pure function of the model,
   * so handing it on changes nothing but the time.
   */
  addressing?: Map<string, VirtAddressing>;
  /** This host's users and groups (src/kernel/owners.ts): tap owners compile to numeric ids. */
  owners?: OwnerIds;
}

export const DEFAULT_UNDERLAY_MTU = 1500;

function byName<T extends { name: string }>(a: T, b: T): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
function byId(a: Virt, b: Virt): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function underlayMtu(phys: Phys, facts: HostFacts = {}): number {
  return phys.mtu ?? (phys.if ? facts.mtu?.get(phys.if) : undefined) ?? DEFAULT_UNDERLAY_MTU;
}

/** The MTU of a net's overlay on a phys: the net's own, else underlay minus encapsulation overhead. */
export function overlayMtu(net: Net, phys: Phys, facts: HostFacts = {}): number | undefined {
  const settings = net.effectiveSettings();
  if (!settings) return undefined;
  return net.mtu ?? underlayMtu(phys, facts) - networkType(settings.type).overhead(familyOf(phys.ip));
}

/** Nets that have kernel state on `phys`: those attached to it, in declaration order. */
export function localNets(model: Netmodel, phys: Phys): Net[] {
  return [...model.nets.values()].filter((n) => n.physes.has(phys));
}

/** The desired objects of one net on one phys. */
export function compileNet(model: Netmodel, net: Net, local: Phys, facts: HostFacts = {}): KernelObject[] {
  const settings = net.effectiveSettings();
  if (!settings) return [];
  const type = networkType(settings.type);
  const bridge = ownedIfname(model.name, 'b', net.name);
  const virtMtu = overlayMtu(net, local, facts) ?? DEFAULT_UNDERLAY_MTU;
  const virts = [...net.virts.values()].filter((v) => v.phys && v.if).sort(byId);
  const ctx: NetCompileContext = {
    net,
    settings,
    options: settings.options,
    local,
    remotes: [...net.physes].filter((p) => p !== local).sort(byName),
    bridge,
    localVirts: virts.filter((v) => v.phys === local),
    remoteVirts: virts.filter((v) => v.phys !== local && v.phys && net.physes.has(v.phys)),
    port: settingsPort(settings.type, settings.options.port) ?? 0,
    underlayMtu: underlayMtu(local, facts),
    virtMtu,
    alias: (suffix) => netAlias(model.name, net.name, suffix),
    ifname: (kind, qualifier) => ownedIfname(model.name, kind, net.name, qualifier),
  };
  const bridgeLink: LinkObject = { kind: 'link', name: bridge, type: 'bridge', alias: ctx.alias(), up: true, attrs: {} };
  // Stateful virts need conntrack on bridged traffic: the bridge calls the inet hooks (br_netfilter).
  if (ctx.localVirts.some((v) => v.stateful)) bridgeLink.netfilter = true;
  const objects: KernelObject[] = [bridgeLink];
  objects.push(...type.compile(ctx));
  for (const v of ctx.localVirts) {
    // `tap` virts: lsdn creates the tap (compile/tap.ts); then it is a port like an adopted interface.
    const tap = tapObject(model.name, v, facts.owners);
    if (tap) objects.push(tap);
    const port: PortObject = { kind: 'port', name: v.if as string, master: bridge, up: true, mtu: v.mtu ?? virtMtu };
    if (!type.learning) port.brport = { ...STATIC_PORT };
    objects.push(port);
    objects.push(...shapingObjects(v, v.if as string, v.mtu ?? virtMtu, {
      ifb: ownedIfname(model.name, 'i', net.name, `ifb:${v.name}`),
      alias: netAlias(model.name, net.name, `ifb:${v.name}`),
    }));
  }
  return objects;
}

/**
 * A type's host-wide object into the state. The context's nftables table of a family is one
 * table, whichever types have chains in it (public's forwarding and NAT, vxvde's port learning:
 * both `ip lsdn_<context>`), so tables of one key are merged; a chain or set both declare is
 * a clash of the types' names.
 */
function addHostObject(state: HostState, o: KernelObject): void {
  const have = state.get(objectKey(o));
  if (!have || have.kind !== 'nft' || o.kind !== 'nft') return state.add(o);
  const merged: NftTableObject = { ...have, chains: { ...have.chains } };
  for (const [c, lines] of Object.entries(o.chains)) {
    if (c in merged.chains) throw new Error(`internal: two types declare chain ${c} of nft ${o.family} ${o.name}`);
    merged.chains[c] = lines;
  }
  for (const [k, lines] of Object.entries(o.sets ?? {})) {
    if (merged.sets?.[k]) throw new Error(`internal: two types declare ${k} of nft ${o.family} ${o.name}`);
    merged.sets = { ...merged.sets, [k]: lines };
  }
  state.objects.set(objectKey(o), merged);
}

/** The desired kernel state of the host `physName`. */
export function compileHost(model: Netmodel, physName: string, facts: HostFacts = {}): HostState {
  const local = model.phys(physName);
  if (!local) throw new Error(`unknown phys "${physName}"`);
  const state = new HostState();
  const filtered: LocalVirt[] = [];
  /** Every local net with settings (whether it serves addresses or not). */
  const nets: LocalNet[] = [];
  for (const net of localNets(model, local)) {
    for (const o of compileNet(model, net, local, facts)) state.add(o);
    const settings = net.effectiveSettings();
    if (settings) {
      const bridge = ownedIfname(model.name, 'b', net.name);
      const netMtu = overlayMtu(net, local, facts) ?? DEFAULT_UNDERLAY_MTU;
      nets.push({ net, bridge, type: networkType(settings.type), mtu: netMtu });
      for (const virt of [...net.virts.values()].filter((v) => v.phys === local && v.if).sort(byId)) filtered.push({ virt, net, bridge, mtu: virt.mtu ?? netMtu });
    }
    const mtu = overlayMtu(net, local, facts);
    if (mtu !== undefined && mtu < 1500 && [...net.virts.values()].some((v) => v.phys === local)) {
      state.warnings.push(
        `net ${net.name}: overlay MTU on ${local.name} is ${mtu}; the VMs' interfaces must use MTU ${mtu} or less (most default to 1500)`,
      );
    }
  }
  // Address servers (src/services), the types' host-wide objects (public: routing and NAT).
  const addressing = facts.addressing ?? assignAddresses(model);
  const servers = compileServers(model, local, facts.hostTag ?? serverHostTag(undefined, model.name), nets, addressing, facts.runDir);
  for (const o of servers) state.add(o);
  for (const t of networkTypes()) {
    for (const o of t.hostObjects?.(model, local, nets.filter((n) => n.type === t)) ?? []) addHostObject(state, o);
  }
  for (const t of firewallTables(model, filtered, { addressing, servers, nets })) state.add(t);
  return state;
}
