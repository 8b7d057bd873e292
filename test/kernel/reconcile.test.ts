/**
 * The reconciler on real network namespaces (issue 3's acceptance list): apply builds a host
 * and then has nothing to do; drift made by hand is detected (library and `lsdn status`) and
 * repaired; model changes remove exactly what they should; destroy removes everything owned
 * and nothing else; partial failures are reported precisely and converge once fixed; the cost
 * of a one-virt change does not depend on the model's size; contexts and the lock keep
 * concurrent users apart.
 *
 * Every simulated host is a namespace created with testNamespaces (removed after the test,
 * whatever happens); its underlay interface is eth0, one end of a veth pair.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadModelText } from '../../src/file/load.js';
import { applyHost, destroyHost, planHost } from '../../src/apply/host.js';
import { compileHost, compileNet } from '../../src/compile/compile.js';
import { HostState, objectKey, type KernelObject } from '../../src/core/objects.js';
import { ownedIfname } from '../../src/core/names.js';
import { Kernel } from '../../src/kernel/exec.js';
import { readHostState } from '../../src/kernel/read/host.js';
import { formatReport } from '../../src/apply/format.js';
import { LOCK_DIR, acquireLock } from '../../src/kernel/lock.js';
import { LockBusyError } from '../../src/core/errors.js';
import type { Netmodel } from '../../src/model/netmodel.js';
import { isRoot, testNamespaces, type TestNamespaces } from '../helpers/netns.js';

const skip = !isRoot() ? 'needs root' : false;
const ROOT = new URL('../..', import.meta.url).pathname;
const CLUSTER = readFileSync(join(ROOT, 'examples/cluster.yaml'), 'utf8');

// ---- models ----------------------------------------------------------------------------------

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ModelDoc = any;

function load(doc: ModelDoc | string): Netmodel {
  const text = typeof doc === 'string' ? doc : JSON.stringify(doc);
  const { model, problems } = loadModelText(text, 'reconcile.yaml');
  assert.ok(model, JSON.stringify(problems));
  assert.deepEqual(problems.filter((p) => p.severity === 'error'), []);
  return model;
}

/** examples/cluster.yaml as a plain object, to be changed and loaded again. */
function clusterDoc(): ModelDoc {
  return parseYaml(CLUSTER);
}

const mac = (i: number) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

/** One net of `type` with `n` virts spread over physes a and b (even: a, odd: b); virt i has interface v<i>. */
function bigDoc(n: number, type = 'vxlan/static'): ModelDoc {
  const virts: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) virts[`vm${i}`] = { phys: i % 2 ? 'b' : 'a', if: `v${i}`, mac: mac(i) };
  return {
    name: 'big',
    settings: { default: { type } },
    physes: { a: { if: 'eth0', ip: '10.77.0.1' }, b: { if: 'eth0', ip: '10.77.0.2' } },
    nets: { big: { vid: 700, virts } },
  };
}

// ---- hosts -----------------------------------------------------------------------------------

interface Host {
  ns: string;
  phys: string;
}

/**
 * One namespace per phys, each with eth0 (the underlay: a veth whose peer eth0p stays in the
 * namespace) carrying the phys's address, and the given VM interfaces (veth pairs NAME/NAMEp).
 */
async function makeHosts<P extends string>(nss: TestNamespaces, physes: Record<P, { ip: string; ifs?: string[] }>): Promise<Record<P, Host>> {
  const out = {} as Record<P, Host>;
  for (const [phys, { ip, ifs = [] }] of Object.entries(physes) as [P, { ip: string; ifs?: string[] }][]) {
    const ns = await nss.add(phys);
    await new Kernel({ netns: ns }).batch('ip', [
      'link add eth0 type veth peer name eth0p',
      `addr add ${ip}/24 dev eth0`,
      'link set eth0 up',
      'link set eth0p up',
    ]);
    addIfs(ns, ifs);
    out[phys] = { ns, phys };
  }
  return out;
}

/** VM interfaces in bulk (this kernel has no dummy links: veth pairs NAME/NAMEp), one process. */
function addIfs(ns: string, names: string[]): void {
  if (names.length === 0) return;
  const r = spawnSync('ip', ['-n', ns, '-batch', '-'], { input: names.map((n) => `link add ${n} type veth peer name ${n}p`).join('\n') + '\n', encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

function sh(ns: string, command: string): string {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'sh', '-c', command], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`in ${ns}: ${command}: ${r.stderr}`);
  return r.stdout;
}

async function apply(model: Netmodel, h: Host, kernel = new Kernel({ netns: h.ns })) {
  return applyHost(model, { phys: h.phys, netns: h.ns, kernel });
}

async function plan(model: Netmodel, h: Host) {
  return planHost(model, { phys: h.phys, netns: h.ns });
}

/** Apply and check that the host then needs nothing. */
async function converge(model: Netmodel, h: Host, what: string): Promise<void> {
  const r = await apply(model, h);
  assert.ok(r.report.ok, `${what}: apply failed: ${JSON.stringify(r.report.results.filter((x) => x.status !== 'done'))}`);
  const again = await plan(model, h);
  assert.deepEqual(again.plan.steps, [], `${what}: plan after apply on ${h.phys}`);
}

async function owned(h: Host, context?: string): Promise<HostState> {
  return (await readHostState(new Kernel({ netns: h.ns }), context !== undefined ? { context } : {})).state;
}

const keysOf = (s: HostState | KernelObject[]) => new Set(s instanceof HostState ? s.objects.keys() : s.map(objectKey));
const sortedKeys = (s: Iterable<string>) => [...s].sort();
const minus = (a: Set<string>, b: Set<string>) => sortedKeys([...a].filter((k) => !b.has(k)));

/** Does `have` carry every field `want` names, with the same value (nested objects alike)? */
function covers(have: unknown, want: unknown): boolean {
  if (want === null || typeof want !== 'object') return have === want;
  if (have === null || typeof have !== 'object') return false;
  return Object.entries(want).every(([k, v]) => v === undefined || covers((have as Record<string, unknown>)[k], v));
}

/** The host's owned state is the compiled state: the same object keys, every desired field as desired. */
function assertStateIs(actual: HostState, desired: HostState, what: string): void {
  assert.deepEqual(sortedKeys(actual.objects.keys()), sortedKeys(desired.objects.keys()), `${what}: object keys`);
  for (const [k, want] of desired.objects) {
    assert.ok(covers(actual.get(k), want), `${what}: ${k}\n  actual  ${JSON.stringify(actual.get(k))}\n  desired ${JSON.stringify(want)}`);
  }
}

async function desiredOn(model: Netmodel, h: Host): Promise<HostState> {
  return (await plan(model, h)).desired;
}

// ---- raw kernel views ------------------------------------------------------------------------

interface RawFdb {
  mac: string;
  ifname?: string;
  dst?: string;
  master?: string;
  flags?: string[];
  state?: string;
}

function rawFdb(h: Host): RawFdb[] {
  return JSON.parse(sh(h.ns, 'bridge -j fdb show') || '[]') as RawFdb[];
}

/** `ip -j -d link show dev X`, minus the bridge's running timers (the only fields that move by themselves). */
function rawLink(h: Host, name: string): string {
  const [l] = JSON.parse(sh(h.ns, `ip -j -d link show dev ${name}`)) as Record<string, unknown>[];
  const strip = (o: unknown): unknown => {
    if (Array.isArray(o)) return o.map(strip);
    if (o === null || typeof o !== 'object') return o;
    return Object.fromEntries(Object.entries(o).filter(([k]) => !k.endsWith('_timer')).map(([k, v]) => [k, strip(v)]));
  };
  return JSON.stringify(strip(l));
}

/** Raw link and FDB text of foreign links, to compare byte for byte. */
function foreignSnapshot(h: Host, names: string[]): Record<string, { link: string; fdb: string }> {
  const fdb = rawFdb(h);
  return Object.fromEntries(names.map((n) => [n, {
    link: rawLink(h, n),
    fdb: JSON.stringify(fdb.filter((e) => e.ifname === n || e.master === n)),
  }]));
}

// ---- the CLI ---------------------------------------------------------------------------------

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    const s = statSync(p);
    t = Math.max(t, s.isDirectory() ? newestMtime(p) : s.mtimeMs);
  }
  return t;
}

/**
 * bin/lsdn runs dist/: build it when a source is newer (scripts/test.mjs builds it too). tsc
 * emits even on type errors (elsewhere in a shared checkout): only a missing output fails.
 */
function ensureBuilt(): void {
  const main = join(ROOT, 'dist/cli/main.js');
  if (existsSync(main) && statSync(main).mtimeMs >= newestMtime(join(ROOT, 'src'))) return;
  const started = Date.now();
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  assert.ok(existsSync(main) && statSync(main).mtimeMs >= started - 1000, `build failed: ${r.stdout}${r.stderr}`);
}

function lsdn(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(join(ROOT, 'bin/lsdn'), args, { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function modelFile(t: TestContext, doc: ModelDoc | string): string {
  const dir = mkdtempSync(join(tmpdir(), 'lsdn-reconcile-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'model.yaml');
  writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return file;
}

// ---- names of the cluster's objects ----------------------------------------------------------

const BR_A = ownedIfname('demo', 'b', 'tenant-a');
const VX_A = ownedIfname('demo', 'x', 'tenant-a');
const BR_B = ownedIfname('demo', 'b', 'tenant-b');
const VX_B = ownedIfname('demo', 'x', 'tenant-b');
const HV = { hv1: '192.168.50.1', hv2: '192.168.50.2', hv3: '192.168.50.3' } as const;
const CLUSTER_IFS = {
  hv1: ['a-web', 'a-batch', 'b-web'],
  hv2: ['a-db', 'b-api'],
  hv3: ['a-cache', 'b-worker'],
} as const;

async function clusterHosts(t: TestContext, tag: string, only: (keyof typeof HV)[] = ['hv1', 'hv2', 'hv3'], skipIfs: string[] = []) {
  const nss = await testNamespaces(t, tag);
  const spec: Record<string, { ip: string; ifs: string[] }> = {};
  for (const p of only) spec[p] = { ip: HV[p], ifs: CLUSTER_IFS[p].filter((i) => !skipIfs.includes(i)) };
  return { nss, hosts: await makeHosts(nss, spec) as Record<keyof typeof HV, Host> };
}

// ---------------------------------------------------------------------------------------------

describe('reconcile on real namespaces', { skip }, () => {
  it('1. builds an empty host exactly as compiled; a second apply has nothing to do', async (t) => {
    const { hosts } = await clusterHosts(t, 'build');
    const model = load(CLUSTER);
    for (const h of Object.values(hosts)) {
      const kernel = new Kernel({ netns: h.ns });
      const first = await apply(model, h, kernel);
      assert.ok(first.report.ok, JSON.stringify(first.report.results.filter((r) => r.status !== 'done')));
      assert.ok(first.report.operations > 0);
      // The compiled state, with the host's facts (the underlay's MTU), is what the kernel now has.
      const desired = compileHost(model, h.phys, { mtu: new Map([['eth0', 1500]]) });
      assertStateIs(await owned(h, 'demo'), desired, `${h.phys} after apply`);
      assertStateIs(await owned(h), desired, `${h.phys} after apply (every context)`);

      const before = { ...kernel.stats };
      const second = await apply(model, h, kernel);
      assert.deepEqual(second.plan.steps, [], `${h.phys}: second plan`);
      assert.equal(second.report.operations, 0);
      assert.equal(second.report.processes, 0);
      assert.equal(kernel.stats.operations - before.operations, 0, 'no mutating operation at all');
    }
  });

  it('2. drift made by hand is detected (plan and `lsdn status`) and repaired by the next apply', async (t) => {
    ensureBuilt();
    const { hosts } = await clusterHosts(t, 'drift', ['hv1']);
    const h = hosts.hv1;
    const model = load(CLUSTER);
    const file = modelFile(t, CLUSTER);
    await converge(model, h, 'initial');
    const status = () => lsdn(['status', file, '--netns', h.ns, '--phys', 'hv1']);
    const inSync = status();
    assert.equal(inSync.code, 0, inSync.stderr);
    assert.match(inSync.stdout, /in sync/);

    const vxBKeys = [...(await desiredOn(model, h)).objects.keys()].filter((k) => k.startsWith(`link ${VX_B}`) || k.startsWith(`fdb ${VX_B} `));
    const drifts: { what: string; cmd: string; keys: string[]; status: RegExp }[] = [
      { what: 'vxlan device deleted', cmd: `ip link del ${VX_B}`, keys: vxBKeys, status: new RegExp(`missing +link ${VX_B}`) },
      { what: 'port MTU changed', cmd: 'ip link set b-web mtu 1400', keys: ['port b-web'], status: /differs +port b-web: mtu 1400 -> 1450/ },
      { what: 'port set down', cmd: 'ip link set a-web down', keys: ['port a-web'], status: /differs +port a-web: up false -> true/ },
      { what: 'bridge set down', cmd: `ip link set ${BR_A} down`, keys: [`link ${BR_A}`], status: new RegExp(`differs +link ${BR_A}: up false -> true`) },
      { what: 'vxlan MTU changed', cmd: `ip link set ${VX_B} mtu 1300`, keys: [`link ${VX_B}`], status: new RegExp(`differs +link ${VX_B}: mtu 1300 -> 1450`) },
      {
        what: 'static FDB entry of a local VM removed', cmd: 'bridge fdb del 02:0b:00:00:00:01 dev b-web master',
        keys: ['fdb b-web 02:0b:00:00:00:01 master'], status: /missing +fdb b-web 02:0b:00:00:00:01 master/,
      },
      {
        what: 'static FDB entry of a remote VM removed', cmd: `bridge fdb del 02:0b:00:00:00:02 dev ${VX_B} master`,
        keys: [`fdb ${VX_B} 02:0b:00:00:00:02 master`], status: new RegExp(`missing +fdb ${VX_B} 02:0b:00:00:00:02 master`),
      },
      {
        what: 'VXLAN entry of a remote VM removed', cmd: `bridge fdb del 02:0b:00:00:00:03 dev ${VX_B} dst ${HV.hv3} self`,
        keys: [`fdb ${VX_B} 02:0b:00:00:00:03 dst ${HV.hv3}`], status: new RegExp(`missing +fdb ${VX_B} 02:0b:00:00:00:03 dst ${HV.hv3}`),
      },
      {
        what: 'remote-replication entry removed', cmd: `bridge fdb del 00:00:00:00:00:00 dev ${VX_A} dst ${HV.hv3} self`,
        keys: [`fdb ${VX_A} 00:00:00:00:00:00 dst ${HV.hv3}`], status: new RegExp(`missing +fdb ${VX_A} 00:00:00:00:00:00 dst ${HV.hv3}`),
      },
      { what: 'learning on a static port', cmd: 'bridge link set dev b-web learning on', keys: ['port b-web'], status: /differs +port b-web: learning -> off/ },
      { what: 'flooding on the static vxlan port', cmd: `bridge link set dev ${VX_B} flood on`, keys: [`link ${VX_B}`], status: new RegExp(`differs +link ${VX_B}: flood -> off`) },
      {
        what: 'VM port released from its bridge', cmd: 'ip link set b-web nomaster',
        keys: ['port b-web', 'fdb b-web 02:0b:00:00:00:01 master'], status: /missing +port b-web/,
      },
      {
        what: 'VM port moved to the other bridge', cmd: `ip link set b-web master ${BR_A}`,
        keys: ['port b-web', 'fdb b-web 02:0b:00:00:00:01 master'], status: new RegExp(`differs +port b-web: master ${BR_A} -> ${BR_B}`),
      },
      {
        what: 'alias changed', cmd: `ip link set ${BR_B} alias lsdn:demo:net:renamed`,
        keys: [`link ${BR_B}`], status: new RegExp(`differs +link ${BR_B}: alias lsdn:demo:net:renamed -> lsdn:demo:net:tenant-b`),
      },
      {
        what: 'a stray entry on an owned vxlan', cmd: `bridge fdb append 02:0b:00:00:00:99 dev ${VX_B} dst 192.168.50.9 self permanent`,
        keys: [`fdb ${VX_B} 02:0b:00:00:00:99 dst 192.168.50.9`], status: new RegExp(`not in the model +fdb ${VX_B} 02:0b:00:00:00:99`),
      },
      {
        what: 'a stray replication entry on an owned vxlan', cmd: `bridge fdb append 00:00:00:00:00:00 dev ${VX_A} dst 192.168.50.9 self permanent`,
        keys: [`fdb ${VX_A} 00:00:00:00:00:00 dst 192.168.50.9`], status: new RegExp(`not in the model +fdb ${VX_A} 00:00:00:00:00:00 dst 192.168.50.9`),
      },
    ];
    for (const d of drifts) {
      sh(h.ns, d.cmd);
      const hp = await plan(model, h);
      assert.deepEqual(sortedKeys(new Set(hp.plan.steps.map((s) => s.key))), sortedKeys(d.keys), `${d.what}: plan names exactly the drifted objects`);
      assert.ok(hp.plan.steps.every((s) => !s.blocked && s.commands.length > 0), `${d.what}: every step has commands`);
      const st = status();
      assert.equal(st.code, 2, `${d.what}: lsdn status exit code (${st.stderr})`);
      assert.match(st.stdout, d.status, `${d.what}: lsdn status names it`);
      await converge(model, h, d.what);
    }
    assertStateIs(await owned(h, 'demo'), await desiredOn(model, h), 'after every repair');
    assert.equal(status().code, 0, 'in sync after the repairs');
  });

  it('3. removing a virt or a net removes exactly its objects; a migrated virt moves its entries', async (t) => {
    const { hosts } = await clusterHosts(t, 'change');
    const { hv1, hv2, hv3 } = hosts;
    // tenant-b gets a second virt on hv1, so that removing one does not detach the net from hv1.
    let doc = clusterDoc();
    doc.nets['tenant-b'].virts.extra = { phys: 'hv1', if: 'b-extra', mac: '02:0b:00:00:00:09' };
    addIfs(hv1.ns, ['b-extra']);
    let model = load(doc);
    for (const h of [hv1, hv2, hv3]) await converge(model, h, `initial ${h.phys}`);

    // Remove tenant-b/extra (static, local to hv1): its port and entry on hv1, its entries elsewhere.
    const before = Object.fromEntries(await Promise.all([hv1, hv2, hv3].map(async (h) => [h.phys, keysOf(await owned(h))] as const)));
    delete doc.nets['tenant-b'].virts.extra;
    model = load(doc);
    for (const h of [hv1, hv2, hv3]) await converge(model, h, `virt removed, ${h.phys}`);
    const EXTRA = '02:0b:00:00:00:09';
    const expected: Record<string, string[]> = {
      hv1: [`fdb b-extra ${EXTRA} master`, 'port b-extra'],
      hv2: [`fdb ${VX_B} ${EXTRA} dst ${HV.hv1}`, `fdb ${VX_B} ${EXTRA} master`],
      hv3: [`fdb ${VX_B} ${EXTRA} dst ${HV.hv1}`, `fdb ${VX_B} ${EXTRA} master`],
    };
    for (const h of [hv1, hv2, hv3]) {
      const after = keysOf(await owned(h));
      assert.deepEqual(minus(before[h.phys]!, after), expected[h.phys], `${h.phys}: removed objects are the virt's`);
      assert.deepEqual(minus(after, before[h.phys]!), []);
    }
    const released = JSON.parse(sh(hv1.ns, 'ip -j link show dev b-extra'))[0] as { master?: string };
    assert.equal(released.master, undefined, 'the VM interface is released, not deleted');

    // Remove tenant-b/web, its last virt on hv1: the net leaves hv1 altogether.
    const netB = model.net('tenant-b');
    assert.ok(netB);
    const netBOnHv1 = sortedKeys(keysOf(compileNet(model, netB, model.phys('hv1')!)));
    const beforeWeb = keysOf(await owned(hv1));
    delete doc.nets['tenant-b'].virts.web;
    model = load(doc);
    for (const h of [hv1, hv2, hv3]) await converge(model, h, `last virt removed, ${h.phys}`);
    assert.deepEqual(minus(beforeWeb, keysOf(await owned(hv1))), netBOnHv1);

    // Remove tenant-a: exactly its objects go, on every host.
    const netA = model.net('tenant-a');
    assert.ok(netA);
    const beforeNet = Object.fromEntries(await Promise.all([hv1, hv2, hv3].map(async (h) => [h.phys, keysOf(await owned(h))] as const)));
    const netObjects = Object.fromEntries([hv1, hv2, hv3].map((h) => [h.phys, sortedKeys(keysOf(compileNet(model, netA, model.phys(h.phys)!)))]));
    delete doc.nets['tenant-a'];
    model = load(doc);
    for (const h of [hv1, hv2, hv3]) {
      await converge(model, h, `net removed, ${h.phys}`);
      const after = keysOf(await owned(h));
      assert.ok(netObjects[h.phys]!.length >= 3);
      // The firewall table is the host's, not the net's: it goes with the last filtered virt.
      const removed = minus(beforeNet[h.phys]!, after).filter((k) => !k.startsWith('nft '));
      assert.deepEqual(removed, netObjects[h.phys], `${h.phys}: removed objects are tenant-a's`);
      assert.deepEqual(minus(after, beforeNet[h.phys]!), []);
      assert.ok(![...after].some((k) => k.includes(BR_A) || k.includes(VX_A)));
    }

    // Migration of tenant-b/api (static) from hv2 to hv1: the VM's interface appears on hv1
    // and leaves hv2. tenant-b stays attached to every phys (else it would leave hv2 with api).
    doc = clusterDoc();
    doc.nets['tenant-b'].physes = ['hv1', 'hv2', 'hv3'];
    model = load(doc);
    for (const h of [hv1, hv2, hv3]) await converge(model, h, `cluster again, ${h.phys}`);
    const API = '02:0b:00:00:00:02';
    const entries = (h: Host) => rawFdb(h).filter((e) => e.mac === API);
    const onLocalPort = (e: RawFdb) => e.master === BR_B && e.ifname !== VX_B;
    assert.ok(entries(hv2).some(onLocalPort), 'before: hv2 has api on its local port');
    assert.ok(entries(hv1).some((e) => e.ifname === VX_B && e.dst === HV.hv2));
    addIfs(hv1.ns, ['b-api']);
    sh(hv2.ns, 'ip link del b-api');
    doc.nets['tenant-b'].virts.api.phys = 'hv1';
    model = load(doc);
    for (const h of [hv1, hv2, hv3]) await converge(model, h, `api migrated, ${h.phys}`);
    const e1 = entries(hv1);
    const e2 = entries(hv2);
    const e3 = entries(hv3);
    assert.ok(e1.some((e) => e.ifname === 'b-api' && e.master === BR_B && e.state === 'static'), `new host: entry on its local port ${JSON.stringify(e1)}`);
    assert.ok(!e1.some((e) => e.ifname === VX_B), `new host: no entry toward the tunnel ${JSON.stringify(e1)}`);
    assert.ok(!e2.some(onLocalPort), `old host: no entry on a local port ${JSON.stringify(e2)}`);
    assert.ok(e2.some((e) => e.ifname === VX_B && e.master === BR_B && e.state === "static"), `old host: bridge entry toward the tunnel ${JSON.stringify(e2)}`);
    assert.ok(e2.some((e) => e.ifname === VX_B && e.dst === HV.hv1), 'old host: tunnel entry toward the new host');
    assert.ok(e3.some((e) => e.ifname === VX_B && e.dst === HV.hv1) && !e3.some((e) => e.dst === HV.hv2), `third host: entry moved ${JSON.stringify(e3)}`);
    for (const h of [hv1, hv2, hv3]) assertStateIs(await owned(h), compileHost(model, h.phys, { mtu: new Map([['eth0', 1500]]) }), `after migration, ${h.phys}`);
  });

  it('4. destroy removes everything owned and never touches a foreign object', async (t) => {
    const { hosts } = await clusterHosts(t, 'destroy', ['hv1']);
    const h = hosts.hv1;
    // Foreign objects next to the owned ones: a bridge with a port and static entries; a VXLAN
    // with head-end (all-zero) and MAC entries; an `ls`-prefixed bridge without alias (with a
    // port) and one with a foreign alias; a link with an lsdn alias but not the prefix; a veth.
    sh(h.ns, [
      'ip link add brf type bridge',
      'ip link add fp1 type veth peer name fp1p',
      'ip link set fp1 master brf up',
      'bridge fdb add 52:54:00:00:0f:01 dev fp1 master static',
      'ip link set brf up',
      'ip link add vxf type vxlan id 4242 local 192.168.50.1 dev eth0 dstport 4789 nolearning',
      'bridge fdb append 00:00:00:00:00:00 dev vxf dst 192.168.50.7 self permanent',
      'bridge fdb append 00:00:00:00:00:00 dev vxf dst 192.168.50.8 self permanent',
      'bridge fdb add 52:54:00:00:0f:02 dev vxf dst 192.168.50.7 self permanent',
      'ip link set vxf up',
      `ip link add lsb-f0f0f0f0 type bridge`,
      'ip link add fp2 type veth peer name fp2p',
      'ip link set fp2 master lsb-f0f0f0f0',
      'bridge fdb add 52:54:00:00:0f:03 dev fp2 master static',
      'ip link add lsx-f0f0f0f0 type vxlan id 4243 local 192.168.50.1 dev eth0 dstport 4789 nolearning',
      'bridge fdb append 00:00:00:00:00:00 dev lsx-f0f0f0f0 dst 192.168.50.9 self permanent',
      'ip link set lsx-f0f0f0f0 alias not-lsdn',
      'ip link add brx type bridge',
      'ip link set brx alias lsdn:demo:net:tenant-a',
      'ip link add fv0 type veth peer name fv0p',
      'ip link set fv0 mtu 1400 up',
    ].join(' && '));
    const foreign = ['brf', 'fp1', 'fp1p', 'vxf', 'lsb-f0f0f0f0', 'fp2', 'fp2p', 'lsx-f0f0f0f0', 'brx', 'fv0', 'fv0p', 'eth0', 'eth0p'];
    const snapshot = foreignSnapshot(h, foreign);
    assert.match(snapshot.vxf!.fdb, /00:00:00:00:00:00/);

    const model = load(CLUSTER);
    await converge(model, h, 'apply next to foreign objects');
    assert.deepEqual(foreignSnapshot(h, foreign), snapshot, 'apply left every foreign object as it was');
    assert.ok((await owned(h)).size > 10);

    const d = await destroyHost({ netns: h.ns });
    assert.ok(d.report.ok, JSON.stringify(d.report.results.filter((r) => r.status !== 'done')));
    assert.equal((await owned(h)).size, 0, 'nothing owned is left');
    const links = JSON.parse(sh(h.ns, 'ip -j link show')) as { ifname: string; master?: string }[];
    assert.deepEqual(links.filter((l) => /^ls[bx]-/.test(l.ifname) && !l.ifname.endsWith('f0f0f0f0')).map((l) => l.ifname), []);
    assert.deepEqual(foreignSnapshot(h, foreign), snapshot, 'destroy left every foreign object (and its FDB) byte for byte');
    for (const vm of CLUSTER_IFS.hv1) assert.equal(links.find((l) => l.ifname === vm)?.master, undefined, `${vm} is still there, released`);
    for (const vm of CLUSTER_IFS.hv1) assert.ok(links.some((l) => l.ifname === vm));
    const again = await destroyHost({ netns: h.ns });
    assert.equal(again.plan.steps.length, 0, 'a second destroy has nothing to do');
  });

  it('5. a failed apply reports precisely, and the next apply converges once the cause is fixed', async (t) => {
    // A VM interface missing (the VM is not running): only its steps wait for it, and the
    // apply succeeds (the VM's hook wires it when it starts).
    const { hosts } = await clusterHosts(t, 'fail', ['hv1'], ['b-web']);
    const h = hosts.hv1;
    const model = load(CLUSTER);
    const r = await apply(model, h);
    assert.equal(r.report.ok, true);
    const notDone = r.report.results.filter((x) => x.status !== 'done');
    assert.deepEqual(sortedKeys(notDone.map((x) => x.step.key)), ['fdb b-web 02:0b:00:00:00:01 master', 'port b-web']);
    for (const x of notDone) {
      assert.equal(x.status, 'waiting');
      assert.equal(x.step.waits, 'b-web');
      assert.match(x.error ?? '', /interface b-web does not exist on this host/);
    }
    assert.ok(r.report.results.length > notDone.length + 10);
    assert.ok(r.problems.some((p) => p.code === 'interface-missing' && p.message.includes('b-web')));
    assert.deepEqual(sortedKeys((await plan(model, h)).plan.steps.map((s) => s.key)), ['fdb b-web 02:0b:00:00:00:01 master', 'port b-web']);
    ensureBuilt();
    const st = lsdn(['status', modelFile(t, CLUSTER), '--netns', h.ns, '--phys', 'hv1']);
    assert.equal(st.code, 2, st.stderr);
    assert.match(st.stdout, /missing +port b-web: interface b-web does not exist on this host/);
    addIfs(h.ns, ['b-web']);
    await converge(model, h, 'after creating b-web');

    // The kernel refuses an operation: the VM's interface is a bridge (cannot be enslaved).
    await destroyHost({ netns: h.ns });
    sh(h.ns, 'ip link del b-web && ip link add b-web type bridge');
    const refused = await apply(model, h);
    assert.equal(refused.report.ok, false);
    for (const l of formatReport(refused.report, 'apply with b-web a bridge').split('\n')) t.diagnostic(l);
    const failed = refused.report.results.filter((x) => x.status !== 'done');
    assert.ok(failed.length >= 1 && failed.every((x) => x.status === 'failed' && x.step.key.includes('b-web')), JSON.stringify(failed));
    const attach = failed.find((x) => x.step.key === 'port b-web');
    assert.ok(attach?.error && attach.failedLine?.includes('b-web'), JSON.stringify(attach));
    assert.ok(refused.report.results.filter((x) => x.status === 'done').length > 10);
    sh(h.ns, 'ip link del b-web');
    addIfs(h.ns, ['b-web']);
    await converge(model, h, 'after replacing b-web');

    // A foreign link holds the exact name of an owned VXLAN device (no lsdn alias): its step and
    // every step that would program it are blocked, the foreign link is left alone, the rest is done.
    await destroyHost({ netns: h.ns });
    sh(h.ns, [
      `ip link add ${VX_B} type vxlan id 999 local 192.168.50.1 dev eth0 dstport 4790 nolearning`,
      `bridge fdb append 00:00:00:00:00:00 dev ${VX_B} dst 192.168.50.77 self permanent`,
    ].join(' && '));
    const foreignBefore = foreignSnapshot(h, [VX_B]);
    const conflict = await apply(model, h);
    assert.equal(conflict.report.ok, false);
    for (const l of formatReport(conflict.report, `apply with a foreign ${VX_B}`).split('\n')) t.diagnostic(l);
    const blocked = conflict.report.results.filter((x) => x.status !== 'done');
    assert.ok(blocked.every((x) => x.status === 'blocked'), JSON.stringify(blocked));
    const own = blocked.find((x) => x.step.key === `link ${VX_B}`);
    assert.match(own?.error ?? '', new RegExp(`interface ${VX_B} exists but is not marked as lsdn's \\(alias "lsdn:demo:net:tenant-b:vxlan" missing\\)`));
    const desired = (await plan(model, h)).desired;
    const onVx = sortedKeys([...desired.objects.keys()].filter((k) => k.startsWith(`fdb ${VX_B} `) || k === `link ${VX_B}`));
    assert.deepEqual(sortedKeys(blocked.map((x) => x.step.key)), onVx, 'exactly the device and what would be programmed on it');
    for (const x of blocked) if (x !== own) assert.match(x.error ?? '', new RegExp(`interface ${VX_B} exists but is not lsdn's`));
    assert.deepEqual(foreignSnapshot(h, [VX_B]), foreignBefore, 'the foreign link and its FDB are untouched');
    sh(h.ns, `ip link del ${VX_B}`);
    await converge(model, h, 'after removing the foreign link');

    // A foreign bridge with the name of an owned bridge: nothing is enslaved to it.
    await destroyHost({ netns: h.ns });
    sh(h.ns, `ip link add ${BR_A} type bridge`);
    const brBefore = foreignSnapshot(h, [BR_A]);
    const conflict2 = await apply(model, h);
    const blocked2 = conflict2.report.results.filter((x) => x.status !== 'done');
    assert.deepEqual(sortedKeys(blocked2.map((x) => x.step.key)), sortedKeys([...desired.objects.keys()].filter((k) => k.includes(BR_A) || k.includes(VX_A) || k === 'port a-web' || k === 'port a-batch')));
    assert.ok(blocked2.every((x) => x.status === 'blocked'));
    assert.deepEqual(foreignSnapshot(h, [BR_A]), brBefore);
    const ports = JSON.parse(sh(h.ns, 'ip -j link show')) as { ifname: string; master?: string }[];
    assert.deepEqual(ports.filter((l) => l.master === BR_A), [], 'nothing enslaved to the foreign bridge');
    sh(h.ns, `ip link del ${BR_A}`);
    await converge(model, h, 'after removing the foreign bridge');
  });

  it('6. a one-virt change costs the same kernel operations and processes at 10 and 200 virts', async (t) => {
    const measured: Record<number, Record<string, [number, number]>> = {};
    for (const n of [10, 200]) {
      const nss = await testNamespaces(t, `scale${n}`);
      const idx = (phys: string) => Array.from({ length: n }, (_, i) => i).filter((i) => (i % 2 ? 'b' : 'a') === phys);
      const hosts = await makeHosts(nss, {
        // a also gets the interfaces of the virt to add (vnew) and of the virt to move there (v1).
        a: { ip: '10.77.0.1', ifs: [...idx('a').map((i) => `v${i}`), 'vnew', 'v1'] },
        b: { ip: '10.77.0.2', ifs: idx('b').map((i) => `v${i}`) },
      });
      const doc = bigDoc(n);
      let model = load(doc);
      const t0 = Date.now();
      for (const h of Object.values(hosts)) {
        const r = await apply(model, h);
        assert.ok(r.report.ok, JSON.stringify(r.report.results.filter((x) => x.status !== 'done')));
      }
      t.diagnostic(`${n} virts: first apply of both hosts ${Date.now() - t0} ms`);
      const m: Record<string, [number, number]> = {};
      const step = async (what: string) => {
        model = load(doc);
        for (const h of Object.values(hosts)) {
          const kernel = new Kernel({ netns: h.ns });
          const t1 = Date.now();
          const r = await apply(model, h, kernel);
          const ms = Date.now() - t1;
          assert.ok(r.report.ok, `${what} on ${h.phys}: ${JSON.stringify(r.report.results.filter((x) => x.status !== 'done'))}`);
          m[`${what} on ${h.phys}`] = [r.report.operations, kernel.stats.processes];
          t.diagnostic(`${n} virts: ${what} on ${h.phys}: ${r.report.operations} operations, ${kernel.stats.processes} processes (${r.report.processes} for the changes), ${ms} ms`);
          assert.deepEqual((await plan(model, h)).plan.steps, [], `${what} on ${h.phys}: converged`);
        }
      };
      doc.nets.big.virts.vnew = { phys: 'a', if: 'vnew', mac: '02:00:00:00:fe:01' };
      await step('add a virt');
      doc.nets.big.virts.vm1.phys = 'a';
      await step('move a virt');
      delete doc.nets.big.virts.vm2;
      await step('remove a virt');
      measured[n] = m;
      nss.cleanup();
    }
    assert.deepEqual(measured[200], measured[10], 'operations and processes do not depend on the model size');
    for (const [what, [ops, procs]] of Object.entries(measured[10]!)) {
      // Links and entries (at most 6) plus, on the virt's host, its firewall chain and the
      // dispatch chains (prerouting and postrouting, which carry the ports' MSS clamp) replaced
      // (flush + refill): one nft transaction.
      assert.ok(ops > 0 && ops <= 10, `${what}: ${ops} operations`);
      assert.ok(procs <= 8, `${what}: ${procs} processes`);
    }
  });

  it('7. two contexts in one namespace never touch each other; destroy --context removes one', async (t) => {
    ensureBuilt();
    const nss = await testNamespaces(t, 'ctx');
    const { a: h } = await makeHosts(nss, { a: { ip: '10.78.0.1', ifs: ['va1', 'va2', 'vb1', 'vb2'] } });
    const ctxDoc = (name: string, vid: number, ifs: string[]) => ({
      name,
      settings: { default: { type: 'vxlan/static' } },
      physes: { a: { if: 'eth0', ip: '10.78.0.1' }, b: { if: 'eth0', ip: '10.78.0.2' } },
      nets: {
        n: {
          vid,
          virts: {
            x: { phys: 'a', if: ifs[0], mac: `02:${vid.toString(16).padStart(2, '0')}:00:00:00:01` },
            y: { phys: 'a', if: ifs[1], mac: `02:${vid.toString(16).padStart(2, '0')}:00:00:00:02` },
            z: { phys: 'b', if: 'remote', mac: `02:${vid.toString(16).padStart(2, '0')}:00:00:00:03` },
          },
        },
      },
    });
    const alpha = load(ctxDoc('alpha', 11, ['va1', 'va2']));
    const beta = load(ctxDoc('beta', 12, ['vb1', 'vb2']));
    await converge(alpha, h, 'alpha');
    const alphaState = await owned(h, 'alpha');
    await converge(beta, h, 'beta');
    assert.deepEqual((await plan(alpha, h)).plan.steps, [], 'beta left alpha alone');
    assertStateIs(await owned(h, 'alpha'), alphaState, 'alpha unchanged');
    const betaState = await owned(h, 'beta');
    assertStateIs(betaState, await desiredOn(beta, h), 'beta built');
    assert.equal((await owned(h)).size, alphaState.size + betaState.size, 'both, and nothing else, are owned');

    // Drift in beta is invisible to alpha's plan; alpha's apply does not repair (touch) it.
    sh(h.ns, 'ip link set vb1 nomaster');
    assert.deepEqual((await plan(alpha, h)).plan.steps, []);
    await converge(alpha, h, 'alpha again');
    assert.deepEqual(sortedKeys(new Set((await plan(beta, h)).plan.steps.map((s) => s.key))), ['fdb vb1 02:0c:00:00:00:01 master', 'port vb1']);
    await converge(beta, h, 'beta repaired');

    const d = lsdn(['destroy', '--context', 'alpha', '--netns', h.ns]);
    assert.equal(d.code, 0, d.stdout + d.stderr);
    assert.equal((await owned(h, 'alpha')).size, 0, 'alpha is gone');
    assertStateIs(await owned(h, 'beta'), betaState, 'beta is intact');
    assert.deepEqual((await plan(beta, h)).plan.steps, []);
    const links = JSON.parse(sh(h.ns, 'ip -j link show')) as { ifname: string; master?: string }[];
    assert.equal(links.find((l) => l.ifname === 'va1')?.master, undefined);
    assert.equal(links.find((l) => l.ifname === 'vb1')?.master, ownedIfname('beta', 'b', 'n'));
    await destroyHost({ netns: h.ns, context: 'beta' });
    assert.equal((await owned(h)).size, 0);
  });

  it('8. one apply at a time per namespace; a stale lock is taken over', async (t) => {
    const nss = await testNamespaces(t, 'lock');
    const { a: h } = await makeHosts(nss, { a: { ip: '10.79.0.1', ifs: ['v0'] } });
    const model = load(bigDoc(1));
    // applyHost takes the lock before its first await: while it runs, its scope is busy. The
    // scope's name is the host module's business: find it as the lock file that appears.
    const before = new Set(existsSync(LOCK_DIR) ? readdirSync(LOCK_DIR) : []);
    const running = apply(model, h);
    const appeared = readdirSync(LOCK_DIR).filter((f) => !before.has(f) && f.endsWith('.lock'));
    assert.equal(appeared.length, 1, `one lock file appears in ${LOCK_DIR}: ${appeared.join(', ')}`);
    const lockFile = join(LOCK_DIR, appeared[0]!);
    const scope = appeared[0]!.slice(0, -'.lock'.length);
    t.after(() => rmSync(lockFile, { force: true }));
    assert.equal(readFileSync(lockFile, 'utf8'), String(process.pid));
    assert.throws(() => acquireLock(scope), (e: unknown) => e instanceof LockBusyError && e.pid === process.pid && e.path === lockFile);
    await assert.rejects(apply(model, h), LockBusyError, 'a second apply of the same namespace is refused');
    await assert.rejects(destroyHost({ netns: h.ns }), LockBusyError, 'and so is a destroy');
    const otherScope = acquireLock(`${scope}-other`);
    otherScope(); // another namespace's lock is independent
    const r = await running;
    assert.ok(r.report.ok);
    assert.equal(existsSync(lockFile), false, 'released after the apply');

    // A lock left by a dead process is taken over.
    const dead = spawn(process.execPath, ['-e', '0']);
    const deadPid = dead.pid;
    await new Promise((resolve) => dead.on('exit', resolve));
    assert.ok(deadPid);
    writeFileSync(lockFile, String(deadPid));
    const release = acquireLock(scope);
    assert.equal(readFileSync(lockFile, 'utf8'), String(process.pid));
    release();
    assert.equal(existsSync(lockFile), false);
    writeFileSync(lockFile, String(deadPid));
    await converge(model, h, 'apply over a stale lock');
    assert.equal(existsSync(lockFile), false);

    // A live foreign holder blocks the CLI as well (exit 1, the holder's pid named).
    ensureBuilt();
    const holder = spawn('sleep', ['30']);
    t.after(() => holder.kill());
    writeFileSync(lockFile, String(holder.pid));
    const file = modelFile(t, bigDoc(1));
    const cli = lsdn(['apply', file, '--netns', h.ns, '--phys', 'a']);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, new RegExp(`another lsdn \\(pid ${holder.pid}\\) is changing this host`));
    holder.kill();
    rmSync(lockFile, { force: true });
  });
});
