/** Kernel objects -> the exact iproute2 batch lines that create, change or delete them. */
import type { BridgePortFlags, FdbObject, FilterObject, LinkObject, NeighObject, NftTableObject, AddrObject, PortObject, QdiscObject } from '../core/objects.js';
import { FILTER_HANDLE, QDISC_HANDLE } from '../policy/shaping.js';
import type { Command } from '../core/command.js';

const ip = (line: string): Command => ({ tool: 'ip', line });
const bridge = (line: string): Command => ({ tool: 'bridge', line });
const tc = (line: string): Command => ({ tool: 'tc', line });
const nft = (line: string): Command => ({ tool: 'nft', line });

/** Quote a value for an iproute2 batch line when it has spaces or quotes. */
function q(v: string): string {
  return /^[^\s"'\\]+$/.test(v) ? v : `"${v.replace(/(["\\])/g, '\\$1')}"`;
}

/** Mark an interface lsdn's: its ownership alias (the kernel ignores one given to `link add`). */
export function setAlias(name: string, alias: string): Command {
  return ip(`link set dev ${name} alias ${q(alias)}`);
}

function renderAttrs(attrs: LinkObject['attrs']): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(attrs)) {
    if (v === true) parts.push(k);
    else if (v === false) parts.push(`no${k}`);
    else parts.push(`${k} ${String(v)}`);
  }
  return parts.join(' ');
}

export function renderFlags(flags: BridgePortFlags): string {
  return Object.entries(flags)
    .map(([k, v]) => `${k} ${v ? 'on' : 'off'}`)
    .join(' ');
}

/** `link set` arguments for the mutable attributes given. */
function linkSetArgs(o: { mtu?: number; master?: string; up?: boolean }): string {
  const parts: string[] = [];
  if (o.mtu !== undefined) parts.push(`mtu ${o.mtu}`);
  if (o.master !== undefined) parts.push(`master ${o.master}`);
  if (o.up !== undefined) parts.push(o.up ? 'up' : 'down');
  return parts.join(' ');
}

export function createLink(o: LinkObject): Command[] {
  const lower = o.lower ? `link ${o.lower} ` : '';
  const attrs = renderAttrs(o.attrs);
  const cmds = [
    ip(`link add ${lower}name ${o.name} type ${o.type}${attrs ? ` ${attrs}` : ''}`),
    // The kernel ignores an alias given to `link add`: mark ownership at once, next line.
    setAlias(o.name, o.alias),
  ];
  if (o.netfilter) cmds.push(...setBridgeNetfilter(o.name, true));
  const set = linkSetArgs({ mtu: o.mtu, master: o.master, up: o.up });
  if (set) cmds.push(ip(`link set dev ${o.name} ${set}`));
  return cmds;
}

/** Bridged IPv4/IPv6 through the inet hooks (br_netfilter), on this bridge only. */
export function setBridgeNetfilter(name: string, on: boolean): Command[] {
  const v = on ? 1 : 0;
  return [ip(`link set dev ${name} type bridge nf_call_iptables ${v} nf_call_ip6tables ${v}`)];
}

export function deleteLink(o: LinkObject): Command[] {
  return [ip(`link del dev ${o.name}`)];
}

/** Commands that move a link or port from `from` to `to` in its mutable attributes. */
export function updateLinkOrPort(
  name: string,
  from: { mtu?: number; master?: string; up: boolean; alias?: string },
  to: { mtu?: number; master?: string; up: boolean; alias?: string },
): Command[] {
  const cmds: Command[] = [];
  if (to.alias !== undefined && to.alias !== from.alias) cmds.push(setAlias(name, to.alias));
  const set = linkSetArgs({
    mtu: to.mtu !== undefined && to.mtu !== from.mtu ? to.mtu : undefined,
    master: to.master !== undefined && to.master !== from.master ? to.master : undefined,
    up: to.up !== from.up ? to.up : undefined,
  });
  if (to.master === undefined && from.master !== undefined) cmds.push(ip(`link set dev ${name} nomaster`));
  if (set) cmds.push(ip(`link set dev ${name} ${set}`));
  return cmds;
}

export function attachPort(o: PortObject): Command[] {
  return [ip(`link set dev ${o.name} ${linkSetArgs({ mtu: o.mtu, master: o.master, up: o.up })}`)];
}

export function releasePort(o: PortObject): Command[] {
  return [ip(`link set dev ${o.name} nomaster`)];
}

export function setBridgePortFlags(dev: string, flags: BridgePortFlags): Command[] {
  const f = renderFlags(flags);
  return f ? [bridge(`link set dev ${dev} ${f}`)] : [];
}

export function createFdb(o: FdbObject): Command[] {
  if (o.table === 'master') return [bridge(`fdb replace ${o.mac} dev ${o.dev} master static`)];
  const dst = o.dst ? ` dst ${o.dst}` : '';
  const port = o.port !== undefined ? ` port ${o.port}` : '';
  return [bridge(`fdb append ${o.mac} dev ${o.dev}${dst}${port} self permanent`)];
}

export function deleteFdb(o: FdbObject): Command[] {
  if (o.table === 'master') return [bridge(`fdb del ${o.mac} dev ${o.dev} master`)];
  const dst = o.dst ? ` dst ${o.dst}` : '';
  return [bridge(`fdb del ${o.mac} dev ${o.dev}${dst} self`)];
}

export function createNeigh(o: NeighObject): Command[] {
  return [ip(`neigh replace ${o.ip} lladdr ${o.mac} dev ${o.dev} nud permanent`)];
}

export function deleteNeigh(o: NeighObject): Command[] {
  return [ip(`neigh del ${o.ip} dev ${o.dev}`)];
}

export function createAddr(o: AddrObject): Command[] {
  return [ip(`addr add ${o.prefix} dev ${o.dev}`)];
}

export function deleteAddr(o: AddrObject): Command[] {
  return [ip(`addr del ${o.prefix} dev ${o.dev}`)];
}

// ---- tc: rate limits ----------------------------------------------------------------------------

/** tc's units: rates in bit/s as `Nbit`, sizes in bytes as `Nb`. */
export function tbfArgs(o: QdiscObject): string {
  const parts = [`rate ${o.rate ?? 0}bit`, `burst ${o.burst ?? 0}b`, `limit ${o.limit ?? 0}b`];
  if (o.peakrate !== undefined) parts.push(`peakrate ${o.peakrate}bit`, `mtu ${o.mtu ?? 0}b`);
  return parts.join(' ');
}

/** Create or change a qdisc (`replace`: idempotent, and takes over a root qdisc that is not lsdn's). */
export function replaceQdisc(o: QdiscObject): Command[] {
  if (o.type === 'ingress') return [tc(`qdisc replace dev ${o.dev} handle ffff: ingress`)];
  return [tc(`qdisc replace dev ${o.dev} root handle ${QDISC_HANDLE} tbf ${tbfArgs(o)}`)];
}

/** Remove a qdisc (the interface gets its default back; an ingress qdisc takes its filters with it). */
export function deleteQdisc(o: QdiscObject): Command[] {
  return [tc(`qdisc del dev ${o.dev} ${o.parent === 'ingress' ? 'ingress' : 'root'}`)];
}

export function replaceFilter(o: FilterObject): Command[] {
  return [tc(
    `filter replace dev ${o.dev} parent ffff: protocol all pref ${o.pref} handle ${FILTER_HANDLE} u32 match u32 0 0 action mirred egress redirect dev ${o.redirect}`,
  )];
}

export function deleteFilter(o: FilterObject): Command[] {
  return [tc(`filter del dev ${o.dev} parent ffff: pref ${o.pref}`)];
}

// ---- nft: the firewall (each table's change is one `nft -f` transaction) ------------------------

/** A chain with its body as one `nft -f` line: `table F T { chain C { line; line; }; }` (adds to what the chain has). */
export function nftChainBlock(family: string, table: string, chain: string, lines: string[]): Command {
  const body = lines.map((l) => (l.endsWith(';') ? l : `${l};`)).join(' ');
  return nft(`table ${family} ${table} { chain ${chain} { ${body} }; }`);
}

export function nftAddTable(o: NftTableObject): Command {
  return nft(`add table ${o.family} ${o.name}`);
}

export function nftDeleteTable(o: { family: string; name: string }): Command[] {
  return [nft(`delete table ${o.family} ${o.name}`)];
}

export function nftFlushChain(family: string, table: string, chain: string): Command {
  return nft(`flush chain ${family} ${table} ${chain}`);
}

export function nftDeleteChain(family: string, table: string, chain: string): Command {
  return nft(`delete chain ${family} ${table} ${chain}`);
}
