/** Kernel objects -> the exact iproute2 batch lines that create, change or delete them. */
import type { BridgePortFlags, FdbObject, LinkObject, NeighObject, AddrObject, PortObject } from '../compile/state.js';
import type { Tool } from '../kernel/exec.js';

export interface Command {
  tool: Tool;
  /** One batch line (without the tool name), e.g. "link add name lsb-1 type bridge". */
  line: string;
}

const ip = (line: string): Command => ({ tool: 'ip', line });
const bridge = (line: string): Command => ({ tool: 'bridge', line });

/** Quote a value for an iproute2 batch line when it has spaces or quotes. */
function q(v: string): string {
  return /^[^\s"'\\]+$/.test(v) ? v : `"${v.replace(/(["\\])/g, '\\$1')}"`;
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
    ip(`link set dev ${o.name} alias ${q(o.alias)}`),
  ];
  const set = linkSetArgs({ mtu: o.mtu, master: o.master, up: o.up });
  if (set) cmds.push(ip(`link set dev ${o.name} ${set}`));
  return cmds;
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
  if (to.alias !== undefined && to.alias !== from.alias) cmds.push(ip(`link set dev ${name} alias ${q(to.alias)}`));
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
