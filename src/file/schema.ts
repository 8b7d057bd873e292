/**
 * The netmodel file format (YAML or JSON, one schema). The zod schemas here are the single
 * source of the format: the loader checks each object with them, and `npm run schema`
 * generates schema/netmodel.schema.json from them for editor completion.
 */
import { z } from 'zod';
import { NETWORK_TYPES, networkTypes, settingsShorthands } from '../types/registry.js';

const name = z.string().min(1);
const int = z.number().int();
const rateValue = z.union([z.string(), z.number()]).describe('rate: bits/s, or with a unit: bit kbit mbit gbit (1024-based), bps kbps mbps (bytes/s)');
const sizeValue = z.union([z.string(), z.number()]).describe('size: bytes, or with a unit: kb mb gb, kbit mbit (1024-based)');

/**
 * Settings: the type and the options of every type (each type's file fields, merged in registry
 * order; a field several types take is written once), strict.
 */
export const settingsSchema = z
  .object({
    type: z.enum(NETWORK_TYPES).describe('network type'),
    ...Object.assign({}, ...networkTypes().map((t) => t.file?.schema ?? {})) as Record<string, z.ZodType>,
  })
  .strict();

/** Settings may also be written as a type's shorthand string: "vxvde://239.0.0.1/port=14789/vni=1". */
export const settingsEntrySchema = z.union([settingsSchema, ...settingsShorthands().map((sh) => z.string().regex(sh.pattern, sh.message))]);

export const ruleSchema = z
  .object({
    dir: z.enum(['in', 'out']).describe('in: toward the VM, out: from the VM'),
    priority: int.describe('0..32767, lower first'),
    action: z.enum(['drop', 'accept']).default('drop'),
    srcIp: z.string().optional().describe('source IPv4/IPv6 prefix'),
    dstIp: z.string().optional(),
    srcMac: z.string().optional().describe('MAC, optionally /MASK'),
    dstMac: z.string().optional(),
    proto: z.enum(['tcp', 'udp', 'icmp', 'icmpv6', 'sctp']).optional(),
    srcPort: z.union([int, z.string()]).optional().describe('port or range "lo-hi" (tcp, udp, sctp)'),
    dstPort: z.union([int, z.string()]).optional(),
    icmpType: z.union([int, z.string()]).optional(),
  })
  .strict();

export const rateSchema = z
  .object({
    avg: rateValue.describe('average rate'),
    burst: sizeValue.describe('burst size'),
    peak: rateValue.optional().describe('peak rate'),
  })
  .strict();

const action = z.enum(['accept', 'drop']);
export const policySchema = z
  .union([
    action.describe('default action of both directions'),
    z.object({ in: action.optional().describe('toward the VM'), out: action.optional().describe('from the VM') }).strict(),
  ])
  .describe('what happens to packets no rule decided (default: accept)');

export const virtSchema = z
  .object({
    phys: name.optional().describe('phys the virt is connected to'),
    if: z.string().optional().describe('host-side interface (tap/veth) on that phys'),
    mac: z.string().optional(),
    ip: z.union([z.string(), z.array(z.string())]).optional().describe('address(es) with prefix length'),
    mtu: int.optional(),
    rules: z.array(ruleSchema).optional().describe('firewall rules'),
    rate: z.object({ in: rateSchema.optional(), out: rateSchema.optional() }).strict().optional(),
    policy: policySchema.optional(),
    stateful: z.boolean().optional().describe('allow replies to connections the VM opened, block new inbound IP connections (default false)'),
    antiSpoof: z.boolean().optional().describe("only the VM's own MAC and IPs as source, ARP and neighbour discovery included (default true)"),
    tap: z
      .union([
        z.boolean(),
        z
          .object({
            user: z.union([z.string().min(1), int]).optional().describe('owner user (name or uid) that may attach to the tap'),
            group: z.union([z.string().min(1), int]).optional().describe('owner group (name or gid)'),
            queues: int.optional().describe('queues: more than 1 makes a multi-queue tap (qemu queues=N)'),
            vnetHdr: z.boolean().optional().describe('virtio-net header on the tap (default true)'),
          })
          .strict(),
      ])
      .optional()
      .describe('lsdn creates `if` as a tap for a hypervisor (true, or options); without it an existing interface is adopted'),
  })
  .strict();

const ipText = z.string().describe('IP address');
export const ipv4SubnetSchema = z
  .object({
    subnet: z.string().describe('the IPv4 subnet, like "10.0.0.0/24"'),
    gateway: ipText.optional().describe('default gateway handed to virts (DHCP option 3)'),
    pools: z.array(z.string()).optional().describe('where allocations come from: ranges "A-B" or prefixes "A/LEN" (default: the whole subnet)'),
    reserved: z.array(z.string()).optional().describe('addresses, ranges "A-B" or prefixes never allocated'),
    dns: z.array(ipText).optional().describe('DNS servers handed to virts'),
    dhcp: z.boolean().optional().describe("serve DHCPv4 to each host's virts (default true)"),
    server: ipText.optional().describe("address of the net's DHCP server on each host (default: the highest host address, .254 of a /24)"),
  })
  .strict();

export const ipv6SubnetSchema = z
  .object({
    subnet: z.string().describe('the IPv6 subnet, like "2001:db8:1::/64" (a /64 for SLAAC)'),
    gateway: ipText.optional().describe('router advertised to virts'),
    reserved: z.array(z.string()).optional().describe('addresses never used by lsdn'),
    dns: z.array(ipText).optional().describe('DNS servers advertised to virts (RDNSS)'),
    slaac: z.boolean().optional().describe("send router advertisements for SLAAC to each host's virts (default true; needs a /64)"),
    server: ipText.optional().describe("address of the net's router-advertisement server on each host (default prefix::fffe)"),
  })
  .strict();

export const netSchema = z
  .object({
    vid: int.optional().describe('VLAN id / VNI (default: the net name when it is a number)'),
    ipv4: ipv4SubnetSchema.optional().describe('IPv4 subnet: static addresses, allocation pools, DHCP'),
    ipv6: ipv6SubnetSchema.optional().describe('IPv6 subnet: static addresses, SLAAC'),
    settings: name.optional().describe('settings name (default: "default", or the only settings)'),
    mtu: int.optional(),
    physes: z.array(name).optional().describe('physes attached even without virts there'),
    virts: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export const physSchema = z
  .object({
    if: z.string().optional().describe('underlay interface'),
    ip: z.string().optional().describe('underlay IP address'),
    mtu: int.optional().describe('underlay MTU (default: read from the interface)'),
    nets: z.array(name).optional().describe('nets attached even without virts here'),
  })
  .strict();

export const fileSchema = z
  .object({
    name: z.string().optional().describe('context name (default "lsdn"); marks the kernel objects this model owns'),
    settings: z.record(z.string(), z.unknown()).optional(),
    nets: z.record(z.string(), z.unknown()).optional(),
    physes: z.record(z.string(), z.unknown()).optional(),
    allocations: z
      .record(z.string(), z.string())
      .optional()
      .describe('recorded IPv4 allocations, "net/virt": address; written by `lsdn allocate`, kept stable'),
    lab: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('lsdn lab only (apply ignores it): VDE clients and extra host interfaces of the simulated cluster'),
  })
  .strict();

/** The whole file with every nested object typed: the source of the generated JSON Schema. */
export const fullFileSchema = fileSchema.extend({
  settings: z.record(z.string(), settingsEntrySchema).optional(),
  nets: z.record(z.string(), netSchema.extend({ virts: z.record(z.string(), virtSchema).optional() })).optional(),
  physes: z.record(z.string(), physSchema).optional(),
});

/** A settings object of the file: its type and file fields (see the types' `file`). */
export type SettingsFile = { type: string } & Record<string, unknown>;
export type VirtFile = z.infer<typeof virtSchema>;
export type NetFile = z.infer<typeof netSchema>;
export type PhysFile = z.infer<typeof physSchema>;

/** The JSON Schema of the file; `sections`: the schemas of sections read by others (scripts/gen-schema.ts gives the lab's). */
export function jsonSchema(sections: Record<string, z.ZodType> = {}): object {
  return {
    ...z.toJSONSchema(fullFileSchema.extend(Object.fromEntries(Object.entries(sections).map(([k, v]) => [k, v.optional()]))), { io: 'input' }),
    $id: 'https://lsdn.dev/schema/netmodel.schema.json',
    title: 'lsdn netmodel',
  };
}
