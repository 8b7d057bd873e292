/**
 * The virt-scoped apply of the hypervisor hooks (`lsdn hook qemu-ifup|qemu-ifdown|libvirt`):
 * a VM started or stopped after the last full apply is wired (or unwired) at once, touching
 * only that virt's local objects:
 *
 *   its tap (when lsdn makes it) and its port on the net's bridge (master, MTU, flags),
 *   the bridge FDB entries on that port, its qdiscs and redirect filter, its IFB with its qdisc,
 *   and its two firewall chains (vin-/vout-) in the context's bridge table.
 *
 * The desired objects are the full compiler's (so the result is exactly what a full apply
 * makes: a full `lsdn plan` afterwards is empty), restricted to that scope; the actual ones
 * are read with a fixed number of per-device commands (src/kernel/read/virt.ts, with the
 * kinds' decoders); the planner and executor are the usual ones.
 * The number of processes and kernel operations therefore does not depend on the model's size.
 *
 * What a hook cannot do: add a virt the host's firewall does not know yet (its dispatch entry
 * is in the base chains, written by the full apply), wire a virt the net's address server does
 * not know (its hosts-file line and forward-chain entry: src/vm/serving.ts) or build a missing
 * bridge; then it fails and says to run `lsdn apply` (the model changed since the last one).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';
import type { Netmodel, Phys, Virt } from '../model/netmodel.js';
import { HostState, objectKey, type NftTableObject } from '../core/objects.js';
import { isOwnedLink, nftTableName, ownedIfname, virtChainName } from '../core/names.js';
import { LockBusyError, ModelInvalidError, UsageError } from '../core/errors.js';
import { compileHost } from '../compile/compile.js';
import { Kernel } from '../kernel/exec.js';
import { acquireLock } from '../kernel/lock.js';
import { chainShow, linkShow, readVirtScope, type VirtScope } from '../kernel/read/virt.js';
import { normalizeTapOwners } from '../kinds/tap.js';
import { planChanges, planNftTable, type Plan, type Step } from '../plan/plan.js';
import { validateWithAddressing } from '../validate/validate.js';
import { hostsFilePath, serverOfBridge, servingGaps } from '../vm/serving.js';
import { executePlan, type ExecuteReport } from './execute.js';
import { localFacts, lockScope } from './host.js';
import { logReport } from './format.js';
import { silentLogger, type Logger } from '../core/log.js';

export interface VirtApplyOptions {
  /** Work inside this network namespace. */
  netns?: string;
  kernel?: Kernel;
  /**
   * `up` (the VM starts: wire its interface) or `down` (it stops: an adopted interface leaves
   * the bridge, with what hangs on it; an lsdn tap stays, wired, for the next start).
   */
  mode?: 'up' | 'down';
  /** How long to wait for a concurrent apply's lock (ms). Default 30 s. */
  lockWaitMs?: number;
  /** Where the events go (failed and blocked steps, done). Default: nowhere. */
  logger?: Logger;
}

export interface VirtApplyResult {
  virt: Virt;
  desired: HostState;
  actual: HostState;
  plan: Plan;
  report: ExecuteReport;
}

/** The virt connected through interface `ifname` (on `phys` when given): what qemu's ifup script and libvirt's hook know. */
export function virtByInterface(model: Netmodel, ifname: string, phys?: string): Virt | undefined {
  const found = model.virts().filter((v) => v.if === ifname && v.phys && (phys === undefined || v.phys.name === phys));
  if (found.length > 1) {
    throw new UsageError(`interface ${ifname} is the interface of ${found.length} virts (${found.map((v) => `${v.id} on ${v.phys?.name}`).join(', ')}): name the phys (LSDN_PHYS or --phys)`);
  }
  return found[0];
}

/** The names the virt's objects hang on. */
export function virtScope(model: Netmodel, virt: Virt): VirtScope {
  if (!virt.phys || !virt.if) throw new UsageError(`virt ${virt.id} is not connected to a phys with an interface`);
  const ctx = model.name;
  return {
    ifname: virt.if,
    bridge: ownedIfname(ctx, 'b', virt.net.name),
    ifb: ownedIfname(ctx, 'i', virt.net.name, `ifb:${virt.name}`),
    chains: [virtChainName(ctx, virt.net.name, virt.name, 'in'), virtChainName(ctx, virt.net.name, virt.name, 'out')],
    table: nftTableName(ctx),
  };
}

/** The desired objects of the virt's scope, out of the host's whole desired state. */
export function scopeDesired(full: HostState, scope: VirtScope, mode: 'up' | 'down', tap: boolean): HostState {
  const out = new HostState();
  const onPort = (dev: string) => dev === scope.ifname;
  for (const o of full.objects.values()) {
    let inScope = false;
    switch (o.kind) {
      case 'tap':
        inScope = o.name === scope.ifname;
        break;
      case 'port':
        inScope = onPort(o.name) && (mode === 'up' || tap);
        break;
      case 'fdb':
        inScope = o.table === 'master' && onPort(o.dev) && (mode === 'up' || tap);
        break;
      case 'qdisc':
      case 'filter':
        inScope = (onPort(o.dev) && (mode === 'up' || tap)) || o.dev === scope.ifb;
        break;
      case 'link':
        inScope = o.name === scope.ifb;
        break;
      case 'nft':
        if (o.family === 'bridge' && o.name === scope.table) {
          const chains = Object.fromEntries(scope.chains.filter((c) => o.chains[c]).map((c) => [c, o.chains[c] as string[]]));
          if (Object.keys(chains).length) out.add({ ...o, chains });
        }
        break;
      default:
        break;
    }
    if (inScope) out.add(o);
  }
  return out;
}

/** The per-namespace lock, waited for (a hook must not fail because an apply is running). */
async function lockWithWait(kernel: Kernel, waitMs: number): Promise<() => void> {
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      return acquireLock(lockScope(kernel));
    } catch (e) {
      if (!(e instanceof LockBusyError) || Date.now() >= until) throw e;
      await sleep(200);
    }
  }
}

/** Plan the virt's scope: changes nothing. */
export async function planVirt(model: Netmodel, virt: Virt, opts: VirtApplyOptions = {}):
  Promise<{ kernel: Kernel; desired: HostState; actual: HostState; plan: Plan }> {
  const kernel = opts.kernel ?? new Kernel({ netns: opts.netns });
  const mode = opts.mode ?? 'up';
  const phys = virt.phys as Phys | undefined;
  if (!phys || !virt.if) throw new UsageError(`virt ${virt.id} is not connected to a phys with an interface`);
  // The model must be valid for this phys (host facts are the full apply's business).
  // (Validation assigns the addresses; the compiler takes them as a host fact: computed once.)
  const { problems, addressing } = validateWithAddressing(model, { physes: [phys.name] });
  if (problems.some((p) => p.severity === 'error')) throw new ModelInvalidError(problems);
  const scope = virtScope(model, virt);
  const underlay = phys.if ? await linkShow(kernel, phys.if) : undefined;
  const facts = { mtu: new Map(underlay && phys.if ? [[phys.if, underlay.mtu ?? 0]] : []) };
  const local = localFacts(kernel, model.name);
  const full = compileHost(model, phys.name, { ...facts, ...local, addressing });
  const desired = scopeDesired(full, scope, mode, virt.tap !== undefined);
  const read = await readVirtScope(kernel, model.name, scope);
  read.state = normalizeTapOwners(read.state, local.owners);
  if (!read.bridge || !isOwnedLink(read.bridge.ifname, read.bridge.ifalias, model.name)) {
    throw new UsageError(`the bridge of net ${virt.net.name} (${scope.bridge}) is not on this host: run \`lsdn apply\` first`);
  }
  const wantTable = desired.get(`nft bridge ${scope.table}`) as NftTableObject | undefined;
  const haveTable = read.state.get(`nft bridge ${scope.table}`) as NftTableObject | undefined;
  const missingChains = Object.keys(wantTable?.chains ?? {}).filter((c) => haveTable?.chains[c] === undefined);
  if (missingChains.length) {
    throw new UsageError(`virt ${virt.id} is not in this host's firewall yet (the model changed since the last apply): run \`lsdn apply\``);
  }
  // On a served net, the address server must know the virt too (hosts file, forward chain).
  if (mode === 'up') {
    const server = serverOfBridge(full, scope.bridge);
    if (server) {
      const hostsPath = hostsFilePath(server);
      const [forward, hosts] = await Promise.all([
        chainShow(kernel, scope.table, 'forward'),
        hostsPath ? readFile(hostsPath, 'utf8').catch(() => undefined) : Promise.resolve(undefined),
      ]);
      const gaps = servingGaps(full, virt, scope.bridge, scope.table, { forward, hosts });
      if (gaps.length) {
        throw new UsageError(`virt ${virt.id} is not known to this host's address server yet (${gaps.join('; ')}; the model changed since the last apply): run \`lsdn apply\``);
      }
    }
  }
  const links = new Set(read.links);
  if (phys.if && underlay) links.add(phys.if);
  const plan = planChanges(desired, read.state, { links });
  // The firewall chains are compared chain by chain (never the whole table: that is the full apply's).
  plan.steps = plan.steps.filter((s) => !s.key.startsWith('nft '));
  if (wantTable) {
    const s = planNftTable(wantTable, haveTable);
    if (s) plan.steps.push({ action: s.action, key: objectKey(wantTable), commands: s.commands, changes: s.changes } satisfies Step);
  }
  return { kernel, desired, actual: read.state, plan };
}

/** Wire (or unwire) one virt on this host: its local objects only, under the host's lock. */
export async function applyVirt(model: Netmodel, virt: Virt, opts: VirtApplyOptions = {}): Promise<VirtApplyResult> {
  const started = Date.now();
  const kernel = opts.kernel ?? new Kernel({ netns: opts.netns });
  const release = await lockWithWait(kernel, opts.lockWaitMs ?? 30_000);
  try {
    const p = await planVirt(model, virt, { ...opts, kernel });
    const report = await executePlan(kernel, p.plan);
    const mode = opts.mode ?? 'up';
    const log = (opts.logger ?? silentLogger).child({ context: model.name, virt: virt.id, if: virt.if, mode, ...(kernel.netns ? { netns: kernel.netns } : {}) });
    logReport(log, report, `${mode === 'up' ? 'wire' : 'unwire'} virt ${virt.id}`, Date.now() - started);
    return { virt, desired: p.desired, actual: p.actual, plan: p.plan, report };
  } finally {
    release();
  }
}
