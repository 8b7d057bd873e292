/**
 * The lab in cluster mode (`lsdn lab demo|up --cluster`, test/kernel/cluster-watch, bench/cluster):
 * a throw-away etcd, the model pushed into it, one `lsdn watch` process per simulated host
 * applying into that host's namespace, and the measure of a move: from `lsdn virt move`
 * returning to every host having applied it, and to the moved VM answering from every peer.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Netmodel } from '../model/netmodel.js';
import { modelToFile } from '../file/dump.js';
import { labDown, labUp } from '../lab/lab.js';
import { labPrefix, type LabLayout } from '../lab/layout.js';
import { expectedReachability } from '../lab/check.js';
import { labMoveVirt } from '../lab/move.js';
import type { LabExtension } from '../lab/extension.js';
import { LabError } from '../core/errors.js';
import { keysToModel, STATUS } from '../cluster/layout.js';
import { moveVirt } from '../cluster/change.js';
import { Store } from '../store/etcd.js';
import { readCommitted, replaceWith, writeModel } from '../store/model.js';
import { startLocalEtcd, type LocalEtcd } from '../store/server.js';
import type { HostStatus } from '../store/watch.js';

const BIN = fileURLToPath(new URL('../../bin/lsdn', import.meta.url));

export interface WatcherProc {
  phys: string;
  netns: string;
  proc: ChildProcess;
  log: string[];
}

export interface MoveTiming {
  virt: string;
  from: string;
  to: string;
  revision: number;
  /** `virt move` (the store write) took this long. */
  writeMs: number;
  /** From the write returning to every live host reporting the revision applied. */
  appliedMs: number;
  /** From the write returning to the moved VM answering every peer's ping. */
  answeredMs: number;
  /** Hosts that read the kernel for this change (the others compiled the same state and skipped it). */
  kernelReads: number;
}

export interface ClusterLabOptions {
  prefix?: string;
  lab?: LabExtension;
  progress?: (s: string) => void;
  /** A running store to use instead of a throw-away etcd. */
  store?: string;
  /** Extra environment of the watchers (e.g. LSDN_WATCH_RESYNC_MS). */
  env?: Record<string, string>;
  watchArgs?: string[];
}

export class ClusterLab {
  readonly watchers = new Map<string, WatcherProc>();
  /** Set once the lab's namespaces are built. */
  layout!: LabLayout;
  private constructor(
    readonly model: Netmodel,
    readonly url: string,
    readonly store: Store,
    private readonly etcd: LocalEtcd | undefined,
    private readonly opts: ClusterLabOptions,
  ) {}

  static async up(model: Netmodel, opts: ClusterLabOptions = {}): Promise<ClusterLab> {
    const progress = opts.progress ?? (() => undefined);
    const etcd = opts.store ? undefined : await startLocalEtcd();
    const url = opts.store ?? etcd!.url;
    if (etcd) progress(`etcd on ${url.replace('etcd://', '')} (throw-away)`);
    const lab = new ClusterLab(model, url, new Store({ store: url, context: model.name }), etcd, opts);
    try {
      const w = await writeModel(lab.store, replaceWith(modelToFile(model)));
      progress(`pushed the model: revision ${w.revision} (${w.diff.put.length} keys)`);
      lab.layout = await labUp(model, {
        ...(opts.prefix ? { prefix: opts.prefix } : {}),
        ...(opts.lab ? { lab: opts.lab } : {}),
        onProgress: progress,
        // Each simulated host is configured by its own watcher, from the store.
        apply: async (phys, netns) => {
          lab.startWatcher(phys.name, netns);
          await lab.waitApplied(w.revision!, [phys.name], 60_000);
        },
      });
      return lab;
    } catch (e) {
      await lab.down();
      if (!lab.layout) await labDown(opts.prefix ?? labPrefix(model)).catch(() => undefined);
      throw e;
    }
  }

  /** Start (or restart) the watcher of one phys. */
  startWatcher(phys: string, netns: string): WatcherProc {
    const proc = spawn(process.execPath, [BIN, 'watch', '--store', this.url, '--context', this.model.name, '--phys', phys, '--netns', netns, ...(this.opts.watchArgs ?? [])], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...(this.opts.env ?? {}) },
    });
    const w: WatcherProc = { phys, netns, proc, log: [] };
    proc.stderr?.on('data', (d: Buffer) => {
      w.log.push(d.toString());
      if (w.log.length > 200) w.log.splice(0, 100);
    });
    this.watchers.set(phys, w);
    return w;
  }

  /** The hosts' status keys. */
  async statuses(): Promise<Map<string, HostStatus>> {
    const prefix = `${this.store.prefix}${STATUS}`;
    const r = await this.store.range(prefix);
    const out = new Map<string, HostStatus>();
    for (const kv of r.kvs) out.set(decodeURIComponent(kv.key.slice(prefix.length)), JSON.parse(kv.value) as HostStatus);
    return out;
  }

  /** Wait until every phys (or those given) reports `revision` applied. */
  async waitApplied(revision: number, physes = [...this.watchers.keys()], timeoutMs = 30_000, pred: (s: HostStatus) => boolean = (s) => s.applied >= revision): Promise<Map<string, HostStatus>> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const st = await this.statuses().catch(() => new Map<string, HostStatus>());
      if (physes.every((p) => { const s = st.get(p); return s !== undefined && pred(s); })) return st;
      if (Date.now() > until) {
        const behind = physes.filter((p) => { const s = st.get(p); return !s || !pred(s); });
        const logs = behind.slice(0, 3).map((p) => `${p}: ${JSON.stringify(st.get(p) ?? null)}\n${(this.watchers.get(p)?.log ?? []).join('').slice(-800)}`);
        throw new LabError(`hosts did not apply revision ${revision} within ${timeoutMs} ms`, logs);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /**
   * Ping `ip` from every namespace until each answers once (or the timeout). `announceFrom`:
   * the moved VM's namespace, which announces itself each round as qemu does after a migration
   * (announce-self: a gratuitous ARP from the guest's MAC, here busybox arping -U), so that
   * learning types forget the old place.
   */
  async pingAll(froms: string[], ip: string, timeoutMs = 20_000, announceFrom?: string): Promise<void> {
    const until = Date.now() + timeoutMs;
    const left = new Set(froms);
    const run = (args: string[]) => new Promise<boolean>((resolve) => {
      const p = spawn(args[0]!, args.slice(1), { stdio: 'ignore' });
      p.once('error', () => resolve(false));
      p.once('exit', (c) => resolve(c === 0));
    });
    while (left.size) {
      if (announceFrom) void run(['ip', 'netns', 'exec', announceFrom, 'busybox', 'arping', '-U', '-c', '1', '-w', '1', '-I', 'eth0', ip]);
      await Promise.all([...left].map(async (ns) => {
        const ok = await new Promise<boolean>((resolve) => {
          const p = spawn('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '0.3', '-q', ip], { stdio: 'ignore' });
          p.once('exit', (c) => resolve(c === 0));
        });
        if (ok) left.delete(ns);
      }));
      if (left.size && Date.now() > until) throw new LabError(`${ip} did not answer from ${[...left].join(', ')} within ${timeoutMs} ms`);
    }
  }

  /** The peers of a virt (same net, reachable) and its address. */
  peersOf(virtId: string): { ip: string; froms: string[] } {
    const pairs = expectedReachability(this.model, this.layout).filter((p) => p.to === virtId && p.expected && !p.skip);
    if (!pairs.length) throw new LabError(`virt ${virtId} has no peer that should reach it`);
    return { ip: pairs[0]!.toIp, froms: [...new Set(pairs.map((p) => this.layout.virtNs.get(p.from) ?? p.from))] };
  }

  /**
   * Move a virt to another phys as a migration does: the VM's interface appears on the
   * destination (lab/move.ts), then `virt move` writes the store; measured from its return.
   */
  async move(virtId: string, to: string): Promise<MoveTiming> {
    const virt = this.model.virts().find((v) => v.id === virtId);
    if (!virt?.phys || !virt.if) throw new LabError(`virt ${virtId} is not placed`);
    const from = virt.phys.name;
    const before = await this.statuses();
    const { ip, froms } = this.peersOf(virtId);
    // The moved model (the lab's own copy follows, for the next moves and the peers).
    virt.connect(to, virt.if);
    virt.net.attach(this.model.phys(to)!);
    await labMoveVirt(this.layout, virt, { phys: from, if: virt.if });
    const t0 = performance.now();
    const w = await writeModel(this.store, (f) => moveVirt(f, virtId, { phys: to }));
    const t1 = performance.now();
    const [applied, pinged] = await Promise.all([
      this.waitApplied(w.revision!).then((s) => ({ s, at: performance.now() })),
      this.pingAll(froms, ip, 20_000, this.layout.virtNs.get(virtId)).then(() => performance.now()),
    ]);
    const kernelReads = [...applied.s].filter(([p, s]) => s.applies > (before.get(p)?.applies ?? 0)).length;
    return { virt: virtId, from, to, revision: w.revision!, writeMs: t1 - t0, appliedMs: applied.at - t1, answeredMs: Math.max(applied.at, pinged) - t1, kernelReads };
  }

  /** Whether a virt has peers to answer (the demo moves one that has). */
  peersOfSafe(virtId: string): boolean {
    try {
      return this.peersOf(virtId).froms.length > 0;
    } catch {
      return false;
    }
  }

  /** Stop the throw-away etcd (not the lab). */
  async stopStore(): Promise<void> {
    await this.etcd?.stop();
  }

  /** The committed model as the store has it. */
  async storedModel(): Promise<Netmodel> {
    const snap = await readCommitted(this.store);
    return keysToModel(this.store.prefix, snap.keys).model!;
  }

  async down(): Promise<void> {
    await Promise.all([...this.watchers.values()].map((w) => stopWatcher(w)));
    this.store.close();
    await this.etcd?.stop();
    if (this.layout) await labDown(this.layout.prefix);
  }
}

/** SIGTERM (the watcher finishes its apply), SIGKILL after 5 s. */
export async function stopWatcher(w: WatcherProc, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (w.proc.exitCode !== null || w.proc.signalCode !== null) return;
  const done = new Promise((r) => w.proc.once('exit', r));
  w.proc.kill(signal);
  const t = setTimeout(() => w.proc.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(t);
}

export function etcdInstalled(): boolean {
  return spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;
}
