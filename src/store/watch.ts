/**
 * `lsdn watch`: converge this host whenever its part of the stored model changes.
 *
 * Level-triggered: an event only says "look again". The watcher then reads the committed model
 * at the latest revision (store/model.ts) and runs the same apply as `lsdn apply` (events
 * within `coalesceMs` are one look). Nothing is held that a restart would lose: the kernel is
 * the state, the applied revision is in the status key and is only a report.
 *
 * - A change whose compiled desired state for this host equals the last applied one (compiled
 *   with the host facts of that apply) reads no kernel; the periodic resync (`resyncMs`), a
 *   reconnect, a watch error or a compaction runs the full apply (repairs local drift) so no
 *   update can be missed however the watch breaks.
 * - It never applies a model older than one it applied (revisions only go up).
 * - The store unreachable: the kernel stays exactly as it is; reads retry with backoff and the
 *   watcher says so (once per outage, and when it is back).
 * - An invalid model (written by hand...) is refused; the last good one stays applied; the
 *   problems go to the log and into the status key.
 * - `stop()` (SIGTERM) finishes the current apply, revokes the status lease and returns.
 * - Status: PREFIX/status/PHYS on a lease (TTL `statusTtl`), so a dead host shows as not alive.
 */
import { createRequire } from 'node:module';
import type { Lease, Watcher } from 'etcd3';
import type { Netmodel } from '../model/netmodel.js';
import { applyHost, hostFacts, localFacts } from '../apply/host.js';
import { compileHost } from '../compile/compile.js';
import { validateWithAddressing } from '../validate/validate.js';
import { Kernel } from '../kernel/exec.js';
import { keys as K, locateInStore, STATUS } from '../cluster/layout.js';
import { formatProblem, hasErrors } from '../core/problem.js';
import { LsdnError, ModelInvalidError, StoreError } from '../core/errors.js';
import { readModel } from './model.js';
import type { Store } from './etcd.js';

const require = createRequire(import.meta.url);
const VERSION = (require('../../package.json') as { version: string }).version;

/** What a host writes under PREFIX/status/PHYS. */
export interface HostStatus {
  phys: string;
  /** The model revision last applied (successfully or not). */
  applied: number;
  /** The latest model revision this host has seen (an invalid one is seen, not applied). */
  seen: number;
  /** When the last apply (or look) finished, ISO time. */
  at: string;
  result: 'ok' | 'failed' | 'blocked' | 'invalid' | 'error';
  counts: { done: number; failed: number; blocked: number; drift: number; objects: number };
  /** Full applies (the kernel read) and looks that compiled to the same state (no kernel read). */
  applies: number;
  unchanged: number;
  netns?: string;
  version: string;
  pid: number;
  problems?: string[];
  error?: string;
}

export interface ApplyEvent {
  revision: number;
  durationMs: number;
  full: boolean;
  status: HostStatus;
}

export interface WatchOptions {
  phys?: string;
  netns?: string;
  kernel?: Kernel;
  /** Full apply at least this often (default 60 s; LSDN_WATCH_RESYNC_MS). */
  resyncMs?: number;
  /** Events within this window are one look (default 30 ms). */
  coalesceMs?: number;
  /** The status key's lease TTL in seconds (default 15). */
  statusTtl?: number;
  /** Longest wait between retries while the store is unreachable (default 5 s; LSDN_WATCH_BACKOFF_MS). */
  maxBackoffMs?: number;
  log?: (line: string) => void;
  onApply?: (e: ApplyEvent) => void;
  onConnection?: (connected: boolean) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const envMs = (name: string): number | undefined => {
  const v = process.env[name];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
};

/** Canonical text of a host state: equal text, equal kernel objects. */
function fingerprint(objects: Iterable<[string, unknown]>): string {
  return JSON.stringify([...objects].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export class HostWatcher {
  private readonly kernel: Kernel;
  private readonly resyncMs: number;
  private readonly coalesceMs: number;
  private readonly statusTtl: number;
  private readonly maxBackoffMs: number;
  private readonly log: (line: string) => void;
  private watcher?: Watcher;
  private lease?: Lease;
  private timer?: NodeJS.Timeout;
  private resyncTimer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private dirty = false;
  private fullWanted = true;
  private connected?: boolean;
  private physName?: string;
  /** What the last full apply compiled and the host facts it compiled with. */
  private last?: { revision: number; print: string; facts: ReturnType<typeof hostFacts>; result: HostStatus['result'] };
  private lastReadRevision = 0;
  private origin = new Map<string, string>();
  readonly status: HostStatus;

  constructor(private readonly store: Store, private readonly opts: WatchOptions = {}) {
    this.kernel = opts.kernel ?? new Kernel({ netns: opts.netns });
    this.resyncMs = opts.resyncMs ?? envMs('LSDN_WATCH_RESYNC_MS') ?? 60_000;
    this.coalesceMs = opts.coalesceMs ?? 30;
    this.statusTtl = opts.statusTtl ?? 15;
    this.maxBackoffMs = opts.maxBackoffMs ?? envMs('LSDN_WATCH_BACKOFF_MS') ?? 5_000;
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    this.status = {
      phys: opts.phys ?? '?', applied: 0, seen: 0, at: '', result: 'ok',
      counts: { done: 0, failed: 0, blocked: 0, drift: 0, objects: 0 }, applies: 0, unchanged: 0,
      ...(opts.netns ? { netns: opts.netns } : {}), version: VERSION, pid: process.pid,
    };
  }

  /** Look now, then on every change, every resync and after every reconnect, until stop(). */
  async start(): Promise<void> {
    await this.store.resolvePrefix().catch(() => undefined);
    this.kick(true);
    this.scheduleResync();
  }

  /** Finish the current apply, stop watching, revoke the status lease. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.resyncTimer);
    await this.running;
    await this.watcher?.cancel().catch(() => undefined);
    await this.lease?.revoke().catch(() => undefined);
  }

  /** Whether the last store call succeeded. */
  get isConnected(): boolean {
    return this.connected === true;
  }

  private setConnected(c: boolean, why = ''): void {
    if (this.connected === c) return;
    const was = this.connected;
    this.connected = c;
    this.opts.onConnection?.(c);
    if (!c) this.log(`watch: the store is unreachable${why ? ` (${why})` : ''}; the kernel stays as it is; retrying`);
    else if (was === false) this.log('watch: the store is reachable again; resyncing');
  }

  private scheduleResync(): void {
    clearTimeout(this.resyncTimer);
    if (this.stopped) return;
    this.resyncTimer = setTimeout(() => {
      this.kick(true);
      this.scheduleResync();
    }, this.resyncMs);
    this.resyncTimer.unref?.();
  }

  /** "Look again" (coalesced); `full`: read the kernel even if the desired state is unchanged. */
  kick(full = false): void {
    if (full) this.fullWanted = true;
    this.dirty = true;
    if (this.stopped || this.timer || this.running) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.loop().finally(() => {
        this.running = undefined;
        if (this.dirty && !this.stopped) this.kick();
      });
    }, this.coalesceMs);
  }

  private async loop(): Promise<void> {
    let backoff = 100;
    while (this.dirty && !this.stopped) {
      this.dirty = false;
      const full = this.fullWanted;
      this.fullWanted = false;
      try {
        await this.look(full);
        backoff = 100;
      } catch (e) {
        if (e instanceof StoreError && e.unavailable) {
          this.setConnected(false, e.answer);
        } else {
          this.log(`watch: ${e instanceof LsdnError ? e.message : (e as Error).stack ?? String(e)}`);
          this.status.result = 'error';
          this.status.error = (e as Error).message;
          await this.writeStatus();
        }
        this.dirty = true;
        this.fullWanted = true;
        await sleep(backoff);
        backoff = Math.min(this.maxBackoffMs, backoff * 2);
      }
    }
  }

  /** One look: read the committed model; apply it when it concerns this host (or on a full look). */
  private async look(full: boolean): Promise<void> {
    const t0 = performance.now();
    const { snapshot, model, problems, origin } = await readModel(this.store);
    this.origin = origin;
    this.setConnected(true);
    await this.ensureWatch(snapshot.readRevision);
    this.lastReadRevision = Math.max(this.lastReadRevision, snapshot.readRevision);
    const revision = snapshot.revision;
    if (revision < this.status.applied) {
      this.log(`watch: the store's model (revision ${revision}) is older than the one applied (${this.status.applied}); not applied`);
      return;
    }
    this.status.seen = Math.max(this.status.seen, revision);
    if (!model || hasErrors(problems)) {
      if (this.status.result !== 'invalid' || this.status.seen !== revision) {
        this.log(`watch: the model at revision ${revision} is invalid; the last good one (revision ${this.status.applied}) stays applied:\n${problems.filter((p) => p.severity === 'error').map(formatProblem).join('\n')}`);
      }
      this.status.result = 'invalid';
      this.status.problems = problems.filter((p) => p.severity === 'error').slice(0, 20).map(formatProblem);
      this.status.at = new Date().toISOString();
      await this.writeStatus();
      return;
    }
    if (!full && this.last && this.physName && model.phys(this.physName)) {
      const print = this.compileOnly(model);
      if (print === this.last.print) {
        this.status.applied = revision;
        this.status.result = this.last.result;
        delete this.status.problems;
        this.status.unchanged++;
        this.done(revision, t0, false, 'unchanged');
        await this.writeStatus();
        return;
      }
    }
    await this.apply(model, revision, t0);
  }

  /** This host's desired state from the model and the facts of the last full apply (no kernel read). */
  private compileOnly(model: Netmodel): string | undefined {
    const facts = this.last!.facts;
    const { problems, addressing } = validateWithAddressing(model, { physes: [this.physName!], host: { interfaces: facts.interfaces, mtu: facts.mtu } });
    if (problems.some((p) => p.severity === 'error' && p.code !== 'interface-missing')) return undefined;
    const desired = compileHost(model, this.physName!, { ...facts, ...localFacts(this.kernel, model.name), addressing });
    return fingerprint(desired.objects);
  }

  private async apply(model: Netmodel, revision: number, t0: number): Promise<void> {
    try {
      const r = await applyHost(model, { phys: this.opts.phys ?? this.physName, netns: this.opts.netns, kernel: this.kernel });
      this.physName = r.phys.name;
      this.status.phys = r.phys.name;
      const count = (s: string) => r.report.results.filter((x) => x.status === s).length;
      this.status.counts = { done: count('done'), failed: count('failed'), blocked: count('blocked'), drift: r.plan.steps.length, objects: r.desired.size };
      this.status.result = this.status.counts.failed ? 'failed' : this.status.counts.blocked ? 'blocked' : 'ok';
      delete this.status.problems;
      delete this.status.error;
      this.status.applied = revision;
      this.status.applies++;
      // The facts the apply compiled with (what it read): the next looks compile with them.
      this.last = { revision, print: fingerprint(r.desired.objects), facts: hostFacts(r.read), result: this.status.result };
      const changes = r.plan.steps.length;
      this.done(revision, t0, true, changes ? `${this.status.counts.done} of ${changes} change(s) applied${this.status.counts.failed ? `, ${this.status.counts.failed} failed` : ''}${this.status.counts.blocked ? `, ${this.status.counts.blocked} blocked` : ''}` : 'in sync');
    } catch (e) {
      if (e instanceof ModelInvalidError) {
        // Invalid for this host (with its facts): refused like any invalid model.
        this.status.result = 'invalid';
        this.status.problems = locateInStore(e.problems, this.origin, this.store.prefix).filter((p) => p.severity === 'error').slice(0, 20).map(formatProblem);
        this.log(`watch: the model at revision ${revision} is invalid on this host; the last good one stays applied:\n${this.status.problems.join('\n')}`);
      } else throw e;
    } finally {
      this.status.at = new Date().toISOString();
      await this.writeStatus();
    }
  }

  private done(revision: number, t0: number, full: boolean, what: string): void {
    const durationMs = performance.now() - t0;
    this.log(`watch: revision ${revision} on phys ${this.status.phys}: ${what}${full ? '' : ' (no kernel read)'} in ${durationMs.toFixed(0)} ms`);
    this.opts.onApply?.({ revision, durationMs, full, status: { ...this.status, counts: { ...this.status.counts } } });
  }

  /** A watch of the prefix from just after what was read; re-made after an error or compaction. */
  private async ensureWatch(readRevision: number): Promise<void> {
    if (this.watcher || this.stopped) return;
    const w = await this.store.watch(readRevision + 1);
    this.watcher = w;
    const statusPrefix = `${this.store.prefix}${STATUS}`;
    const onKv = (kv: { key: Buffer }) => {
      if (!kv.key.toString().startsWith(statusPrefix)) this.kick();
    };
    w.on('put', onKv);
    w.on('delete', onKv);
    w.on('connected', () => {
      this.setConnected(true);
      this.kick(true);
    });
    w.on('disconnected', (e: Error) => this.setConnected(false, e.message));
    w.on('error', (e: Error) => {
      // Canceled by the server (e.g. compacted past our revision): re-read everything, watch anew.
      this.log(`watch: the watch ended (${e.message}); resyncing`);
      if (this.watcher === w) this.watcher = undefined;
      void w.cancel().catch(() => undefined);
      this.kick(true);
    });
  }

  private async writeStatus(): Promise<void> {
    if (this.stopped && !this.running) return;
    const phys = this.physName ?? this.opts.phys;
    if (!phys) return;
    try {
      if (!this.lease) {
        const lease = this.store.lease(this.statusTtl);
        lease.on('lost', () => {
          if (this.lease === lease) this.lease = undefined;
        });
        this.lease = lease;
      }
      await this.lease.put(K.status(this.store.prefix, phys)).value(JSON.stringify(this.status));
    } catch (e) {
      this.lease = undefined;
      this.log(`watch: could not write the status of ${phys}: ${(e as Error).message}`);
    }
  }
}
