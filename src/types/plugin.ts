/**
 * The network-type plug-in interface. A type (direct, vlan, vxlan/*, geneve*, vxvde, public) is
 * one file in this folder exporting a NetworkType, listed in `registry.ts`; it owns everything
 * about it: the options of its settings (file fields, JSON Schema, shorthands such as vxvde://
 * URLs), its facts and checks for validation, the kernel objects of one net on one host, the
 * host-wide objects of its nets, and what the lab needs to know. The rest of lsdn reads these
 * and never names a type.
 */
import type { ZodType } from 'zod';
import type { Net, Netmodel, NetworkTypeName, Phys, Settings, SettingsOptions, Virt } from '../model/netmodel.js';
import type { KernelObject } from '../core/objects.js';
import type { IpFamily } from '../core/addr.js';
import type { Located } from '../core/location.js';

/** Kernel features a type needs; names as the feature probe reports them. */
export interface FeatureNeeds {
  links?: readonly string[];
  classifiers?: readonly string[];
  actions?: readonly string[];
}

/** What the compiler hands a type for one net on the local host. */
export interface NetCompileContext<O = SettingsOptions> {
  net: Net;
  settings: Settings;
  /** The settings' options, as this type reads them. */
  options: O;
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

/** A net attached to the host being compiled, as host-wide objects (a type's, the firewall's) see it. */
export interface LocalNet {
  net: Net;
  /** The net's bridge on this host. */
  bridge: string;
  type: NetworkType;
  /** The overlay MTU of the net here. */
  mtu: number;
}

/**
 * The settings options of a type in the netmodel file. The file schema (and the generated JSON
 * Schema) has the fields of every type, merged in registry order; the loader fills a
 * settings' options from every type's `fromFile`, and the dump writes them back with `toFile`,
 * so options a settings' type ignores survive a round trip (validation warns about them).
 */
export interface SettingsFileFields<O> {
  /** The file fields, in the file's order (zod schemas with their descriptions). */
  schema: Readonly<Record<string, ZodType>>;
  /** The model's options from the file's fields (already checked against `schema`). */
  fromFile(fields: Readonly<Record<string, unknown>>): O;
  /** The file's fields of the model's options (undefined values are left out by the dump). */
  toFile(options: O): Record<string, unknown>;
}

/** A string standing for a whole settings object in the file (vxvde's `vxvde://GROUP/port=P` URLs). */
export interface SettingsShorthand {
  /** What such a string looks like (the JSON Schema's pattern). */
  pattern: RegExp;
  /** The JSON Schema's message for a settings entry that is neither an object nor a shorthand. */
  message: string;
  /** The settings' file fields (`type` included), or why the string is not one. */
  parse(text: string): ({ type: string } & Record<string, unknown>) | { error: string };
}

/** What a type's checks see, and the one report they write to (src/validate implements it). */
export interface TypeCheckContext {
  readonly model: Netmodel;
  /** Facts of the host being applied, when known. */
  readonly host?: { interfaces: ReadonlySet<string>; mtu?: ReadonlyMap<string, number> };
  error(code: string, object: string, message: string, at?: Located, field?: string): void;
  warning(code: string, object: string, message: string, at?: Located, field?: string): void;
  /** Is the phys one of those validated for (every phys when no scope is given)? */
  inScope(phys: Phys): boolean;
  /** Is a net of these settings attached to a phys in scope? */
  usedOnScopedPhys(s: Settings): boolean;
  /** `settings-option-unused`: the option `field` is set on settings whose type ignores it. */
  unused(s: Settings, field: string, value: unknown): void;
}

/**
 * A type's own validation, called by src/validate at fixed points (the order problems come out
 * in): each writes to the one report. Where a check runs on every settings object, it checks
 * the options this type owns: on its own settings their values, on another type's a
 * `settings-option-unused` warning.
 */
export interface TypeChecks {
  /** With the settings checks, after the options every type shares, on every settings of a known type. */
  options?(s: Settings, c: TypeCheckContext): void;
  /** With the phys checks, per phys: the typed nets it carries. */
  phys?(p: Phys, nets: readonly { n: Net; t: NetworkType }[], c: TypeCheckContext): void;
  /** Last (after the addresses), on every settings object. */
  lateOptions?(s: Settings, c: TypeCheckContext): void;
  /** Last, per net of this type (in declaration order, before the net's address-serving checks). */
  lateNet?(n: Net, s: Settings, c: TypeCheckContext): void;
}

export interface NetworkType<O = SettingsOptions> {
  name: NetworkTypeName;
  /** One line for `lsdn doctor` and the docs. */
  summary: string;
  /** Types of one family share a UDP port namespace; different families on one port clash. */
  family: 'direct' | 'vlan' | 'vxlan' | 'geneve' | 'routed';
  defaultPort?: number;
  /** Valid net ids; undefined: the type has no id (direct). */
  idRange?: readonly [number, number];
  /** The id of a net that gives no vid (vxvde: its settings' vni); undefined: a vid is required. */
  defaultId?(options: O): number;
  /** Physes of nets of this type need an underlay IP. */
  needsPhysIp: boolean;
  /** Virts of nets of this type need a MAC (static switching). */
  needsMac: boolean;
  /** Does the datapath learn MACs (as opposed to programming every MAC)? */
  learning: boolean;
  /** Needs a multicast group (settings mcastIp). */
  needsGroup: boolean;
  /** Uses the settings' multicast group when one is given (needsGroup: one must be). */
  acceptsGroup?: boolean;
  /** Encapsulation overhead in bytes over an underlay of the given family. */
  overhead(family: IpFamily): number;
  /** Kernel features this type needs on a host that carries one of its nets. */
  needs: FeatureNeeds;
  /** Its settings' options in the netmodel file. */
  file?: SettingsFileFields<O>;
  /** A string that stands for a settings object of this type. */
  shorthand?: SettingsShorthand;
  /** Its validation beyond the facts above. */
  checks?: TypeChecks;
  /** The type's own kernel objects for one net on the local host (uplinks, FDB, ...). */
  compile(ctx: NetCompileContext<O>): KernelObject[];
  /** Host-wide objects of the type's nets on the local host (public: forwarding, routing and NAT). */
  hostObjects?(model: Netmodel, local: Phys, nets: readonly LocalNet[]): KernelObject[];
  /**
   * The sysctls among its host objects the reader reads back, given the owned objects read so
   * far (public: forwarding, where its table is), so that a host without them spends no process.
   */
  hostSysctls?(owned: readonly KernelObject[]): readonly string[];
  /**
   * Routed types (public): the host routes the net to the outside instead of carrying it between
   * hosts; each host's bridge of the net is a segment of its own, holding the gateway address.
   * The host guard lets virts reach the host at the gateway; the lab gives such a model an
   * outside namespace and expects no reachability across hosts' segments.
   */
  routed?: {
    /** The gateway on the net's bridge ("ip/len"), when the net has one. */
    gateway(net: Net): string | undefined;
  };
}
