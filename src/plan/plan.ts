/**
 * The planner: diff the desired state of a host with its actual (owned) state into an ordered
 * plan. Pure and deterministic. Order: deletions before creations (a MAC moving between
 * ports, a link recreated with new immutable attributes), and dependencies first (bridges
 * before their ports, ports before their FDB entries).
 */
import { isDeepStrictEqual } from 'node:util';
import { HostState, objectKey, type BridgePortFlags, type FdbObject, type KernelObject, type LinkObject, type NeighObject, type AddrObject, type PortObject, type NftTableObject, type QdiscObject, type FilterObject, type TapObject } from '../core/objects.js';
import { qdiscChanges, sameQdisc } from '../policy/shaping.js';
import * as r from './render.js';
import type { Command } from '../core/command.js';
import { deleteServer, planServer, planSysctl } from '../services/plan.js';
import { createTap, deleteTap, tapChanges } from '../vm/tap.js';

export type StepAction = 'create' | 'delete' | 'update' | 'recreate';

export interface Step {
  action: StepAction;
  /** Object key ("link lsb-1a2b3c4d", "fdb lsx-... 02:..:01 master"...). */
  key: string;
  /** What changed, for updates and recreations ("mtu 1500 -> 1450"). */
  changes?: string[];
  /** Why the step cannot run, when it cannot (e.g. the VM's interface does not exist). */
  blocked?: string;
  commands: Command[];
}

export interface Plan {
  steps: Step[];
}

export interface PlanFacts {
  /** Every link on the host, owned or not (to tell a missing VM interface from a present one). */
  links?: ReadonlySet<string>;
  /**
   * Destroy: everything goes, also a tap a running VM holds (an apply never deletes one: the
   * step is blocked until the VM has stopped).
   */
  destroy?: boolean;
}

/** Phases, in execution order. */
const enum Phase {
  DeleteEntries,
  DeleteFilters,
  DeleteQdiscs,
  ReleasePorts,
  DeleteLinks,
  CreateBridges,
  CreateLinks,
  UpdateLinks,
  Ports,
  PortFlags,
  CreateEntries,
  Qdiscs,
  Filters,
  Firewall,
  /** Address servers and sysctls (src/services): after the bridges, ports and firewall they rely on. */
  Services,
}

interface Staged extends Step {
  phase: Phase;
}

function diffFields(from: Record<string, unknown>, to: Record<string, unknown>, keys: string[]): string[] {
  const out: string[] = [];
  for (const k of keys) {
    const a = from[k];
    const b = to[k];
    if (b !== undefined && !isDeepStrictEqual(a, b)) out.push(`${k} ${fmt(a)} -> ${fmt(b)}`);
  }
  return out;
}

function fmt(v: unknown): string {
  if (v === undefined) return '(none)';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Flags in `want` that `have` lacks or has otherwise. */
function flagChanges(have: BridgePortFlags | undefined, want: BridgePortFlags | undefined): BridgePortFlags {
  const out: BridgePortFlags = {};
  for (const [k, v] of Object.entries(want ?? {}) as [keyof BridgePortFlags, boolean][]) {
    if (have?.[k] !== v) out[k] = v;
  }
  return out;
}

/** Immutable attributes of a link that differ (only those the desired state names are compared). */
function immutableChanges(have: LinkObject, want: LinkObject): string[] {
  const changes: string[] = [];
  if (have.type !== want.type) changes.push(`type ${have.type} -> ${want.type}`);
  if ((want.lower ?? undefined) !== (have.lower ?? undefined)) changes.push(`link ${fmt(have.lower)} -> ${fmt(want.lower)}`);
  for (const [k, v] of Object.entries(want.attrs)) {
    if (!isDeepStrictEqual(have.attrs[k], v)) changes.push(`${k} ${fmt(have.attrs[k])} -> ${fmt(v)}`);
  }
  return changes;
}

/**
 * Desired links lsdn cannot use, by name -> the link that makes them unusable: the name is
 * taken by a link lsdn does not own (itself), or (transitively) the link is, or is to be,
 * enslaved to such a bridge. Whatever would be attached to or programmed on them would
 * change a foreign object, so it is blocked too.
 */
function unusableLinks(desired: HostState, actual: HostState, facts: PlanFacts): Map<string, string> {
  const out = new Map<string, string>();
  const links = [...desired.objects.values()].filter((o): o is LinkObject => o.kind === 'link');
  for (const want of links) {
    if (!actual.get(objectKey(want)) && facts.links?.has(want.name)) out.set(want.name, want.name);
  }
  for (let grew = out.size > 0; grew;) {
    grew = false;
    for (const want of links) {
      if (want.master !== undefined && out.has(want.master) && !out.has(want.name)) {
        out.set(want.name, out.get(want.master) as string);
        grew = true;
      }
    }
  }
  return out;
}

export function planChanges(desired: HostState, actual: HostState, facts: PlanFacts = {}): Plan {
  const steps: Staged[] = [];
  const unusable = unusableLinks(desired, actual, facts);
  /** "WHAT NAME cannot be used: ROOT exists but is not lsdn's", or undefined when usable. */
  const dep = (name: string | undefined, what: string): string | undefined => {
    const root = name !== undefined ? unusable.get(name) : undefined;
    if (root === undefined) return undefined;
    return root === name ? `${what} ${name} exists but is not lsdn's` : `${what} ${name} cannot be used: ${root} exists but is not lsdn's`;
  };
  /** Why a desired object cannot be made: it hangs on a link lsdn cannot use. */
  const blockedBy = (o: KernelObject): string | undefined => {
    const masterOf = (dev: string): string | undefined => {
      const d = desired.get(`link ${dev}`) ?? desired.get(`port ${dev}`);
      return d && (d.kind === 'link' || d.kind === 'port') ? d.master : undefined;
    };
    switch (o.kind) {
      case 'link':
        return unusable.get(o.name) === o.name
          ? `interface ${o.name} exists but is not marked as lsdn's (alias "${o.alias}" missing); remove it or set that alias`
          : dep(o.master, 'its bridge');
      case 'port':
        return dep(o.master, 'bridge');
      case 'fdb':
        return dep(o.dev, 'interface') ?? (o.table === 'master' ? dep(masterOf(o.dev), 'bridge') : undefined);
      case 'neigh':
      case 'addr':
        return dep(o.dev, 'interface');
      case 'qdisc':
      case 'filter':
        return dep(o.dev, 'interface') ?? (facts.links && !facts.links.has(o.dev) && !willCreate(o.dev)
          ? `interface ${o.dev} does not exist on this host`
          : undefined);
      case 'tap':
        return !actual.get(objectKey(o)) && facts.links?.has(o.name)
          ? `interface ${o.name} exists but is not a tap of lsdn's (alias "${o.alias}" missing); remove \`tap\` from the virt to adopt it, or delete it`
          : undefined;
      case 'nft':
      case 'sysctl':
        return undefined;
      case 'dhcp':
        // A new server's veth name taken by a link lsdn does not own (not even by a server it reads).
        return !actual.get(objectKey(o)) && facts.links?.has(o.port)
          ? `interface ${o.port} exists but is not marked as lsdn's (alias "${o.alias}" missing); remove it`
          : dep(o.bridge, 'bridge');
    }
  };
  /** An interface this plan creates (an owned link, or a tap). */
  const willCreate = (dev: string) => desired.get(`link ${dev}`) !== undefined || desired.get(`tap ${dev}`) !== undefined;
  const blockedKeys = new Set<string>();
  const add = (phase: Phase, action: StepAction, o: KernelObject, commands: Command[], extra: Partial<Step> = {}) => {
    if (!commands.length && !extra.blocked) return;
    const key = objectKey(o);
    const why = action === 'delete' ? extra.blocked : (extra.blocked ?? blockedBy(o));
    if (why === undefined) steps.push({ phase, action, key, commands, ...extra });
    else if (!blockedKeys.has(key)) {
      // One blocked step per object (not one per step it would have had), without commands.
      blockedKeys.add(key);
      steps.push({ phase, action, key, commands: [], ...extra, blocked: why });
    }
  };

  // Links that disappear or are recreated: whatever hangs on them goes with them.
  const gone = new Set<string>();
  for (const [key, have] of actual.objects) {
    if (have.kind !== 'link') continue;
    const want = desired.get(key);
    if (!want) gone.add(have.name);
    else if (want.kind === 'link' && immutableChanges(have, want).length) gone.add(have.name);
  }
  // Taps that disappear, or are recreated (not while a VM has them open: that step is blocked).
  /** A tap that is no longer wanted but a running VM holds: deleting it would cut the VM off. */
  const heldTap = (have: TapObject) => have.attached === true && !facts.destroy;
  for (const [key, have] of actual.objects) {
    if (have.kind !== 'tap') continue;
    const want = desired.get(key);
    if (!want) {
      if (!heldTap(have)) gone.add(have.name);
    } else if (want.kind === 'tap' && !have.attached && tapChanges(have, want).length) gone.add(have.name);
  }
  // The interface of a tap this plan deletes (no longer made by lsdn) is missing for what the plan makes on it.
  const deletedTaps = new Set([...gone].filter((n) => actual.get(`tap ${n}`) && !desired.get(`tap ${n}`)));
  if (deletedTaps.size && facts.links) facts = { ...facts, links: new Set([...facts.links].filter((n) => !deletedTaps.has(n))) };
  const hangsOnGone = (o: KernelObject): boolean => {
    switch (o.kind) {
      case 'fdb':
      case 'neigh':
      case 'addr':
      case 'qdisc':
        return gone.has(o.dev);
      case 'filter':
        return gone.has(o.dev) || gone.has(o.redirect);
      case 'port':
        return gone.has(o.master) || gone.has(o.name);
      case 'tap':
        return false;
      case 'link':
        return o.master !== undefined && gone.has(o.master);
      case 'dhcp':
        return gone.has(o.bridge);
      case 'nft':
      case 'sysctl':
        return false;
    }
  };

  // Deletions.
  for (const [key, have] of actual.objects) {
    if (desired.get(key)) continue;
    switch (have.kind) {
      case 'link':
        add(Phase.DeleteLinks, 'delete', have, r.deleteLink(have));
        break;
      case 'port':
        if (!gone.has(have.master) && !gone.has(have.name)) add(Phase.ReleasePorts, 'delete', have, r.releasePort(have));
        break;
      case 'tap':
        add(Phase.DeleteLinks, 'delete', have, deleteTap(have), heldTap(have)
          ? { blocked: `tap ${have.name} is no longer lsdn's to make but a running VM holds it; it is deleted once the VM has stopped (next apply or the qemu-ifdown/libvirt hook)` }
          : {});
        break;
      case 'fdb':
        if (!gone.has(have.dev) && !releasedPort(have.dev)) add(Phase.DeleteEntries, 'delete', have, r.deleteFdb(have));
        break;
      case 'neigh':
        if (!gone.has(have.dev)) add(Phase.DeleteEntries, 'delete', have, r.deleteNeigh(have));
        break;
      case 'addr':
        if (!gone.has(have.dev)) add(Phase.DeleteEntries, 'delete', have, r.deleteAddr(have));
        break;
      case 'qdisc':
        if (!gone.has(have.dev)) add(Phase.DeleteQdiscs, 'delete', have, r.deleteQdisc(have));
        break;
      case 'filter':
        // Deleting the ingress qdisc takes its filters with it.
        if (!gone.has(have.dev) && desired.get(`qdisc ${have.dev} ingress`)) add(Phase.DeleteFilters, 'delete', have, r.deleteFilter(have));
        break;
      case 'nft':
        add(Phase.Firewall, 'delete', have, r.nftDeleteTable(have), { changes: ['table removed'] });
        break;
      case 'dhcp':
        add(Phase.DeleteLinks, 'delete', have, deleteServer(have));
        break;
      case 'sysctl':
        break; // left as it is: other things may rely on it
    }
  }

  /** A master FDB entry on a port that leaves its bridge goes away with the enslavement. */
  function releasedPort(dev: string): boolean {
    const port = actual.get(`port ${dev}`);
    return port !== undefined && !desired.get(`port ${dev}`);
  }

  /** Bridge-port flags of a link or port that `have` lacks (all of them for a new one). */
  const portFlags = (want: LinkObject | PortObject, have: BridgePortFlags | undefined, action: 'create' | 'update') => {
    const flags = flagChanges(have, want.brport);
    if (Object.keys(flags).length === 0) return;
    const changes = action === 'update' ? { changes: Object.entries(flags).map(([k, v]) => `${k} -> ${v ? 'on' : 'off'}`) } : {};
    add(Phase.PortFlags, action, want, r.setBridgePortFlags(want.name, flags), changes);
  };

  // Creations and updates.
  for (const [key, want] of desired.objects) {
    const found = actual.get(key);
    const have = found && !hangsOnGone(found) ? found : undefined;
    switch (want.kind) {
      case 'link': {
        const phase = want.type === 'bridge' ? Phase.CreateBridges : Phase.CreateLinks;
        const old = found as LinkObject | undefined;
        if (!old || gone.has(want.name)) {
          if (!old && unusable.has(want.name)) {
            add(phase, 'create', want, [], { blocked: blockedBy(want) });
            break;
          }
          const cmds = [...(old ? r.deleteLink(old) : []), ...r.createLink(want)];
          add(phase, old ? 'recreate' : 'create', want, cmds, old ? { changes: immutableChanges(old, want) } : {});
          portFlags(want, undefined, 'create');
          break;
        }
        // Enslaved to a bridge that is being recreated: it is released, so enslave it again.
        const prev: LinkObject = old.master !== undefined && gone.has(old.master) ? { ...old, master: undefined, brport: undefined } : old;
        const changes = diffFields(prev as unknown as Record<string, unknown>, want as unknown as Record<string, unknown>, ['alias', 'mtu', 'master', 'up']);
        if (changes.length) add(Phase.UpdateLinks, 'update', want, r.updateLinkOrPort(want.name, prev, want), { changes });
        portFlags(want, prev.brport, 'update');
        if (want.type === 'bridge') {
          const on = want.netfilter === true;
          if (on ? prev.netfilter !== true : prev.netfilter !== undefined) {
            add(Phase.UpdateLinks, 'update', want, r.setBridgeNetfilter(want.name, on), { changes: [`netfilter ${fmt(prev.netfilter ?? false)} -> ${on}`] });
          }
        }
        break;
      }
      case 'port': {
        const prev = have as PortObject | undefined;
        // (A tap this plan deletes is missing too: the virt's interface is the hypervisor's again.)
        if (((facts.links && !facts.links.has(want.name)) || gone.has(want.name)) && !desired.get(`tap ${want.name}`)) {
          add(Phase.Ports, 'create', want, [], { blocked: `interface ${want.name} does not exist on this host` });
          break;
        }
        if (!prev) {
          add(Phase.Ports, 'create', want, r.attachPort(want));
          portFlags(want, undefined, 'create');
        } else {
          const changes = diffFields(prev as unknown as Record<string, unknown>, want as unknown as Record<string, unknown>, ['mtu', 'master', 'up']);
          if (changes.length) add(Phase.Ports, 'update', want, r.updateLinkOrPort(want.name, prev, want), { changes });
          portFlags(want, prev.brport, 'update');
        }
        break;
      }
      case 'tap': {
        const old = found as TapObject | undefined;
        if (!old) {
          add(Phase.CreateLinks, 'create', want, createTap(want));
          break;
        }
        const changes = tapChanges(old, want);
        if (changes.length && old.attached) {
          // Recreating it would cut the running VM off its network for good (qemu keeps the old fd).
          add(Phase.CreateLinks, 'recreate', want, [], {
            changes,
            blocked: `tap ${want.name} is in use by a running VM; it is recreated with the new attributes once the VM has stopped (next apply or the qemu-ifdown/libvirt hook)`,
          });
        } else if (changes.length) {
          add(Phase.CreateLinks, 'recreate', want, [...deleteTap(old), ...createTap(want)], { changes });
        } else if (old.alias !== want.alias) {
          add(Phase.UpdateLinks, 'update', want, r.updateLinkOrPort(want.name, { up: true, alias: old.alias }, { up: true, alias: want.alias }), { changes: [`alias ${old.alias} -> ${want.alias}`] });
        }
        break;
      }
      case 'fdb':
        if (!have) {
          const missingDev = want.table === 'master' && facts.links && !facts.links.has(want.dev) && !willCreate(want.dev);
          if (missingDev) add(Phase.CreateEntries, 'create', want, [], { blocked: `interface ${want.dev} does not exist on this host` });
          else add(Phase.CreateEntries, 'create', want, r.createFdb(want as FdbObject));
        }
        break;
      case 'neigh':
        if (!have || (have as NeighObject).mac !== want.mac) add(Phase.CreateEntries, have ? 'update' : 'create', want, r.createNeigh(want));
        break;
      case 'addr':
        if (!have) add(Phase.CreateEntries, 'create', want, r.createAddr(want as AddrObject));
        break;
      case 'qdisc': {
        const prev = have as QdiscObject | undefined;
        if (!prev) add(Phase.Qdiscs, 'create', want, r.replaceQdisc(want));
        else if (!sameQdisc(prev, want)) add(Phase.Qdiscs, 'update', want, r.replaceQdisc(want), { changes: qdiscChanges(prev, want) });
        break;
      }
      case 'filter': {
        const prev = have as FilterObject | undefined;
        if (!prev) add(Phase.Filters, 'create', want, r.replaceFilter(want));
        else if (prev.redirect !== want.redirect) {
          add(Phase.Filters, 'update', want, r.replaceFilter(want), { changes: [`redirect ${prev.redirect} -> ${want.redirect}`] });
        }
        break;
      }
      case 'nft': {
        const s = planNftTable(want, found as NftTableObject | undefined);
        if (s) add(Phase.Firewall, s.action, want, s.commands, { changes: s.changes });
        break;
      }
      case 'dhcp': {
        // A server whose bridge is recreated lost its port: it is recreated too.
        const old = found?.kind === 'dhcp' ? (have ? found : { ...found, bridge: '' }) : undefined;
        const s = planServer(want, old);
        if (s) add(Phase.Services, s.action, want, s.commands, { changes: s.changes });
        break;
      }
      case 'sysctl': {
        const s = planSysctl(want, found?.kind === 'sysctl' ? found : undefined);
        if (s) add(Phase.Services, s.action, want, s.commands, { changes: s.changes });
        break;
      }
    }
  }

  // Stable order: by phase, then by key within a phase (deterministic output).
  steps.sort((a, b) => a.phase - b.phase || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { steps: steps.map(({ phase: _phase, ...s }) => s) };
}

const isBaseChain = (lines: string[] | undefined): boolean => lines?.[0]?.startsWith('type ') === true;

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
  if (!have) {
    return {
      action: 'create',
      commands: [r.nftAddTable(want), ...ordered.map((c) => r.nftChainBlock(family, name, c, want.chains[c] ?? []))],
      changes: [],
    };
  }
  const commands: Command[] = [];
  const changes: string[] = [];
  for (const c of ordered) {
    const w = want.chains[c] ?? [];
    const h = have.chains[c];
    if (h === undefined) {
      commands.push(r.nftChainBlock(family, name, c, w));
      changes.push(`chain ${c} added`);
    } else if (!isDeepStrictEqual(h, w)) {
      const hookChanged = (isBaseChain(h) || isBaseChain(w)) && h[0] !== w[0];
      commands.push(hookChanged ? r.nftDeleteChain(family, name, c) : r.nftFlushChain(family, name, c), r.nftChainBlock(family, name, c, w));
      changes.push(`chain ${c} replaced`);
    }
  }
  const extra = Object.keys(have.chains).filter((c) => !(c in want.chains)).sort();
  for (const c of [...extra.filter((c) => isBaseChain(have.chains[c])), ...extra.filter((c) => !isBaseChain(have.chains[c]))]) {
    commands.push(r.nftDeleteChain(family, name, c));
    changes.push(`chain ${c} removed`);
  }
  return commands.length ? { action: 'update', commands, changes } : undefined;
}

export function isEmptyPlan(plan: Plan): boolean {
  return plan.steps.length === 0;
}

/** Count of kernel operations (batch lines) the plan will send. */
export function planOperations(plan: Plan): number {
  return plan.steps.reduce((n, s) => n + (s.blocked ? 0 : s.commands.length), 0);
}

