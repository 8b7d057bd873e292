/**
 * Which characters each kind of name may have: one rule per kind, here only. Validation applies
 * them to every field that holds a name, so the model file, the builder API and lsctl (which all
 * validate before anything is applied) get the same located error per field.
 *
 * Where names go, and what each consumer treats specially:
 *   - iproute2 `-batch` (ip, bridge, tc): whitespace splits words; `#` starts a comment anywhere,
 *     even inside quotes; a quote runs to the next quote of its kind, with no escape; an
 *     unterminated one aborts the whole batch; a trailing `\` joins the next line.
 *   - nft scripts: a string has no escapes (`"` cannot be in one); in an interface name `\`
 *     escapes and a trailing `*` is a wildcard; `#` outside a string starts a comment.
 *   - dnsmasq configuration (`,` separates, `#` comments), Tcl (lsctl dumps: `$ [ ] { } " \ ;`),
 *     file paths (`/`, `.`, `..`), ownership aliases and plan text (`:` and `/` separate).
 * One alphabet avoids all of them: ASCII letters, digits, `_`, `.` and `-`, not starting with
 * `.` or `-` (a dot file, or an option to a tool).
 *
 * Kinds of names:
 *   - object names (settings, net, phys, virt): 1-64 characters of that alphabet;
 *   - the context (the model's name): 1-32 of them (it is inside every alias and table name);
 *   - interface names: the kernel's rules (1-15 bytes; not `.`, `..`, `all` or `default`) in
 *     that alphabet; a virt's `if` (which lsdn enslaves, sets the MTU of and filters) may in
 *     addition not be `lo` or a name of lsdn's own devices (`ls<kind>-<8 hex>`, `lsdn0`).
 */

/** The characters every name may have (a regular expression class body). */
const ALPHABET = 'A-Za-z0-9_.-';
const NAME_RE = new RegExp(`^[A-Za-z0-9_][${ALPHABET}]*$`);

/** Longest name of a settings, net, phys or virt (names end up in kernel aliases, at most 255 bytes). */
export const MAX_NAME_LENGTH = 64;
/** Longest context name (it is part of every alias, table and namespace name lsdn writes). */
export const MAX_CONTEXT_LENGTH = 32;
/** Linux's limit on interface names (IFNAMSIZ - 1). */
export const MAX_IFNAME_BYTES = 15;

/** What the rules allow, in words (for messages and the README). */
export const NAME_RULE_TEXT = 'ASCII letters, digits, "_", "." and "-", not starting with "." or "-"';

/** Interface names lsdn's own devices have: `ls<kind>-<8 hex>` on hosts, `lsdn0` in server namespaces. */
const OWNED_IFNAME_RE = /^ls[a-z]+-[0-9a-f]{8}$/;
const OWNED_FIXED_IFNAMES: ReadonlySet<string> = new Set(['lsdn0']);

function alphabetProblem(name: string): string | undefined {
  if (NAME_RE.test(name)) return undefined;
  const bad = [...name].find((c) => !/[A-Za-z0-9_.-]/.test(c));
  if (bad !== undefined) {
    const shown = bad === '"' ? `'"'` : /[\x21-\x7e]/.test(bad) ? `"${bad}"` : `U+${(bad.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
    return `contains ${shown}; names may have only ${NAME_RULE_TEXT}`;
  }
  return `starts with "${name[0] ?? ''}"; names may have only ${NAME_RULE_TEXT}`;
}

/** Why a settings, net, phys or virt name is not allowed; undefined when it is. */
export function objectNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'is not a string';
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_NAME_LENGTH) return `is ${name.length} characters long; at most ${MAX_NAME_LENGTH} are allowed`;
  return alphabetProblem(name);
}

/** Why a context (model) name is not allowed; undefined when it is. */
export function contextNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'is not a string';
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_CONTEXT_LENGTH) return `is ${name.length} characters long; at most ${MAX_CONTEXT_LENGTH} are allowed`;
  return alphabetProblem(name);
}

/** Why a name cannot be an interface's (the kernel's rules, in lsdn's alphabet); undefined when it can. */
export function interfaceNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'is not a string';
  if (name.length === 0) return 'is empty';
  const bytes = Buffer.byteLength(name);
  if (bytes > MAX_IFNAME_BYTES) return `is ${bytes} bytes long; Linux allows at most ${MAX_IFNAME_BYTES}`;
  if (name === '.' || name === '..' || name === 'all' || name === 'default') return 'is a name Linux does not allow for an interface';
  return alphabetProblem(name);
}

/**
 * Why a name cannot be a virt's interface, which lsdn enslaves to a bridge, sets the MTU of and
 * filters: an interface name, but not the loopback or one of lsdn's own devices.
 */
export function virtInterfaceProblem(name: unknown): string | undefined {
  const p = interfaceNameProblem(name);
  if (p) return p;
  const n = name as string;
  if (n === 'lo') return 'is the loopback interface';
  if (OWNED_IFNAME_RE.test(n) || OWNED_FIXED_IFNAMES.has(n)) return "has the form of lsdn's own devices (ls<kind>-<8 hex digits>, lsdn0)";
  return undefined;
}
