/**
 * Test hosts: fresh network namespaces with unique names, removed even when a test fails.
 *
 *   const ns = await testNamespaces(t, 'read');      // registers cleanup on t
 *   const a = await ns.add('a');                       // "lt<pid><n>-read-a"
 *   await ns.sh(a, 'ip link add ...');
 */
import { execFileSync, spawnSync } from 'node:child_process';
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

export interface TestNamespaces {
  prefix: string;
  add(name: string): Promise<string>;
  /** Run a shell command inside a namespace; throws with stderr on failure. */
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
      const r = spawnSync('ip', ['netns', 'exec', ns, 'sh', '-c', command], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`in ${ns}: ${command}: ${r.stderr}`);
      return r.stdout;
    },
    cleanup,
  };
}
