/**
 * Writing the `allocations` section back into a netmodel file's text (pure: text in, text out).
 *
 * YAML goes through yaml's Document API, so the user's comments, key order and layout stay as
 * they were; only the `allocations` mapping changes (entries sorted by virt id, comments on
 * kept entries kept). JSON is rewritten with a 2-space indent (JSON has no comments to keep).
 */
import { isMap, isPair, isScalar, parseDocument, stringify, YAMLMap, type Node, type Scalar } from 'yaml';

export type FileFormat = 'yaml' | 'json';

/** JSON when the name ends in .json, or (without a name) when the text starts with "{". */
export function fileFormat(text: string, file?: string): FileFormat {
  if (file !== undefined) return /\.json$/i.test(file) ? 'json' : 'yaml';
  return text.trimStart().startsWith('{') ? 'json' : 'yaml';
}

const HEADER = ' Recorded IPv4 allocations (virt "net/name": address), written by `lsdn allocate`.\n'
  + ' Commit them with the model: they keep every virt\'s address stable on every host.';

function byKey(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The file text with its `allocations` section replaced by `allocations` (removed when empty). */
export function writeAllocations(text: string, allocations: ReadonlyMap<string, string>, format: FileFormat): string {
  const sorted = [...allocations].sort((a, b) => byKey(a[0], b[0]));
  if (format === 'json') {
    const obj = (text.trim() ? JSON.parse(text) : {}) as Record<string, unknown>;
    delete obj.allocations;
    if (sorted.length) obj.allocations = Object.fromEntries(sorted);
    return JSON.stringify(obj, null, 2) + '\n';
  }

  const spliced = spliceYaml(text, sorted);
  if (spliced !== undefined) return spliced;
  return rewriteYaml(text, sorted);
}

/** The allocations section as block YAML ("allocations:\n  id: ip\n"). */
function renderSection(sorted: [string, string][]): string {
  return stringify({ allocations: Object.fromEntries(sorted) }, { lineWidth: 0 });
}

/**
 * Replace only the text of the `allocations` section (or append one), so every other byte of
 * the file stays as the user wrote it. Undefined when the file's layout does not allow it (a
 * flow-style top level): the caller then rewrites through the Document API.
 */
function spliceYaml(text: string, sorted: [string, string][]): string | undefined {
  const doc = parseDocument(text);
  if (doc.errors.length) throw new Error(`cannot rewrite the file: ${doc.errors[0]!.message.split('\n')[0]}`);
  const root = doc.contents;
  let out: string;
  if (root === null || root === undefined) {
    out = text + (text.length && !text.endsWith('\n') ? '\n' : '') + (sorted.length ? header() + renderSection(sorted) : '');
  } else {
    if (!isMap(root) || root.flow) return undefined;
    const pair = root.items.find((i) => isPair(i) && isScalar(i.key) && i.key.value === 'allocations');
    if (pair) {
      const key = pair.key as Scalar;
      const value = pair.value as Node | null;
      const start = key.range?.[0];
      const end = value?.range?.[1] ?? key.range?.[1];
      if (start === undefined || end === undefined) return undefined;
      let section = sorted.length ? renderSection(sorted) : '';
      // The value's range ends after its last line's newline for block maps; keep the file's tail as is.
      if (!text.slice(start, end).endsWith('\n')) section = section.replace(/\n$/, '');
      out = text.slice(0, start) + section + text.slice(end);
    } else {
      if (!sorted.length) return text;
      out = text + (text.length && !text.endsWith('\n') ? '\n' : '') + header() + renderSection(sorted);
    }
  }
  // Check the result: the same document with exactly these allocations, or no splice.
  const check = parseDocument(out);
  if (check.errors.length) return undefined;
  const js = check.toJS() as Record<string, unknown> | null;
  const before = doc.toJS() as Record<string, unknown> | null;
  const want = sorted.length ? Object.fromEntries(sorted) : undefined;
  if (JSON.stringify(js?.allocations) !== JSON.stringify(want)) return undefined;
  const rest = (o: Record<string, unknown> | null) => JSON.stringify({ ...(o ?? {}), allocations: undefined });
  if (rest(js) !== rest(before)) return undefined;
  return out;
}

function header(): string {
  return HEADER.split('\n').map((l) => `#${l}`).join('\n') + '\n';
}

/** Fallback: rewrite through the Document API (comments kept, some spacing normalized). */
function rewriteYaml(text: string, sorted: [string, string][]): string {
  const doc = parseDocument(text);
  if (doc.contents === null || doc.contents === undefined) doc.contents = doc.createNode({}) as never;
  if (!isMap(doc.contents)) throw new Error('cannot rewrite the file: its top level is not a mapping');
  const root = doc.contents as unknown as YAMLMap<unknown, unknown>;
  root.delete('allocations');
  if (sorted.length) {
    const map = new YAMLMap();
    for (const [id, ip] of sorted) map.add(doc.createPair(id, ip));
    const key = doc.createNode('allocations');
    key.commentBefore = HEADER;
    root.add(doc.createPair(key, map));
  }
  return doc.toString({ lineWidth: 0 });
}
