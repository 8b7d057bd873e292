/**
 * The netmodel: one declarative description of a cluster's virtual networks.
 *
 * This is the typed builder API (the library's first-class interface). The YAML/JSON loader
 * and lsctl are thin clients of it. The builder records what was said and where; it does not
 * judge it: `validate()` (src/validate) reports every problem at once.
 */
import { Located } from '../core/location.js';

/**
 * The options of each network type's settings, by type name. The model knows no type: each
 * type's file in src/types adds its own entry (`declare module '../model/netmodel.js'`), so the
 * names and options below are those of the registered types.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NetworkTypeOptions {}
export type NetworkTypeName = keyof NetworkTypeOptions & string;

type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;

/**
 * What a settings object carries: every option of any type, each optional (the file and lsctl
 * may set one its type ignores; validation warns about it). A type reads its own shape
 * (`NetworkTypeOptions[type]`, e.g. VxvdeOptions).
 */
export type SettingsOptions = Partial<UnionToIntersection<NetworkTypeOptions[NetworkTypeName]>>;

export type Direction = 'in' | 'out';
export const DIRECTIONS: readonly Direction[] = ['in', 'out'];

export class Settings extends Located {
  removed = false;
  constructor(
    readonly model: Netmodel,
    readonly name: string,
    public type: NetworkTypeName,
    public options: SettingsOptions = {},
  ) {
    super();
  }
  remove(): void {
    this.model.removeSettings(this);
  }
}

/**
 * An IP subnet of a net (at most one IPv4 and one IPv6 per net): where virts' addresses come
 * from (static ones must lie in it; IPv4 virts without one get one allocated from the pools),
 * and what the per-host address service (DHCPv4 / IPv6 router advertisements) hands out.
 */
export interface SubnetSpec {
  /** The subnet: "10.0.0.0/24", "2001:db8:1::/64" (YAML key `subnet`). */
  prefix: string;
  /** Default gateway handed to virts (DHCP option 3 / advertised router). */
  gateway?: string;
  /** IPv4: ranges "A-B" or prefixes allocations come from (default: the whole subnet). */
  pools?: string[];
  /** Addresses or ranges never allocated. */
  reserved?: string[];
  /** DNS servers handed to virts. */
  dns?: string[];
  /** Serve it on each host to that host's virts: DHCPv4 (v4) or router advertisements for SLAAC (v6). Default true. */
  serve?: boolean;
  /** Address of the net's address server on each host (default: chosen by src/ipam). */
  server?: string;
}

export class Subnet extends Located {
  constructor(readonly net: Net, readonly family: 4 | 6, public spec: SubnetSpec) {
    super();
  }
}

export interface NetOptions {
  vid?: number;
  settings?: Settings | string;
  /** MTU for the net's virt interfaces; default: underlay MTU minus the overlay's overhead. */
  mtu?: number;
}

export class Net extends Located {
  vid: number | undefined;
  /** Settings object, or the name of one not (yet) known: validation reports it. */
  settings: Settings | undefined;
  settingsRef: string | undefined;
  mtu: number | undefined;
  readonly virts = new Map<string, Virt>();
  readonly physes = new Set<Phys>();
  /** IPv4 / IPv6 subnet of the net (addresses, allocation pools, DHCP and SLAAC). */
  ipv4: Subnet | undefined;
  ipv6: Subnet | undefined;

  constructor(readonly model: Netmodel, readonly name: string, opts: NetOptions = {}) {
    super();
    this.vid = opts.vid;
    this.mtu = opts.mtu;
    this.setSettings(opts.settings);
  }

  setSettings(s: Settings | string | undefined): void {
    if (typeof s === 'string') {
      this.settingsRef = s;
      this.settings = this.model.settingsNamed(s);
    } else {
      this.settings = s;
      this.settingsRef = s?.name;
    }
  }

  /** The settings this net uses: its own, else the model's default. */
  effectiveSettings(): Settings | undefined {
    if (this.settingsRef !== undefined) return this.settings;
    return this.model.defaultSettings();
  }

  attach(phys: Phys): this {
    this.physes.add(phys);
    phys.nets.add(this);
    return this;
  }

  detach(phys: Phys): this {
    this.physes.delete(phys);
    phys.nets.delete(this);
    return this;
  }

  /** Create (or return the existing) virt of this net. */
  virt(name: string, opts: VirtOptions = {}): Virt {
    let v = this.virts.get(name);
    if (!v) {
      v = new Virt(this, name);
      this.virts.set(name, v);
    }
    v.configure(opts);
    return v;
  }

  /** Set (or with undefined: remove) the net's IPv4 or IPv6 subnet. */
  setSubnet(family: 4 | 6, spec: SubnetSpec | undefined): Subnet | undefined {
    const sub = spec ? new Subnet(this, family, spec) : undefined;
    if (family === 4) this.ipv4 = sub;
    else this.ipv6 = sub;
    return sub;
  }

  remove(): void {
    for (const p of [...this.physes]) this.detach(p);
    this.model.nets.delete(this.name);
  }
}

export interface PhysOptions {
  /** Underlay interface. */
  if?: string;
  /** Underlay IP address (v4 or v6). */
  ip?: string;
  /** Underlay MTU; when unset it is read from the interface at apply time. */
  mtu?: number;
}

export class Phys extends Located {
  if: string | undefined;
  ip: string | undefined;
  mtu: number | undefined;
  readonly nets = new Set<Net>();

  constructor(readonly model: Netmodel, readonly name: string, opts: PhysOptions = {}) {
    super();
    this.configure(opts);
  }

  configure(opts: PhysOptions): this {
    if ('if' in opts) this.if = opts.if;
    if ('ip' in opts) this.ip = opts.ip;
    if ('mtu' in opts) this.mtu = opts.mtu;
    return this;
  }

  attach(net: Net): this {
    net.attach(this);
    return this;
  }

  detach(net: Net): this {
    net.detach(this);
    return this;
  }

  claimLocal(): this {
    this.model.claimLocal(this);
    return this;
  }

  get isLocal(): boolean {
    return this.model.localPhyses.has(this);
  }

  /** Virts connected through this phys. */
  virts(): Virt[] {
    return this.model.virts().filter((v) => v.phys === this);
  }

  remove(): void {
    for (const n of [...this.nets]) this.detach(n);
    for (const v of this.virts()) v.disconnect();
    this.model.localPhyses.delete(this);
    this.model.physes.delete(this.name);
  }
}

export type RuleAction = 'drop' | 'accept';
export type IpProto = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'sctp';

/** A firewall rule of one virt, in one direction (`in`: toward the VM, `out`: from it). */
export interface RuleSpec {
  priority: number;
  action: RuleAction;
  srcIp?: string;
  dstIp?: string;
  /** MAC, optionally with a mask: "02:00:00:00:00:00/ff:ff:ff:00:00:00". */
  srcMac?: string;
  dstMac?: string;
  proto?: IpProto;
  srcPort?: number | string;
  dstPort?: number | string;
  icmpType?: string | number;
}

export class Rule extends Located {
  constructor(readonly virt: Virt, readonly direction: Direction, public spec: RuleSpec) {
    super();
  }
}

/** Rate limit of one direction: average rate and peak in bits/s, burst in bytes. */
export interface RateSpec {
  avg: number;
  burst: number;
  peak?: number;
}

export class Rate extends Located {
  constructor(readonly direction: Direction, public spec: RateSpec) {
    super();
  }
}

/** What happens to a packet no rule decided, per direction (`in`: toward the VM, `out`: from it). */
export interface PolicySpec {
  in: RuleAction;
  out: RuleAction;
}

export const DEFAULT_POLICY: Readonly<PolicySpec> = { in: 'accept', out: 'accept' };

export interface VirtOptions {
  mac?: string;
  phys?: Phys | string;
  if?: string;
  /** Addresses with prefix length ("10.0.0.1/24", "2001:db8::1/64"). */
  ips?: string[];
  mtu?: number;
  /** Default action per direction when no rule matched (accept, accept when unset). */
  policy?: Partial<PolicySpec>;
  /** Allow replies to connections the VM opened and block new inbound IP connections (off when unset). */
  stateful?: boolean;
  /** Only the VM's own MAC (and, when known, its IPs) as source of what it sends (on when unset). */
  antiSpoof?: boolean;
  /** lsdn creates the virt's interface as a tap for a hypervisor (true: defaults); unset/false: adopt an existing interface. */
  tap?: TapSpec | boolean;
}

/** A tap lsdn creates for a VM (`ip tuntap add dev IF mode tap ...`). */
export interface TapSpec {
  /** Owner user (name or uid) allowed to attach without CAP_NET_ADMIN. */
  user?: string;
  /** Owner group (name or gid). */
  group?: string;
  /** Number of queues: more than 1 creates a multi-queue tap (qemu `queues=N`, virtio `mq=on`). */
  queues?: number;
  /** Virtio-net header on the tap (offloads; qemu sets it itself when it opens the tap). Default true. */
  vnetHdr?: boolean;
}

export class Virt extends Located {
  mac: string | undefined;
  phys: Phys | undefined;
  /** Name of a phys not (yet) known: validation reports it. */
  physRef: string | undefined;
  if: string | undefined;
  ips: string[] = [];
  mtu: number | undefined;
  readonly rules: Rule[] = [];
  readonly rates: { in?: Rate; out?: Rate } = {};
  /** Default action per direction for packets no rule decided. */
  policy: PolicySpec = { ...DEFAULT_POLICY };
  /** Stateful inbound filtering: replies to the VM's own connections pass, new inbound IP connections do not. */
  stateful = false;
  /** Anti-spoofing of what the VM sends (its MAC, its IPs when known, ARP and neighbour discovery). */
  antiSpoof = true;
  /** lsdn creates the interface `if` as a tap with these options; undefined: the interface is adopted. */
  tap: TapSpec | undefined;

  constructor(readonly net: Net, readonly name: string) {
    super();
  }

  get model(): Netmodel {
    return this.net.model;
  }

  /** "net/name": unique in a model (virt names are unique within their net). */
  get id(): string {
    return `${this.net.name}/${this.name}`;
  }

  configure(opts: VirtOptions): this {
    if ('mac' in opts) this.mac = opts.mac;
    if ('ips' in opts) this.ips = [...(opts.ips ?? [])];
    if ('mtu' in opts) this.mtu = opts.mtu;
    if (opts.policy !== undefined) this.policy = { ...this.policy, ...opts.policy };
    if ('stateful' in opts) this.stateful = opts.stateful ?? false;
    if ('antiSpoof' in opts) this.antiSpoof = opts.antiSpoof ?? true;
    if ('tap' in opts) this.tap = opts.tap === true ? {} : opts.tap ? { ...opts.tap } : undefined;
    if ('phys' in opts || 'if' in opts) this.connect(opts.phys ?? this.phys ?? this.physRef, opts.if ?? this.if);
    return this;
  }

  /** Connect the virt to a phys through interface `ifname`. Connecting it elsewhere is a migration. */
  connect(phys: Phys | string | undefined, ifname: string | undefined): this {
    if (typeof phys === 'string') {
      this.physRef = phys;
      this.phys = this.model.physes.get(phys);
    } else {
      this.phys = phys;
      this.physRef = phys?.name;
    }
    this.if = ifname;
    return this;
  }

  /** Move a connected virt to another phys (and interface): a migration. */
  migrate(phys: Phys, ifname?: string): this {
    return this.connect(phys, ifname ?? this.if);
  }

  disconnect(): this {
    this.phys = undefined;
    this.physRef = undefined;
    this.if = undefined;
    return this;
  }

  get connected(): boolean {
    return this.physRef !== undefined;
  }

  rule(direction: Direction, spec: RuleSpec): Rule {
    const r = new Rule(this, direction, spec);
    this.rules.push(r);
    return r;
  }

  rate(direction: Direction, spec: RateSpec | undefined): this {
    if (spec) this.rates[direction] = new Rate(direction, spec);
    else delete this.rates[direction];
    return this;
  }

  /** Set the default action of one direction (or both). */
  setPolicy(direction: Direction | 'both', action: RuleAction): this {
    if (direction === 'both' || direction === 'in') this.policy.in = action;
    if (direction === 'both' || direction === 'out') this.policy.out = action;
    return this;
  }

  /** Remove every rule and rate limit (lsctl's flushVr). */
  flushRulesAndRates(): this {
    this.rules.length = 0;
    delete this.rates.in;
    delete this.rates.out;
    return this;
  }

  remove(): void {
    this.net.virts.delete(this.name);
  }
}

/**
 * The whole cluster: settings, nets (with their virts) and physes, and which physes are
 * local to the host that applies it. Named like LSDN's context.
 */
export class Netmodel extends Located {
  readonly settings = new Map<string, Settings>();
  readonly nets = new Map<string, Net>();
  readonly physes = new Map<string, Phys>();
  readonly localPhyses = new Set<Phys>();
  /**
   * Recorded IPv4 allocations, virt id ("net/virt") -> address: the file's `allocations`
   * section, written by `lsdn allocate`, so that an allocation never changes once made.
   */
  readonly allocations = new Map<string, string>();
  constructor(public name = 'lsdn') {
    super();
  }

  /** Define settings. An unnamed one is "default", of which only one may exist. */
  addSettings(type: NetworkTypeName, opts: SettingsOptions & { name?: string } = {}): Settings {
    const { name = 'default', ...rest } = opts;
    const s = new Settings(this, name, type, rest);
    this.settings.set(name, s);
    // Nets that referred to this name before it existed now resolve.
    for (const n of this.nets.values()) if (n.settingsRef === name) n.settings = s;
    return s;
  }

  settingsNamed(name: string): Settings | undefined {
    return this.settings.get(name);
  }

  /** The settings of nets that name none: "default", or the only settings there is. */
  defaultSettings(): Settings | undefined {
    const d = this.settings.get('default');
    if (d) return d;
    if (this.settings.size === 1) return [...this.settings.values()][0];
    return undefined;
  }

  removeSettings(s: Settings): void {
    this.settings.delete(s.name);
    s.removed = true;
    // Nets that used it keep the name (validation reports it as unknown), not the object.
    for (const n of this.nets.values()) if (n.settings === s) n.settings = undefined;
  }

  /** Create (or reconfigure) a net. */
  addNet(name: string, opts: NetOptions = {}): Net {
    let n = this.nets.get(name);
    if (!n) {
      n = new Net(this, name, opts);
      this.nets.set(name, n);
    } else {
      if ('vid' in opts) n.vid = opts.vid;
      if ('mtu' in opts) n.mtu = opts.mtu;
      if ('settings' in opts) n.setSettings(opts.settings);
    }
    return n;
  }

  /** Create (or reconfigure) a phys. */
  addPhys(name: string, opts: PhysOptions = {}): Phys {
    let p = this.physes.get(name);
    if (!p) {
      p = new Phys(this, name, opts);
      this.physes.set(name, p);
      for (const v of this.virts()) if (v.physRef === name) v.phys = p;
    } else {
      p.configure(opts);
    }
    return p;
  }

  net(name: string): Net | undefined {
    return this.nets.get(name);
  }

  phys(name: string): Phys | undefined {
    return this.physes.get(name);
  }

  claimLocal(phys: Phys | string): void {
    const p = typeof phys === 'string' ? this.physes.get(phys) : phys;
    if (!p) throw new Error(`claimLocal: unknown phys "${String(phys)}"`);
    this.localPhyses.add(p);
  }

  /** All virts, in declaration order of nets then virts. */
  virts(): Virt[] {
    const out: Virt[] = [];
    for (const n of this.nets.values()) out.push(...n.virts.values());
    return out;
  }

  /** Find a virt by "net/name". */
  virt(id: string): Virt | undefined {
    const i = id.indexOf('/');
    if (i < 0) return undefined;
    return this.nets.get(id.slice(0, i))?.virts.get(id.slice(i + 1));
  }
}
