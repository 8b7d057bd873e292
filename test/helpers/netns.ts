/**
 * Test hosts: fresh network namespaces with unique names, removed even when a test fails.
 *
 *   const ns = await testNamespaces(t, 'read');      // registers cleanup on t
 *   const a = await ns.add('a');                       // "lt<pid><n>-read-a"
 *   await ns.sh(a, 'ip link add ...');
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { TestContext } from 'node:test';

let counter = 0;

/** A short prefix unique to this process and call (namespace and lab names start with it). */
export function uniquePrefix(tag: string): string {
  counter++;
  return `lt${process.pid.toString(36)}${counter.toString(36)}-${tag}`;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * The kernel's neighbour tables (ARP, ND) are one per family for the whole machine: every
 * network namespace draws on the same gc_thresh3 entries (1024 by default), and only the initial
 * namespace can set it (net.ipv4/ipv6.neigh.default.*; a namespace has no "default" there). Once
 * the namespaces on the machine (other test files, other sessions' labs) hold that many entries
 * that are not permanent, the kernel refuses new ones: `ip neigh add ... nud reachable` answers
 * "RTNETLINK answers: No buffer space available" (ENOBUFS), and ARP/ND for a ping fails
 * ("neighbor table overflow!", table_fulls in `ip -s ntable`). Permanent entries are exempt.
 * Raise the limits (never lower them), once per process; returns what was changed.
 */
let neighbourRoomChecked = false;
export function ensureNeighbourTableRoom(min = { gc_thresh2: 16384, gc_thresh3: 32768 }): string[] {
  if (neighbourRoomChecked) return [];
  neighbourRoomChecked = true;
  const changed: string[] = [];
  for (const fam of ['ipv4', 'ipv6']) {
    for (const [key, want] of Object.entries(min)) {
      const file = `/proc/sys/net/${fam}/neigh/default/${key}`;
      try {
        const cur = Number(readFileSync(file, 'utf8').trim());
        if (cur < want) {
          writeFileSync(file, String(want));
          changed.push(`${fam} ${key} ${cur} -> ${want}`);
        }
      } catch {
        // not root, or not in the initial namespace: nothing to do
      }
    }
  }
  return changed;
}

export interface TestNamespaces {
  prefix: string;
  add(name: string): Promise<string>;
  /**
   * Run a shell command inside a namespace; throws on failure with stderr and, for a chain of
   * commands, the one that failed (traced with `sh -x`).
   */
  sh(ns: string, command: string): string;
  /** Delete every namespace this helper created (also registered as an after-hook). */
  cleanup(): void;
}

export function deleteNamespacesWithPrefix(prefix: string): void {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0];
    if (name && name.startsWith(prefix)) spawnSync('ip', ['netns', 'del', name]);
  }
}

export async function testNamespaces(t: TestContext | undefined, tag: string): Promise<TestNamespaces> {
  const prefix = uniquePrefix(tag);
  if (isRoot()) {
    const changed = ensureNeighbourTableRoom();
    if (changed.length > 0) t?.diagnostic(`raised the kernel's neighbour table limits: ${changed.join(', ')}`);
  }
  const created: string[] = [];
  const cleanup = () => {
    for (const n of created.splice(0)) spawnSync('ip', ['netns', 'del', n]);
    deleteNamespacesWithPrefix(prefix);
  };
  t?.after(cleanup);
  return {
    prefix,
    async add(name: string) {
      const full = `${prefix}-${name}`;
      execFileSync('ip', ['netns', 'add', full]);
      created.push(full);
      execFileSync('ip', ['-n', full, 'link', 'set', 'lo', 'up']);
      return full;
    },
    sh(ns: string, command: string) {
      const r = spawnSync('ip', ['netns', 'exec', ns, 'sh', '-xc', command], {
        encoding: 'utf8',
        env: { ...process.env, PS4: '+ ' },
      });
      if (r.status === 0) return r.stdout;
      const lines = (r.stderr ?? '').split('\n');
      const traced = lines.filter((l) => l.startsWith('+ '));
      const errors = lines.filter((l) => !l.startsWith('+ ')).join('\n').trim();
      const failed = traced.at(-1)?.slice(2);
      if (failed === undefined || failed === command) throw new Error(`in ${ns}: ${command}: ${errors}`);
      throw new Error(`in ${ns}: \`${failed}\` failed: ${errors}\n  (in: ${command})`);
    },
    cleanup,
  };
}
