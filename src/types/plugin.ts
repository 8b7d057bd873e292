/**
 * The network-type plug-in interface. Each type (direct, vlan, vxlan/*, geneve*, vxvde) is one
 * file in this folder exporting a NetworkType; `registry.ts` lists them. Validation reads a
 * type's facts; the compiler asks it for the kernel objects of one net on one host.
 */
import type { NetworkTypeName, Net, Phys, Settings, Virt } from '../model/netmodel.js';
import type { KernelObject } from '../core/objects.js';
import type { IpFamily } from '../core/addr.js';

/** Kernel features a type needs; names as the feature probe reports them. */
export interface FeatureNeeds {
  links?: readonly string[];
  classifiers?: readonly string[];
  actions?: readonly string[];
}

/** What the compiler hands a type for one net on the local host. */
export interface NetCompileContext {
  net: Net;
  settings: Settings;
  /** The phys being compiled (this host). */
  local: Phys;
  /** Other physes attached to the net, sorted by name. */
  remotes: Phys[];
  /** The net's bridge on this host (already in the state; the type adds its uplink ports). */
  bridge: string;
  /** Virts of the net connected here / elsewhere (sorted by id). */
  localVirts: Virt[];
  remoteVirts: Virt[];
  /** UDP port (settings' or the type's default). */
  port: number;
  /** Underlay MTU of the local phys. */
  underlayMtu: number;
  /** MTU of the net's overlay on this host: virt ports and tunnel devices get it. */
  virtMtu: number;
  /** Ownership alias for an object of this net: "lsdn:<ctx>:net:<name>[:<suffix>]". */
  alias(suffix?: string): string;
  /** Stable, short (<= 15 chars) owned interface name for this net (+ optional qualifier). */
  ifname(kind: string, qualifier?: string): string;
}

export interface NetworkType {
  name: NetworkTypeName;
  /** One line for `lsdn doctor` and the docs. */
  summary: string;
  /** Types of one family share a UDP port namespace; different families on one port clash. */
  family: 'direct' | 'vlan' | 'vxlan' | 'geneve' | 'routed';
  defaultPort?: number;
  /** Valid net ids; undefined: the type has no id (direct). */
  idRange?: readonly [number, number];
  /** Physes of nets of this type need an underlay IP. */
  needsPhysIp: boolean;
  /** Virts of nets of this type need a MAC (static switching). */
  needsMac: boolean;
  /** Does the datapath learn MACs (as opposed to programming every MAC)? */
  learning: boolean;
  /** Needs a multicast group (settings mcastIp). */
  needsGroup: boolean;
  /** Encapsulation overhead in bytes over an underlay of the given family. */
  overhead(family: IpFamily): number;
  /** Kernel features this type needs on a host that carries one of its nets. */
  needs: FeatureNeeds;
  /** The type's own kernel objects for one net on the local host (uplinks, FDB, ...). */
  compile(ctx: NetCompileContext): KernelObject[];
}
