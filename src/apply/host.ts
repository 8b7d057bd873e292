/**
 * The reconciler's entry points for one host: plan, apply, status, destroy. Each reads the
 * kernel (no hidden state), compiles the model for the local phys, diffs, and (for apply and
 * destroy) executes the difference, under a per-host lock.
 */
import { hostname } from 'node:os';
import { statSync } from 'node:fs';
import type { Netmodel, Phys } from '../model/netmodel.js';
import { normalizeIp } from '../core/addr.js';
import { compileHost, type HostFacts } from '../compile/compile.js';
import { HostState, type KernelObject } from '../core/objects.js';
import { Kernel } from '../kernel/exec.js';
import { readHostState, type ReadResult } from '../kernel/read/host.js';
import { acquireLock } from '../kernel/lock.js';
import { probeFeatures, type KernelFeatures } from '../kernel/probe.js';
import { planChanges, type Plan } from '../plan/plan.js';
import { validateWithAddressing } from '../validate/validate.js';
import { normalizeTapOwners } from '../kinds/tap.js';
import { readOwnerIds } from '../kernel/owners.js';
import type { Problem } from '../core/problem.js';
import { executePlan, type ExecuteReport } from './execute.js';
import { runDir } from '../services/dhcp.js';
import { serverHostTag } from '../core/names.js';
import { missingServiceTools } from '../kernel/tools.js';
import { UsageError, ModelInvalidError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/log.js';
import { formatProblem } from '../core/problem.js';
import { logReport } from './format.js';

export interface HostOptions {
  /** The local phys: by name, by this host's hostname, or by one of its IPs. Default: the model's claimed-local phys, else this host's hostname, else a phys whose IP is on this host. */
  phys?: string;
  /** Work inside this network namespace. */
  netns?: string;
  /** Use this kernel handle (counts operations; tests pass their own). */
  kernel?: Kernel;
  /** Where apply's events go (one line each: plan, problems, failed and blocked steps, done). Default: nowhere. */
  logger?: Logger;
}

export interface HostPlan {
  phys: Phys;
  kernel: Kernel;
  read: ReadResult;
  desired: HostState;
  plan: Plan;
  /** Validation problems (warnings, and missing VM interfaces, which block only their own steps). */
  problems: Problem[];
  /** Compiler remarks (MTU). */
  warnings: string[];
}

/** Problems that do not stop an apply: they block only the steps that need the missing thing. */
const NON_BLOCKING = new Set(['interface-missing']);

function hostAddresses(read: ReadResult): Set<string> {
  const out = new Set<string>();
  for (const l of read.links.values()) for (const a of l.addresses) out.add(normalizeIp(a.split('/')[0] ?? '') ?? a);
  return out;
}

/** Which phys is this host? */
export function selectLocalPhys(model: Netmodel, read: ReadResult, wanted?: string): Phys {
  const physes = [...model.physes.values()];
  const names = physes.map((p) => p.name).join(', ') || '(none)';
  if (wanted !== undefined) {
    const byName = model.phys(wanted);
    if (byName) return byName;
    const ip = normalizeIp(wanted);
    const byIp = ip ? physes.find((p) => p.ip && normalizeIp(p.ip) === ip) : undefined;
    if (byIp) return byIp;
    throw new UsageError(`--phys ${wanted}: no phys has that name or IP (physes: ${names})`);
  }
  if (model.localPhyses.size === 1) return [...model.localPhyses][0]!;
  if (model.localPhyses.size > 1) throw new UsageError(`more than one phys is claimed local (${[...model.localPhyses].map((p) => p.name).join(', ')}); lsdn configures one phys per host`);
  const host = hostname().split('.')[0];
  const byHost = physes.find((p) => p.name === host);
  if (byHost) return byHost;
  const addrs = hostAddresses(read);
  const byAddr = physes.filter((p) => p.ip && addrs.has(normalizeIp(p.ip) ?? p.ip));
  if (byAddr.length === 1) return byAddr[0]!;
  throw new UsageError(`cannot tell which phys this host is (hostname "${hostname()}", no single phys IP found here); name it with --phys (physes: ${names})`);
}

export function hostFacts(read: ReadResult): HostFacts & { mtu: Map<string, number>; interfaces: Set<string> } {
  const mtu = new Map<string, number>();
  for (const l of read.links.values()) mtu.set(l.name, l.mtu);
  return { mtu, interfaces: new Set(read.links.keys()) };
}

/**
 * The compiler's host facts that come from this host rather than from its kernel state: where
 * the address servers' namespaces and files go (the netns worked in, LSDN_RUN_DIR), and the
 * host's users and groups (tap owners as numeric ids).
 */
export function localFacts(kernel: Kernel, context: string): Required<Pick<HostFacts, 'hostTag' | 'runDir' | 'owners'>> {
  return { hostTag: serverHostTag(kernel.netns, context), runDir: runDir(), owners: readOwnerIds() };
}

/** Read the host, validate the model for it and compute the plan. Changes nothing. */
export async function planHost(model: Netmodel, opts: HostOptions = {}): Promise<HostPlan> {
  const kernel = opts.kernel ?? new Kernel({ netns: opts.netns });
  const read = await readHostState(kernel, { context: model.name });
  const phys = selectLocalPhys(model, read, opts.phys);
  const facts = hostFacts(read);
  // Validation assigns every virt's addresses: the compiler takes them as a host fact (computed once).
  const { problems, addressing } = validateWithAddressing(model, { physes: [phys.name], host: { interfaces: facts.interfaces, mtu: facts.mtu } });
  if (problems.some((p) => p.severity === 'error' && !NON_BLOCKING.has(p.code))) throw new ModelInvalidError(problems);
  const local = localFacts(kernel, model.name);
  const desired = compileHost(model, phys.name, { ...facts, ...local, addressing });
  // Tap owners compare as numeric ids on both sides (iproute2 prints a name when the id has one).
  const plan = planChanges(desired, normalizeTapOwners(read.state, local.owners), { links: facts.interfaces });
  return { phys, kernel, read, desired, plan, problems, warnings: desired.warnings };
}

/** The kernel's features, probed once per process (they do not change while it runs). */
let features: Promise<KernelFeatures> | undefined;
function kernelFeatures(): Promise<KernelFeatures> {
  features ??= probeFeatures().catch((e: unknown) => {
    features = undefined;
    throw e;
  });
  return features;
}

/**
 * Kernel features a plan needs that this host shows no sign of yet (link types it has none
 * of; lsdn's qdiscs, filters and firewall tables when it has none of them): probe them before
 * applying, and refuse the apply with what is missing.
 */
async function checkFeatures(hp: HostPlan): Promise<void> {
  const present = new Set([...hp.read.links.values()].map((l) => l.type));
  const has = (kind: string, pred: (o: KernelObject) => boolean = () => true) =>
    [...hp.read.state.objects.values()].some((o) => o.kind === kind && pred(o));
  const wants = (kind: string, pred: (o: KernelObject) => boolean = () => true) =>
    [...hp.desired.objects.values()].some((o) => o.kind === kind && pred(o));
  const wanted = new Set<string>();
  for (const o of hp.desired.objects.values()) if (o.kind === 'link' && !present.has(o.type)) wanted.add(o.type);
  const shaping = wants('qdisc') && !has('qdisc');
  const isInet = (o: KernelObject) => o.kind === 'nft' && o.family === 'inet';
  const isBridge = (o: KernelObject) => o.kind === 'nft' && o.family === 'bridge';
  const stateful = wants('nft', isInet) && !has('nft', isInet);
  const firewall = wants('nft', isBridge) && !has('nft', isBridge);
  if (wanted.size === 0 && !shaping && !stateful && !firewall) return;
  const f = await kernelFeatures();
  const missing = [...wanted].filter((t) => f.links[t] === false).map((t) => `${t} links`);
  if (shaping) {
    if (!f.qdiscs.tbf) missing.push('the tbf qdisc (rate limits)');
    if (wants('filter') && !(f.qdiscs.ingress && f.classifiers.u32 && f.actions.mirred)) missing.push('ingress qdisc, u32 and mirred (rate limits of what VMs send)');
  }
  if (firewall && !(f.nft.installed && f.nft.bridgeFamily)) missing.push('nftables with the bridge family (firewall rules and anti-spoofing)');
  if (stateful) {
    if (!f.nft.conntrack) missing.push('conntrack in nftables (stateful virts)');
    if (!f.nft.bridgeNetfilter) missing.push('br_netfilter, which stateful virts need to see bridged traffic in conntrack (modprobe br_netfilter)');
  }
  if (missing.length) {
    throw new UsageError(
      `this kernel lacks ${missing.join('; ')}, which the model needs on ${hp.phys.name} (see \`lsdn doctor\`); nothing was applied`,
    );
  }
}

/**
 * The lock is per network namespace, named by the namespace's inode, so `--netns X` and
 * `ip netns exec X lsdn ...` take the same lock and different namespaces never wait on each other.
 */
export function lockScope(kernel: Kernel): string {
  const path = kernel.netns ? `/run/netns/${kernel.netns}` : '/proc/self/ns/net';
  try {
    return `net-${statSync(path).ino}`;
  } catch {
    return kernel.netns ? `netns-${kernel.netns}` : 'host';
  }
}

export function requireRoot(verb: string): void {
  if (process.getuid && process.getuid() !== 0) throw new UsageError(`lsdn ${verb} changes network interfaces and must run as root`);
}

/** Converge the host on the model. */
export async function applyHost(model: Netmodel, opts: HostOptions = {}): Promise<HostPlan & { report: ExecuteReport }> {
  const started = Date.now();
  const kernel = opts.kernel ?? new Kernel({ netns: opts.netns });
  const release = acquireLock(lockScope(kernel));
  try {
    const hp = await planHost(model, { ...opts, kernel });
    const log = (opts.logger ?? silentLogger).child({ context: model.name, phys: hp.phys.name, ...(kernel.netns ? { netns: kernel.netns } : {}) });
    for (const p of hp.problems) log.warn('model.problem', formatProblem(p), { code: p.code });
    for (const w of hp.warnings) log.warn('compile.warning', w);
    const blocked = hp.plan.steps.filter((s) => s.blocked).length;
    log.info('apply.plan', `${hp.plan.steps.length} change(s) to make${blocked ? `, ${blocked} of them blocked` : ''}`, {
      steps: hp.plan.steps.length,
      blocked,
      desired: hp.desired.size,
      owned: hp.read.state.size,
    });
    await checkFeatures(hp);
    const tools = missingServiceTools(hp.plan);
    if (tools) throw new UsageError(`${tools}; nothing was applied`);
    const report = await executePlan(kernel, hp.plan);
    logReport(log, report, `apply on phys ${hp.phys.name}`, Date.now() - started);
    return { ...hp, report };
  } finally {
    release();
  }
}

/** Remove everything lsdn owns on this host (of one context, when given). */
export async function destroyHost(opts: { netns?: string; kernel?: Kernel; context?: string } = {}): Promise<{ plan: Plan; report: ExecuteReport }> {
  const kernel = opts.kernel ?? new Kernel({ netns: opts.netns });
  const release = acquireLock(lockScope(kernel));
  try {
    const read = await readHostState(kernel, opts.context !== undefined ? { context: opts.context } : {});
    // Destroy deletes taps even while a VM holds them (an apply would not).
    const plan = planChanges(new HostState(), read.state, { links: new Set(read.links.keys()), destroy: true });
    const report = await executePlan(kernel, plan);
    return { plan, report };
  } finally {
    release();
  }
}
