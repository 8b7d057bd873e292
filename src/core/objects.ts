/**
 * The kernel state of one host, as lsdn sees it: a set of objects with stable keys.
 * The compiler produces the desired state, the kernel reader the actual (owned) state, and
 * the planner diffs the two. Every object is plain data, so states compare with deepEqual
 * and print as golden files.
 */

/** Bridge-port options lsdn sets on a port (iproute2 `bridge link set` names). */
export interface BridgePortFlags {
  learning?: boolean;
  flood?: boolean;
  mcast_flood?: boolean;
  bcast_flood?: boolean;
  neigh_suppress?: boolean;
  /** Isolated ports never forward to each other (point-to-point tunnel ports of one net: no loops). */
  isolated?: boolean;
}

/** A link lsdn creates and owns (bridge, vxlan, vlan, geneve...). Marked by name prefix and alias. */
export interface LinkObject {
  kind: 'link';
  name: string;
  /** iproute2 link type. */
  type: 'bridge' | 'vxlan' | 'vlan' | 'geneve' | 'macvlan' | 'ifb';
  /** Ownership mark: "lsdn:<context>:<what>". */
  alias: string;
  /** Lower device for stacked links (vlan, macvlan): `ip link add link LOWER ...`. */
  lower?: string;
  /** Administratively up. */
  up: boolean;
  mtu?: number;
  /** Bridge this link is a port of. */
  master?: string;
  brport?: BridgePortFlags;
  /**
   * Bridges only: bridged IPv4/IPv6 frames pass through the inet hooks (br_netfilter's
   * per-bridge `nf_call_iptables` and `nf_call_ip6tables`), where conntrack sees them; set for
   * nets with a stateful virt. Read back as true (both on), absent (both off) or false (mixed).
   */
  netfilter?: boolean;
  /**
   * Type-specific creation attributes, rendered after `type T` in `ip link add`. Order is the
   * iproute2 argument order. Values: string/number as-is; true renders the bare keyword;
   * false renders "no<keyword>" (e.g. learning: false -> nolearning).
   */
  attrs: Record<string, string | number | boolean>;
}

/** An interface lsdn does not own (a VM's tap or veth, or the underlay in `direct` mode) that it enslaves to an owned bridge. */
export interface PortObject {
  kind: 'port';
  name: string;
  master: string;
  up: boolean;
  mtu?: number;
  brport?: BridgePortFlags;
}

/** A forwarding-database entry: on a VXLAN device (`self`) or a bridge port (`master`). */
export interface FdbObject {
  kind: 'fdb';
  dev: string;
  mac: string;
  /** `self` entries of a VXLAN device: remote endpoint. */
  dst?: string;
  /** `self` entries with a non-default UDP port. */
  port?: number;
  /** `master` (bridge) or `self` (the device's own table, e.g. VXLAN). */
  table: 'master' | 'self';
}

/** A permanent neighbour (ARP/ND) entry, e.g. for neighbour suppression on a bridge. */
export interface NeighObject {
  kind: 'neigh';
  dev: string;
  ip: string;
  mac: string;
}

/** An address on an owned link (a bridge acting as a gateway, for example). */
export interface AddrObject {
  kind: 'addr';
  dev: string;
  /** "ip/len" */
  prefix: string;
}

/** An nftables table lsdn owns, as the text `nft -f` loads (without the `table` wrapper). */
export interface NftTableObject {
  kind: 'nft';
  family: 'bridge' | 'inet' | 'netdev' | 'ip' | 'ip6';
  name: string;
  /** Chains by name -> canonical body lines, so that a change replaces only the changed chains. */
  chains: Record<string, string[]>;
  /**
   * Named sets and maps, by "set NAME" / "map NAME" -> their declaration lines as `nft -s list`
   * prints them (`typeof ...`, `size ...`, `flags ...`, `timeout ...`), never their elements:
   * lsdn declares sets that the datapath fills (dynamic), so their contents are the kernel's.
   */
  sets?: Record<string, string[]>;
}

/**
 * A qdisc lsdn owns: a token bucket (`tbf`) as the root qdisc of an interface (handle
 * `15d:`, lsdn's mark), or the `ingress` qdisc of a VM port that redirects to an IFB.
 */
export interface QdiscObject {
  kind: 'qdisc';
  dev: string;
  parent: 'root' | 'ingress';
  type: 'tbf' | 'ingress';
  /** tbf: average rate in bit/s (a whole number of bytes/s: what the kernel keeps). */
  rate?: number;
  /** tbf: bucket size in bytes. */
  burst?: number;
  /** tbf: queue limit in bytes. */
  limit?: number;
  /** tbf: peak rate in bit/s (whole bytes/s), with its bucket `mtu` in bytes. */
  peakrate?: number;
  mtu?: number;
}

/** The tc filter on a VM port's ingress that redirects everything the VM sends to an IFB (u32 match-all, mirred). */
export interface FilterObject {
  kind: 'filter';
  dev: string;
  parent: 'ingress';
  /** Filter preference: lsdn's is 349 (0x15d). */
  pref: number;
  /** The IFB device frames are redirected to (`mirred egress redirect`). */
  redirect: string;
}

/**
 * A net's address server on this host (src/services/dhcp.ts): a network namespace `name` with
 * an owned veth pair (host end `port`, a port of `bridge`; `lsdn0` inside with `addresses`) and
 * a dnsmasq running there with `config` (dnsmasq.conf) and `hosts` (its dhcp-hostsfile).
 */
export interface DhcpObject {
  kind: 'dhcp';
  /** The server's network namespace. */
  name: string;
  /** Host end of the veth (owned name and alias). */
  port: string;
  bridge: string;
  alias: string;
  mtu: number;
  /** The host end is up. */
  up: boolean;
  /** "ip/len" on the namespace end. */
  addresses: string[];
  config: string;
  hosts: string;
  /** dnsmasq runs (its pid file names a live dnsmasq of this config). */
  running: boolean;
}

/** A kernel setting lsdn needs (IP forwarding for public nets); removing the object leaves the setting as it is. */
export interface SysctlObject {
  kind: 'sysctl';
  key: string;
  value: string;
}

/**
 * A tap lsdn creates for a VM (`ip tuntap add dev NAME mode tap ...`; virt option `tap`). The
 * name is the user's (virt.if), so ownership is the alias alone: `lsdn:<context>:tap:<net>/<virt>`
 * on a link of kind tun. It is enslaved to its net's bridge by the virt's `port` object like
 * an adopted interface. `user`, `group` and `multiQueue` are compared (they need a new tap);
 * `vnetHdr` only applies at creation (a hypervisor sets it itself when it opens the tap).
 */
export interface TapObject {
  kind: 'tap';
  name: string;
  alias: string;
  /** Owner user and group: numeric ids when the host's users are known (src/kernel/owners.ts), else as written / as `ip -d link` prints them. */
  user?: string;
  group?: string;
  multiQueue: boolean;
  vnetHdr?: boolean;
  /** Read back only: a process (the VM) has the tap open (carrier on). */
  attached?: boolean;
}

export type KernelObject = LinkObject | PortObject | FdbObject | NeighObject | AddrObject | NftTableObject | QdiscObject | FilterObject
  | DhcpObject | SysctlObject | TapObject;

/** Stable identity of an object: two objects with one key are the same object in two states. */
export function objectKey(o: KernelObject): string {
  switch (o.kind) {
    case 'link':
      return `link ${o.name}`;
    case 'port':
      return `port ${o.name}`;
    case 'fdb':
      return o.table === 'master' ? `fdb ${o.dev} ${o.mac} master` : `fdb ${o.dev} ${o.mac} dst ${o.dst ?? '-'}`;
    case 'neigh':
      return `neigh ${o.dev} ${o.ip}`;
    case 'addr':
      return `addr ${o.dev} ${o.prefix}`;
    case 'nft':
      return `nft ${o.family} ${o.name}`;
    case 'qdisc':
      return `qdisc ${o.dev} ${o.parent}`;
    case 'filter':
      return `filter ${o.dev} ${o.parent} ${o.pref}`;
    case 'dhcp':
      return `dhcp ${o.name}`;
    case 'sysctl':
      return `sysctl ${o.key}`;
    case 'tap':
      return `tap ${o.name}`;
  }
}

/** A host's kernel state: objects by key. Iteration order is sorted by key (deterministic). */
export class HostState {
  readonly objects = new Map<string, KernelObject>();
  /** Non-fatal remarks of the compiler (e.g. MTU warnings), by object. */
  readonly warnings: string[] = [];

  constructor(objects: Iterable<KernelObject> = []) {
    for (const o of objects) this.add(o);
  }

  add(o: KernelObject): void {
    const k = objectKey(o);
    if (this.objects.has(k)) throw new Error(`internal: two objects with key "${k}"`);
    this.objects.set(k, o);
  }

  get(key: string): KernelObject | undefined {
    return this.objects.get(key);
  }

  /** Objects sorted by key. */
  sorted(): KernelObject[] {
    return [...this.objects.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => o);
  }

  get size(): number {
    return this.objects.size;
  }
}
