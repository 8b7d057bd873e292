/**
 * The store verbs: `lsdn push|pull|diff`, the orchestrators' object verbs (`net|virt|phys
 * add|rm`, `virt move`: each one validated transaction), and the options every store verb
 * takes (--store URL or LSDN_STORE, TLS and users as etcdctl names them).
 */
import { Option, type Command } from 'commander';
import { Store, type StoreOptions } from '../store/etcd.js';
import { readModel, replaceWith, writeModel, type WriteResult } from '../store/model.js';
import { modelToFile, dumpJson, dumpYaml } from '../file/dump.js';
import { diffKeys, addNet, addPhys, addVirt, moveVirt, removeNet, removePhys, removeVirt, type FileForm } from '../cluster/change.js';
import { candidate } from '../cluster/candidate.js';
import { ModelInvalidError, UsageError } from '../core/errors.js';
import { formatProblems, hasErrors } from '../core/problem.js';
import type { Netmodel } from '../model/netmodel.js';
import { Exit, err, loadOrExit, out } from './util.js';
import { HostWatcher } from '../store/watch.js';
import { clusterStatus, formatClusterStatus } from '../store/status.js';
import { startMetrics } from '../store/metrics.js';
import { requireRoot } from '../apply/host.js';

export type StoreFlags = Pick<StoreOptions, 'store' | 'context' | 'cacert' | 'cert' | 'key' | 'user' | 'password'>;

/** The options of every store verb. */
export function storeOptions(c: Command, required = true): Command {
  return c
    .addOption(new Option('--store <url>', `etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (default: LSDN_STORE)${required ? '' : '; without it the verb reads a file'}`))
    .option('--context <name>', 'context whose default prefix /lsdn/CONTEXT/ is used when the URL names none (default: the model\'s name, or "lsdn")')
    .option('--cacert <file>', 'CA bundle of the etcd servers (TLS; ETCDCTL_CACERT)')
    .option('--cert <file>', 'client certificate (ETCDCTL_CERT)')
    .option('--key <file>', 'client key (ETCDCTL_KEY)')
    .option('--user <user[:password]>', 'etcd user (ETCDCTL_USER)')
    .option('--password <password>', 'etcd password (ETCDCTL_PASSWORD)');
}

/** A store handle from a verb's options; closed by `withStore`. */
export function openStore(o: StoreFlags, context?: string): Store {
  return new Store({ ...o, context: o.context ?? context });
}

export async function withStore<T>(o: StoreFlags, f: (s: Store) => Promise<T>, context?: string): Promise<T> {
  const store = openStore(o, context);
  try {
    return await f(store);
  } finally {
    store.close();
  }
}

/** The committed model of the store, or exit 2 with its problems (located by key). */
export async function storeModelOrExit(store: Store): Promise<{ model: Netmodel; revision: number }> {
  await store.resolvePrefix();
  const r = await readModel(store);
  if (!r.model || hasErrors(r.problems)) {
    err(formatProblems(r.problems));
    err(`lsdn: the model under ${store.prefix} is invalid`);
    throw new Exit(2);
  }
  if (r.snapshot.keys.size === 0) throw new UsageError(`no model under ${store.prefix} (push one with \`lsdn push FILE --store ...\`)`);
  return { model: r.model, revision: r.snapshot.revision };
}

function printDiff(d: { put: [string, string][]; del: string[] }, current: Map<string, string>): void {
  for (const [k] of d.put) out(`${current.has(k) ? '~' : '+'} ${k}`);
  for (const k of d.del) out(`- ${k}`);
}

function reportWrite(r: WriteResult, what: string, dryRun = false): void {
  const n = r.diff.put.length + r.diff.del.length;
  if (dryRun) out(`${what}: would change ${n} key(s)`);
  else if (r.revision === undefined) out(`${what}: no change`);
  else out(`${what}: committed at revision ${r.revision} (generation ${r.generation}, ${n} key(s), ${r.txns} transaction(s)${r.attempts > 1 ? `, ${r.attempts} attempts` : ''})`);
}

/** A JSON object option (--fields '{"rules": [...]}'): the file form's other fields. */
function fieldsOption(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--fields: not JSON (${(e as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new UsageError('--fields: a JSON object of the file\'s fields');
  return v as Record<string, unknown>;
}

const num = (v: string) => {
  if (!/^\d+$/.test(v)) throw new UsageError(`"${v}" is not a number`);
  return Number(v);
};
const collect = (v: string, prev: string[] = []) => [...prev, v];

async function edit(o: StoreFlags & { dryRun?: boolean }, what: string, f: (file: FileForm) => FileForm): Promise<void> {
  await withStore(o, async (store) => {
    await store.resolvePrefix();
    const r = await writeModel(store, f, { dryRun: o.dryRun });
    for (const p of r.problems) err(formatProblems([p]));
    printDiff(r.diff, r.current);
    reportWrite(r, what, o.dryRun);
  });
}

export function registerStore(program: Command): void {
  storeOptions(
    program
      .command('push')
      .description('write a model file into the store (validated as a whole; one key per object; hosts see it all or nothing)')
      .argument('<file>', 'netmodel file')
      .option('--dry-run', 'print what would change; write nothing'),
  ).action(async (file: string, o: StoreFlags & { dryRun?: boolean }) => {
    const { model } = await loadOrExit(file);
    await withStore(o, async (store) => {
      const r = await writeModel(store, replaceWith(modelToFile(model)), { dryRun: o.dryRun });
      printDiff(r.diff, r.current);
      reportWrite(r, `push ${file} to ${store.prefix}`, o.dryRun);
    }, model.name);
  });

  storeOptions(
    program
      .command('pull')
      .description('print the model stored in the store (canonical form; pull then push changes nothing)')
      .option('--format <format>', 'yaml | json', 'yaml'),
  ).action(async (o: StoreFlags & { format: string }) => {
    const formats: Record<string, (m: Netmodel) => string> = { yaml: dumpYaml, json: dumpJson };
    const f = formats[o.format];
    if (!f) throw new UsageError(`unknown format "${o.format}" (use yaml, json)`);
    await withStore(o, async (store) => {
      const { model } = await storeModelOrExit(store);
      process.stdout.write(f(model));
    });
  });

  storeOptions(
    program
      .command('diff')
      .description('print the keys a push of the file would change (exit 0 none, 2 some)')
      .argument('<file>', 'netmodel file'),
  ).action(async (file: string, o: StoreFlags) => {
    const { model } = await loadOrExit(file);
    const changed = await withStore(o, async (store) => {
      const r = await readModel(store);
      const c = candidate(store.prefix, replaceWith(modelToFile(model))(modelToFile(r.model ?? model)));
      if (!c.keys) throw new ModelInvalidError(c.problems);
      const d = diffKeys(r.snapshot.keys, c.keys);
      printDiff(d, r.snapshot.keys);
      if (!d.put.length && !d.del.length) out(`${file}: the store under ${store.prefix} holds this model (revision ${r.snapshot.revision})`);
      return d.put.length + d.del.length > 0;
    }, model.name);
    if (changed) throw new Exit(2);
  });

  // ---- object verbs ----
  const verb = (parent: Command, name: string, description: string) =>
    storeOptions(parent.command(name).description(description)).option('--dry-run', 'print what would change; write nothing');

  const net = program.command('net').description('nets of the stored model (each verb one validated transaction)');
  verb(net, 'add', 'add a net')
    .argument('<name>')
    .option('--vid <n>', 'VLAN id / VNI', num)
    .option('--settings <name>', 'settings name')
    .option('--mtu <n>', 'MTU', num)
    .option('--ipv4 <subnet>', 'IPv4 subnet (addresses are allocated from it)')
    .option('--gateway <ip>', 'IPv4 gateway')
    .option('--pool <range>', 'IPv4 allocation pool (repeatable)', collect)
    .option('--ipv6 <subnet>', 'IPv6 subnet')
    .option('--attach <phys>', 'phys attached even without virts (repeatable)', collect)
    .option('--fields <json>', "any other of the file's net fields, as JSON")
    .action(async (name: string, o: StoreFlags & { dryRun?: boolean; vid?: number; settings?: string; mtu?: number; ipv4?: string; gateway?: string; pool?: string[]; ipv6?: string; attach?: string[]; fields?: string }) => {
      const ipv4 = o.ipv4 ? { subnet: o.ipv4, ...(o.gateway ? { gateway: o.gateway } : {}), ...(o.pool ? { pools: o.pool } : {}) } : undefined;
      const fields = { vid: o.vid, settings: o.settings, mtu: o.mtu, ipv4, ipv6: o.ipv6 ? { subnet: o.ipv6 } : undefined, physes: o.attach, ...fieldsOption(o.fields) };
      await edit(o, `net add ${name}`, (f) => addNet(f, name, fields));
    });
  verb(net, 'rm', 'remove a net (refused while it has virts or physes name it)')
    .argument('<name>')
    .action(async (name: string, o: StoreFlags & { dryRun?: boolean }) => edit(o, `net rm ${name}`, (f) => removeNet(f, name)));

  const phys = program.command('phys').description('physes of the stored model');
  verb(phys, 'add', 'add a phys')
    .argument('<name>')
    .option('--if <iface>', 'underlay interface')
    .option('--ip <ip>', 'underlay IP')
    .option('--mtu <n>', 'underlay MTU', num)
    .option('--net <net>', 'net attached even without virts (repeatable)', collect)
    .action(async (name: string, o: StoreFlags & { dryRun?: boolean; if?: string; ip?: string; mtu?: number; net?: string[] }) => {
      await edit(o, `phys add ${name}`, (f) => addPhys(f, name, { if: o.if, ip: o.ip, mtu: o.mtu, nets: o.net }));
    });
  verb(phys, 'rm', 'remove a phys (refused while virts or nets use it)')
    .argument('<name>')
    .action(async (name: string, o: StoreFlags & { dryRun?: boolean }) => edit(o, `phys rm ${name}`, (f) => removePhys(f, name)));

  const virt = program.command('virt').description('virts of the stored model');
  verb(virt, 'add', 'add a virt (an IPv4 address is allocated in the same transaction when its net has a pool and no --ip is given)')
    .argument('<net/virt>')
    .option('--phys <name>', 'phys it is connected to')
    .option('--if <iface>', 'host-side interface')
    .option('--mac <mac>', 'MAC address')
    .option('--ip <ip>', 'address with prefix length (repeatable)', collect)
    .option('--mtu <n>', 'MTU', num)
    .option('--tap', 'lsdn creates the interface as a tap')
    .option('--stateful', 'allow replies to connections the VM opened only')
    .option('--no-anti-spoof', 'no anti-spoofing')
    .option('--policy <action>', 'default action of both directions (accept | drop)')
    .option('--fields <json>', "any other of the file's virt fields (rules, rate, tap options...), as JSON")
    .action(async (id: string, o: StoreFlags & { dryRun?: boolean; phys?: string; if?: string; mac?: string; ip?: string[]; mtu?: number; tap?: boolean; stateful?: boolean; antiSpoof: boolean; policy?: string; fields?: string }) => {
      const fields = {
        phys: o.phys, if: o.if, mac: o.mac, ip: o.ip && (o.ip.length === 1 ? o.ip[0] : o.ip), mtu: o.mtu,
        tap: o.tap || undefined, stateful: o.stateful || undefined, antiSpoof: o.antiSpoof ? undefined : false, policy: o.policy,
        ...fieldsOption(o.fields),
      };
      await edit(o, `virt add ${id}`, (f) => addVirt(f, id, fields));
    });
  verb(virt, 'move', 'move a virt to another phys (and interface)')
    .argument('<net/virt>')
    .requiredOption('--phys <name>', 'the phys it moves to')
    .option('--if <iface>', 'its interface there')
    .action(async (id: string, o: StoreFlags & { dryRun?: boolean; phys: string; if?: string }) => {
      await edit(o, `virt move ${id}`, (f) => moveVirt(f, id, { phys: o.phys, ...(o.if !== undefined ? { if: o.if } : {}) }));
    });
  verb(virt, 'rm', 'remove a virt (and its recorded allocation)')
    .argument('<net/virt>')
    .action(async (id: string, o: StoreFlags & { dryRun?: boolean }) => edit(o, `virt rm ${id}`, (f) => removeVirt(f, id)));
}

export function registerWatch(program: Command): void {
  storeOptions(
    program
      .command('watch')
      .description('converge this host whenever its part of the stored model changes (level-triggered; resyncs periodically and after any reconnect; never tears down when the store is unreachable)')
      .option('--phys <name>', 'the local phys (default: as apply chooses)')
      .option('--netns <name>', 'work inside this network namespace')
      .option('--resync <seconds>', 'full apply (repairs local drift) at least this often', num)
      .option('--status-ttl <seconds>', 'lease TTL of this host\'s status key', num)
      .option('--metrics <host:port>', 'serve Prometheus metrics on http://HOST:PORT/metrics'),
  ).action(async (o: StoreFlags & { phys?: string; netns?: string; resync?: number; statusTtl?: number; metrics?: string }) => {
    requireRoot('watch');
    const store = openStore(o);
    const metrics = o.metrics ? await startMetrics(o.metrics) : undefined;
    const w = new HostWatcher(store, {
      phys: o.phys, netns: o.netns,
      ...(o.resync !== undefined ? { resyncMs: o.resync * 1000 } : {}),
      ...(o.statusTtl !== undefined ? { statusTtl: o.statusTtl } : {}),
      log: (l) => err(l),
      ...(metrics ? metrics.hooks : {}),
    });
    await w.start();
    err(`watch: watching ${store.url.hosts.join(',')}${store.prefix}${o.phys ? ` as phys ${o.phys}` : ''}${metrics ? `; metrics on http://${o.metrics}/metrics` : ''}`);
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        err(`watch: ${sig}: finishing the current apply`);
        void w.stop().then(resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    await metrics?.close();
    store.close();
  });

  const cluster = program.command('cluster').description('the cluster as the store sees it');
  storeOptions(cluster.command('status').description('one row per phys: revision applied vs current, age, result, alive (exit 0 every live host converged, 2 otherwise)').option('--json', 'machine-readable output'))
    .action(async (o: StoreFlags & { json?: boolean }) => {
      const c = await withStore(o, (s) => clusterStatus(s));
      out(o.json ? JSON.stringify(c, null, 2) : formatClusterStatus(c));
      if (!c.converged) throw new Exit(2);
    });
}
