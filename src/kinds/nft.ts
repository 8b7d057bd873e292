/**
 * nftables tables lsdn owns (`lsdn_<context>` in the bridge, inet and ip families): each is
 * chains of canonical lines, written exactly as `nft -s list` prints them back (set elements in
 * one order on both sides), so an unchanged table reads back equal, and the declarations of its
 * named sets and maps (their elements are the datapath's: vxvde's learnt ports). A change is one
 * `nft -f` transaction per table that adds, flushes-and-refills or deletes only the chains that
 * differ; a set whose declaration differs (or one added or removed) makes the table anew, since
 * a set cannot change while rules refer to it.
 */
import type { NftTableObject } from '../core/objects.js';
import { Phase, type Command, type StepAction } from '../core/plan.js';
import type { ObjectKind } from './kind.js';

const nft = (line: string): Command => ({ tool: 'nft', line });

const NFT_FAMILIES: ReadonlySet<string> = new Set(['bridge', 'inet', 'netdev', 'ip', 'ip6']);

// ---- canonical text ---------------------------------------------------------------------------

/** Split at top-level commas, outside double quotes and raw payload expressions (`@th,96,24`). */
function splitElements(inner: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const c of inner) {
    if (c === '"') quoted = !quoted;
    if (c === ',' && !quoted && !/@[a-z]+(,\d+)?$/.test(cur)) {
      out.push(cur.trim());
      cur = '';
    } else {
      cur += c;
    }
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/**
 * A rule line in canonical form: the elements of every anonymous set `{ a, b }` sorted (nft
 * prints them in its own order: hash order for maps, numeric for intervals). Both the compiler
 * and the reader pass lines through this, so equal rule sets compare equal.
 */
export function canonicalNftLine(line: string): string {
  const t = line.trim();
  if (t.startsWith('type ')) return t;
  let out = '';
  let i = 0;
  let quoted = false;
  while (i < t.length) {
    const c = t[i] as string;
    if (c === '"') quoted = !quoted;
    if (c === '{' && !quoted) {
      // Find the matching "}" (sets do not nest in lsdn's lines).
      let j = i + 1;
      let q = false;
      while (j < t.length && (q || t[j] !== '}')) {
        if (t[j] === '"') q = !q;
        j++;
      }
      const elems = splitElements(t.slice(i + 1, j)).sort();
      out += `{ ${elems.join(', ')} }`;
      i = j + 1;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

// ---- encoding ---------------------------------------------------------------------------------

/** A chain with its body as one `nft -f` line: `table F T { chain C { line; line; }; }` (adds to what the chain has). */
export function nftChainBlock(family: string, table: string, chain: string, lines: string[]): Command {
  const body = lines.map((l) => (l.endsWith(';') ? l : `${l};`)).join(' ');
  return nft(`table ${family} ${table} { chain ${chain} { ${body} }; }`);
}

export function nftAddTable(o: NftTableObject): Command {
  return nft(`add table ${o.family} ${o.name}`);
}

/** A named set or map ("set NAME" / "map NAME" -> declaration lines) as one `nft -f` line. */
export function nftSetBlock(family: string, table: string, key: string, lines: string[]): Command {
  const body = lines.map((l) => (l.endsWith(';') ? l : `${l};`)).join(' ');
  return nft(`table ${family} ${table} { ${key} { ${body} }; }`);
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

// ---- decoding ---------------------------------------------------------------------------------

/**
 * Parse `nft list table|ruleset` text: owned tables -> chains -> trimmed body lines (the hook
 * line `type filter hook ... policy ...;` first when the chain is a base chain), and named sets
 * and maps -> their declaration lines (their `elements = { ... }`, one line or several, left
 * out). Other table-level objects (counters, flowtables...) are skipped.
 */
export function parseNftTables(text: string, wanted: (family: string, name: string) => boolean): NftTableObject[] {
  const out: NftTableObject[] = [];
  let table: NftTableObject | undefined;
  let chain: string[] | undefined;
  let set: string[] | undefined;
  let inElements = false;
  let depth = 0; // inside a table: 1 = table level, 2 = inside a chain/set/...
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+$/, '');
    if (depth === 0) {
      const m = /^table (\S+) (\S+) \{/.exec(line);
      if (!m) continue;
      const family = m[1] as string;
      const name = (m[2] as string).replace(/^"(.*)"$/, '$1');
      depth = 1;
      table = wanted(family, name) && NFT_FAMILIES.has(family)
        ? { kind: 'nft', family: family as NftTableObject['family'], name, chains: {} }
        : undefined;
      if (table) out.push(table);
      continue;
    }
    const t = line.trim();
    if (depth === 1) {
      if (t === '}') {
        depth = 0;
        table = undefined;
        continue;
      }
      const cm = /^chain (\S+) \{$/.exec(t);
      const sm = /^(set|map) (\S+) \{$/.exec(t);
      if (cm) {
        depth = 2;
        chain = table ? [] : undefined;
        if (table && chain) table.chains[(cm[1] as string).replace(/^"(.*)"$/, '$1')] = chain;
      } else if (sm) {
        depth = 2;
        chain = undefined;
        set = table ? [] : undefined;
        if (table && set) (table.sets ??= {})[`${sm[1] as string} ${(sm[2] as string).replace(/^"(.*)"$/, '$1')}`] = set;
      } else if (t.endsWith('{')) {
        depth = 2;
        chain = undefined;
      }
      continue;
    }
    // depth 2: a chain's (or a set's) body, one statement per line; "}" at this level closes it.
    // A set's multi-line element list ("elements = { a,\n b }") only has "}" at its end of line.
    if (inElements) {
      if (t.endsWith('}')) inElements = false;
      continue;
    }
    if (t === '}') {
      depth = 1;
      chain = undefined;
      set = undefined;
      continue;
    }
    if (set && /^elements = \{/.test(t)) {
      inElements = !t.endsWith('}');
      continue;
    }
    if (set && t) set.push(t);
    if (chain && t) chain.push(canonicalNftLine(t));
  }
  return out;
}

// ---- diffing ----------------------------------------------------------------------------------

/** Two lists of lines equal, element by element (cheaper than a deep comparison of 1000 chain bodies). */
function sameLines(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((l, i) => l === b[i]);
}

const isBaseChain = (lines: string[] | undefined): boolean => lines?.[0]?.startsWith('type ') === true;

/** Sets and maps added, removed or declared otherwise ("map vxvde-ports declared otherwise"). */
function setDifferences(want: Record<string, string[]>, have: Record<string, string[]>): string[] {
  const out: string[] = [];
  for (const k of [...new Set([...Object.keys(want), ...Object.keys(have)])].sort()) {
    if (!(k in have)) out.push(`${k} added`);
    else if (!(k in want)) out.push(`${k} removed`);
    else if (!sameLines(want[k] ?? [], have[k] ?? [])) out.push(`${k} declared otherwise`);
  }
  return out;
}

/**
 * One table's change as one transaction, proportional to it: a new table is created with its
 * chains; in an existing one only chains whose lines differ are replaced (flushed and
 * refilled; a base chain whose hook changed is deleted and re-added), new chains added,
 * chains no longer wanted deleted. Regular chains come first (base chains jump to them) and
 * deletions last (once nothing jumps to them).
 */
export function planNftTable(want: NftTableObject, have: NftTableObject | undefined):
  { action: StepAction; commands: Command[]; changes: string[] } | undefined {
  const { family, name } = want;
  const names = Object.keys(want.chains).sort();
  const ordered = [...names.filter((c) => !isBaseChain(want.chains[c])), ...names.filter((c) => isBaseChain(want.chains[c]))];
  const sets = Object.keys(want.sets ?? {}).sort();
  const create = [
    nftAddTable(want),
    ...sets.map((k) => nftSetBlock(family, name, k, want.sets?.[k] ?? [])),
    ...ordered.map((c) => nftChainBlock(family, name, c, want.chains[c] ?? [])),
  ];
  if (!have) return { action: 'create', commands: create, changes: [] };
  const setChanges = setDifferences(want.sets ?? {}, have.sets ?? {});
  if (setChanges.length) return { action: 'recreate', commands: [...nftDeleteTable(have), ...create], changes: setChanges };
  const commands: Command[] = [];
  const changes: string[] = [];
  for (const c of ordered) {
    const w = want.chains[c] ?? [];
    const h = have.chains[c];
    if (h === undefined) {
      commands.push(nftChainBlock(family, name, c, w));
      changes.push(`chain ${c} added`);
    } else if (!sameLines(h, w)) {
      const hookChanged = (isBaseChain(h) || isBaseChain(w)) && h[0] !== w[0];
      commands.push(hookChanged ? nftDeleteChain(family, name, c) : nftFlushChain(family, name, c), nftChainBlock(family, name, c, w));
      changes.push(`chain ${c} replaced`);
    }
  }
  const extra = Object.keys(have.chains).filter((c) => !(c in want.chains)).sort();
  for (const c of [...extra.filter((c) => isBaseChain(have.chains[c])), ...extra.filter((c) => !isBaseChain(have.chains[c]))]) {
    commands.push(nftDeleteChain(family, name, c));
    changes.push(`chain ${c} removed`);
  }
  return commands.length ? { action: 'update', commands, changes } : undefined;
}

export const NFT: ObjectKind<NftTableObject> = {
  kind: 'nft',
  hangsOn: () => [],
  blocked: () => undefined,
  remove(have, p) {
    p.add(Phase.Firewall, 'delete', have, nftDeleteTable(have), { changes: ['table removed'] });
  },
  converge(want, _have, found, p) {
    const s = planNftTable(want, found as NftTableObject | undefined);
    if (s) p.add(Phase.Firewall, s.action, want, s.commands, { changes: s.changes });
  },
};
