/** What iproute2 and tc print with `-j` (only the fields lsdn reads), and the small parsers shared by the kinds' decoders. */

export interface IpAddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
  scope?: string;
}

export interface IpLink {
  ifindex: number;
  ifname: string;
  flags?: string[];
  mtu?: number;
  master?: string;
  address?: string;
  ifalias?: string;
  /** Lower device: a name, or (another namespace / old iproute2) an index. */
  link?: string | number | null;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: {
    info_kind?: string;
    info_data?: Record<string, unknown>;
    info_slave_kind?: string;
    info_slave_data?: Record<string, unknown>;
  };
  addr_info?: IpAddrInfo[];
}

export interface FdbEntry {
  mac: string;
  ifname?: string;
  dst?: string;
  port?: number;
  vni?: number;
  master?: string;
  flags?: string[];
  state?: string;
}

export interface NeighEntry {
  dst?: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}

export interface TcQdisc {
  kind?: string;
  handle?: string;
  dev?: string;
  root?: boolean;
  parent?: string;
  options?: { rate?: number; burst?: number; lat?: number; minburst?: number };
}

export interface TcFilter {
  pref?: number;
  kind?: string;
  options?: { actions?: { kind?: string; mirred_action?: string; direction?: string; to_dev?: string }[] };
}

/** The links a decoder may resolve references against (a VXLAN's device, a VLAN's lower link). */
export interface LinkIndex {
  byName: ReadonlyMap<string, IpLink>;
  byIndex: ReadonlyMap<number, IpLink>;
}

export function linkIndex(links: Iterable<IpLink>): LinkIndex {
  const byName = new Map<string, IpLink>();
  const byIndex = new Map<number, IpLink>();
  for (const l of links) {
    byName.set(l.ifname, l);
    byIndex.set(l.ifindex, l);
  }
  return { byName, byIndex };
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Split concatenated JSON values (what `ip|tc -j -batch` print, one per command). */
export function splitJsonValues(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '[' || c === '{') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === ']' || c === '}') {
      depth--;
      if (depth === 0 && start >= 0) {
        out.push(JSON.parse(text.slice(start, i + 1)));
        start = -1;
      }
    }
  }
  return out;
}
