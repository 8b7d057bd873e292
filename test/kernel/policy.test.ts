/**
 * Security policy per virt with real traffic (issue 6): firewall rules of every kind, a
 * default-drop policy, stateful inbound filtering, anti-spoofing and rate limits, applied by
 * lsdn's own apply on simulated hosts (the lab), then probed with pings, TCP connections, UDP
 * echoes and iperf3 from the virts' namespaces. Also: a second apply is empty, and changing
 * one rule replaces only its virt's chain.
 *
 * One lab for the whole file: hosts a and b on vxlan/e2e, the filtered virts on a, clients on
 * both. TCP/UDP probes are small Node scripts run inside the namespaces (Node is what runs
 * the tests, so nothing more needs installing); iperf3 comes with scripts/setup.sh.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { Kernel } from '../../src/kernel/exec.js';
import type { Netmodel } from '../../src/model/netmodel.js';
import { labDown, labUp } from '../../src/lab/lab.js';
import type { LabLayout } from '../../src/lab/layout.js';
import { applyInLab } from '../../src/lab/apply.js';
import { applyHost, planHost } from '../../src/apply/host.js';
import { formatPlan } from '../../src/apply/format.js';
import { nftTableName, virtChainName } from '../../src/core/names.js';
import { deleteNamespacesWithPrefix, ensureNeighbourTableRoom, isRoot, uniquePrefix } from '../helpers/netns.js';
import { pingMany } from '../helpers/typelab.js';
import { loadValid } from '../helpers/model.js';

const skip = isRoot() ? false : 'needs root';
const CONTEXT = 'pol';

/** The model: `rules` of t-virts are what each test probes. */
function modelText(ttRule = 'dstPort: 8000-8001'): string {
  return `
name: ${CONTEXT}
settings: { default: { type: vxlan/e2e } }
physes:
  a: { if: eth0, ip: 172.16.0.1 }
  b: { if: eth0, ip: 172.16.0.2 }
nets:
  n:
    vid: 6
    mtu: 1400
    virts:
      c1: { phys: b, if: vc1, mac: 02:00:00:00:01:01, ip: [10.0.0.11/24, fd10::11/64] }
      c2: { phys: b, if: vc2, mac: 02:00:00:00:01:02, ip: 10.0.0.12/24 }
      c3: { phys: a, if: vc3, mac: 02:00:00:00:02:03, ip: 10.0.0.13/24 }
      tp: { phys: a, if: vtp, mac: 02:00:00:00:03:01, ip: 10.0.0.1/24,
            rules: [ { dir: in, priority: 1, action: drop, srcIp: 10.0.0.12/30 } ] }
      td: { phys: a, if: vtd, mac: 02:00:00:00:03:02, ip: 10.0.0.2/24,
            rules: [ { dir: out, priority: 1, action: drop, dstIp: 10.0.0.11 } ] }
      tm: { phys: a, if: vtm, mac: 02:00:00:00:03:03, ip: 10.0.0.3/24,
            rules: [ { dir: in, priority: 1, action: drop, srcMac: "02:00:00:00:01:00/ff:ff:ff:ff:ff:00" } ] }
      tt: { phys: a, if: vtt, mac: 02:00:00:00:03:04, ip: 10.0.0.4/24,
            rules: [ { dir: in, priority: 5, action: drop, proto: tcp, ${ttRule} } ] }
      ti: { phys: a, if: vti, mac: 02:00:00:00:03:05, ip: 10.0.0.5/24,
            rules: [ { dir: in, priority: 1, action: drop, proto: icmp, icmpType: echo-request } ] }
      tx: { phys: a, if: vtx, mac: 02:00:00:00:03:06, ip: 10.0.0.6/24, policy: { in: drop },
            rules: [ { dir: in, priority: 10, action: accept, proto: tcp, dstPort: 8000 } ] }
      ts: { phys: a, if: vts, mac: 02:00:00:00:03:07, ip: [10.0.0.7/24, fd10::7/64], stateful: true }
      sp: { phys: a, if: vsp, mac: 02:00:00:00:03:08, ip: [10.0.0.8/24, fd10::8/64] }
      rt: { phys: a, if: vrt, mac: 02:00:00:00:03:09, ip: 10.0.0.9/24,
            rate: { in: { avg: 20mbit, burst: 32kb }, out: { avg: 20mbit, burst: 32kb } } }
`;
}

function load(text: string): Netmodel {
  return loadValid(text, 'policy.yaml');
}

/** Listens on TCP 8000-8002 (answers and closes) and echoes UDP 8000, IPv4 and IPv6 (dual-stack sockets). */
const SERVER = `
const net = require('net'), dgram = require('dgram');
for (const p of [8000, 8001, 8002]) net.createServer((s) => { s.on('error', () => undefined); s.end('ok'); }).listen(p, '::');
const u = dgram.createSocket('udp6'); u.on('message', (m, r) => u.send(m, r.port, r.address)); u.bind(8000);
setTimeout(() => console.log('ready'), 100);
`;

/** argv[1]: JSON [[proto, host, port]...]; prints JSON [answered...]. A dropped probe times out. */
const CLIENT = `
const net = require('net'), dgram = require('dgram');
const T = 1500;
Promise.all(JSON.parse(process.argv[1]).map(([proto, host, port]) => new Promise((res) => {
  const done = (ok, close) => { clearTimeout(timer); close(); res(ok); };
  let timer;
  if (proto === 'tcp') {
    const s = net.connect({ host, port });
    timer = setTimeout(() => done(false, () => s.destroy()), T);
    s.on('connect', () => done(true, () => s.destroy()));
    s.on('error', () => done(false, () => undefined));
  } else {
    const u = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    timer = setTimeout(() => done(false, () => u.close()), T);
    u.on('message', () => done(true, () => u.close()));
    u.send('x', port, host);
  }
}))).then((r) => console.log(JSON.stringify(r)));
`;

interface Probe {
  from: string;
  to: string;
  kind: 'ping' | 'tcp' | 'udp';
  port?: number;
  expect: boolean;
}

describe('security policy with real traffic', { skip, concurrency: 1 }, () => {
  let model: Netmodel;
  let layout: LabLayout;
  let prefix: string;
  const servers: ChildProcess[] = [];
  const ns = (virt: string) => layout.virtNs.get(`n/${virt}`) as string;
  const ip4 = (virt: string) => (layout.virtIps.get(`n/${virt}`) as string[])[0]!.split('/')[0] as string;
  const sh = (netns: string, cmd: string) => spawnSync('ip', ['netns', 'exec', netns, 'sh', '-c', cmd], { encoding: 'utf8' });

  before(async () => {
    ensureNeighbourTableRoom();
    model = load(modelText());
    prefix = uniquePrefix('pol');
    layout = await labUp(model, { prefix, apply: (phys, netns) => applyInLab(model, phys, netns) });
    const ready: Promise<void>[] = [];
    for (const v of ['tp', 'tt', 'ti', 'tx', 'ts', 'c1', 'c3']) {
      const p = spawn('ip', ['netns', 'exec', ns(v), process.execPath, '-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
      servers.push(p);
      ready.push(new Promise((res, rej) => {
        p.stdout?.once('data', () => res());
        p.once('exit', (code) => rej(new Error(`probe server in ${v} exited (${code})`)));
      }));
    }
    await Promise.all(ready);
  });

  after(async () => {
    for (const p of servers) if (p.exitCode === null) p.kill();
    try {
      if (prefix) await labDown(prefix);
    } finally {
      if (prefix) deleteNamespacesWithPrefix(`${prefix}-`);
    }
  });

  /** Run every probe (sources in parallel); fail with the full list of unexpected results. */
  async function probe(probes: Probe[]): Promise<void> {
    const bySource = new Map<string, Probe[]>();
    for (const p of probes) bySource.set(p.from, [...(bySource.get(p.from) ?? []), p]);
    const got = new Map<Probe, boolean>();
    await Promise.all([...bySource].map(async ([from, list]) => {
      const pings = list.filter((p) => p.kind === 'ping');
      const conns = list.filter((p) => p.kind !== 'ping');
      await Promise.all([
        (async () => {
          if (!pings.length) return;
          const r = await pingMany(ns(from), [...new Set(pings.map((p) => p.to))], 2);
          for (const p of pings) got.set(p, r.get(p.to) === true);
        })(),
        (async () => {
          if (!conns.length) return;
          const arg = JSON.stringify(conns.map((p) => [p.kind, p.to, p.port ?? 8000]));
          const { stdout } = await new Kernel({ netns: ns(from) }).run(process.execPath, ['-e', CLIENT, arg]);
          (JSON.parse(stdout) as boolean[]).forEach((ok, i) => got.set(conns[i]!, ok));
        })(),
      ]);
    }));
    const wrong = probes.filter((p) => got.get(p) !== p.expect);
    const fmt = (p: Probe) => `${p.from} -> ${p.to} ${p.kind}${p.port ? ` ${p.port}` : ''}: expected ${p.expect ? 'pass' : 'drop'}, got ${got.get(p) ? 'pass' : 'drop'}`;
    assert.deepEqual(wrong.map(fmt), [], `unexpected results:\n${wrong.map(fmt).join('\n')}`);
  }

  const P = (from: string, to: string, kind: Probe['kind'], expect: boolean, port?: number): Probe => ({
    from, to: to.includes(':') ? to : ip4(to), kind, expect, ...(port !== undefined ? { port } : {}),
  });

  it('a second apply is empty on every host, rules and rates present', async () => {
    for (const p of model.physes.values()) {
      const hp = await planHost(model, { phys: p.name, netns: layout.physNs.get(p.name) as string });
      assert.deepEqual(hp.plan.steps, [], formatPlan(hp.plan, `second plan of ${p.name}`));
      const kinds = new Set(hp.read.state.sorted().map((o) => o.kind));
      if (p.name === 'a') for (const k of ['nft', 'qdisc', 'filter']) assert.ok(kinds.has(k as never), `${k} objects read back on a`);
    }
  });

  it('each rule kind drops what it matches and nothing else', async () => {
    await probe([
      // srcIp 10.0.0.12/30 (in): c2 (.12) and c3 (.13) dropped, c1 (.11) passes.
      P('c1', 'tp', 'ping', true), P('c2', 'tp', 'ping', false), P('c3', 'tp', 'ping', false), P('c1', 'tp', 'tcp', true, 8000),
      // dstIp 10.0.0.11 (out): td cannot send to c1 (not even replies), c2 is unaffected.
      P('td', 'c1', 'ping', false), P('td', 'c2', 'ping', true), P('c1', 'td', 'ping', false), P('c2', 'td', 'ping', true),
      // srcMac 02:00:00:00:01:00/ff:ff:ff:ff:ff:00 (in): c1 and c2 dropped, c3 passes.
      P('c1', 'tm', 'ping', false), P('c2', 'tm', 'ping', false), P('c3', 'tm', 'ping', true),
      // tcp dstPort 8000-8001 (in): only those; another port, UDP on the same port and ping pass.
      P('c3', 'tt', 'tcp', false, 8000), P('c3', 'tt', 'tcp', false, 8001), P('c3', 'tt', 'tcp', true, 8002),
      P('c3', 'tt', 'udp', true, 8000), P('c3', 'tt', 'ping', true), P('c1', 'tt', 'tcp', false, 8000),
      // icmp echo-request (in): pings to ti dropped; ti's own pings (echo-reply back) and TCP pass.
      P('c3', 'ti', 'ping', false), P('c1', 'ti', 'ping', false), P('ti', 'c3', 'ping', true), P('c3', 'ti', 'tcp', true, 8000),
      // Unrelated pairs are untouched.
      P('c1', 'c2', 'ping', true), P('c1', 'c3', 'ping', true), P('c1', 'fd10::8', 'ping', true),
    ]);
  });

  it('default policy drop lets in only what an accept rule allows (ARP still works)', async () => {
    await probe([
      P('c3', 'tx', 'tcp', true, 8000), P('c1', 'tx', 'tcp', true, 8000),
      P('c3', 'tx', 'tcp', false, 8001), P('c3', 'tx', 'udp', false, 8000), P('c3', 'tx', 'ping', false),
      // Its own connections get no replies either: in is drop, and tx is not stateful.
      P('tx', 'c3', 'ping', false),
    ]);
  });

  it('stateful: replies to connections the VM opened pass, new inbound connections do not', async () => {
    await probe([
      P('ts', 'c1', 'ping', true), P('ts', 'c3', 'ping', true), P('ts', 'c1', 'tcp', true, 8000), P('ts', 'c3', 'udp', true, 8000),
      P('c1', 'ts', 'ping', false), P('c3', 'ts', 'ping', false), P('c1', 'ts', 'tcp', false, 8000), P('c3', 'ts', 'udp', false, 8000),
      // IPv6 too (conntrack through nf_call_ip6tables; neighbour discovery passes).
      P('ts', 'fd10::11', 'ping', true), P('ts', 'fd10::11', 'tcp', true, 8000),
      P('c1', 'fd10::7', 'ping', false), P('c1', 'fd10::7', 'tcp', false, 8000),
    ]);
  });

  it('anti-spoofing: a spoofed source MAC, IPv4 (also in ARP) or IPv6 address is dropped, the real ones pass', async () => {
    const sp = ns('sp');
    const c1 = ns('c1');
    const ping = (args: string) => sh(sp, `ping -n -c 1 -W 1 ${args}`).status === 0;
    const retry = (args: string) => ping(args) || ping(args) || ping(args);
    assert.ok(retry('10.0.0.11'), 'legitimate IPv4 passes');
    assert.ok(retry('-6 fd10::11'), 'legitimate IPv6 (with neighbour discovery) passes');
    // IPv4 from an address that is not the virt's: the ARP entry is cached, so this is the IP check.
    assert.equal(sh(sp, 'ip addr add 10.0.0.99/24 dev eth0').status, 0);
    assert.ok(!ping('-I 10.0.0.99 10.0.0.11'), 'spoofed IPv4 source dropped');
    // Without the ARP entry the kernel asks with the spoofed sender address: c1 must not learn it.
    sh(sp, 'ip neigh flush dev eth0');
    sh(c1, 'ip neigh flush dev eth0');
    assert.ok(!ping('-I 10.0.0.99 10.0.0.11'), 'spoofed IPv4 source dropped');
    assert.equal(sh(c1, 'ip -4 neigh show 10.0.0.99').stdout.trim(), '', 'c1 learned no neighbour from a spoofed ARP sender');
    assert.equal(sh(sp, 'ip addr del 10.0.0.99/24 dev eth0').status, 0);
    // IPv6 from an address that is not the virt's.
    assert.equal(sh(sp, 'ip -6 addr add fd10::99/64 dev eth0 nodad').status, 0);
    assert.ok(!ping('-6 -I fd10::99 fd10::11'), 'spoofed IPv6 source dropped');
    assert.equal(sh(sp, 'ip -6 addr del fd10::99/64 dev eth0').status, 0);
    // Another MAC.
    assert.equal(sh(sp, 'ip link set eth0 address 02:00:00:00:09:99').status, 0);
    assert.ok(!ping('10.0.0.11'), 'spoofed source MAC dropped');
    assert.equal(sh(sp, 'ip link set eth0 address 02:00:00:00:03:08').status, 0);
    assert.ok(retry('10.0.0.11') && retry('-6 fd10::11'), 'the real MAC and addresses pass again');
  });

  it('changing one rule replaces only that virt\'s chain, in one transaction; then nothing', async () => {
    const changed = load(modelText('dstPort: 8002'));
    const hostA = layout.physNs.get('a') as string;
    const hp = await planHost(changed, { phys: 'a', netns: hostA });
    const chain = virtChainName(CONTEXT, 'n', 'tt', 'in');
    const table = nftTableName(CONTEXT);
    assert.deepEqual(hp.plan.steps.map((s) => [s.action, s.key, s.changes]), [['update', `nft bridge ${table}`, [`chain ${chain} replaced`]]]);
    const lines = hp.plan.steps.flatMap((s) => s.commands);
    assert.equal(lines.length, 2, formatPlan(hp.plan, 'plan'));
    assert.deepEqual(lines.map((c) => c.tool), ['nft', 'nft']);
    assert.equal(lines[0]!.line, `flush chain bridge ${table} ${chain}`);
    assert.match(lines[1]!.line, new RegExp(`^table bridge ${table} \\{ chain ${chain} \\{ .*tcp dport 8002 drop; \\}; \\}$`));
    const kernel = new Kernel({ netns: hostA });
    const r = await applyHost(changed, { phys: 'a', kernel });
    assert.ok(r.report.ok);
    assert.equal(r.report.operations, 2);
    assert.equal(r.report.processes, 1, 'one nft -f process: one transaction');
    for (const p of ['a', 'b']) {
      const again = await planHost(changed, { phys: p, netns: layout.physNs.get(p) as string });
      assert.deepEqual(again.plan.steps, [], formatPlan(again.plan, `plan of ${p} after the change`));
    }
    await probe([P('c3', 'tt', 'tcp', true, 8000), P('c3', 'tt', 'tcp', false, 8002)]);
    model = changed;
  });

  it('drift made by hand (a flushed chain, a changed or extra tbf, a dropped redirect) is seen and repaired', async () => {
    const hostA = layout.physNs.get('a') as string;
    const table = nftTableName(CONTEXT);
    const chain = virtChainName(CONTEXT, 'n', 'ti', 'in');
    const lsdnTbf = 'root handle 15d: tbf rate 1mbit burst 4kb limit 8kb';
    for (const cmd of [
      `nft flush chain bridge ${table} ${chain}`, // ti's rules gone
      `tc qdisc replace dev vrt ${lsdnTbf}`, // rt's in rate changed
      `tc qdisc replace dev vtp ${lsdnTbf}`, // a rate tp does not have (lsdn's handle: lsdn's to remove)
      'tc filter del dev vrt parent ffff: pref 349', // rt's out redirect gone
    ]) assert.equal(sh(hostA, cmd).status, 0, cmd);
    const hp = await planHost(model, { phys: 'a', netns: hostA });
    assert.deepEqual(hp.plan.steps.map((s) => `${s.action} ${s.key}`), [
      'delete qdisc vtp root', 'create qdisc vrt ingress', 'update qdisc vrt root', 'create filter vrt ingress 349', `update nft bridge ${table}`,
    ], formatPlan(hp.plan, 'drift'));
    const r = await applyHost(model, { phys: 'a', netns: hostA });
    assert.ok(r.report.ok);
    const again = await planHost(model, { phys: 'a', netns: hostA });
    assert.deepEqual(again.plan.steps, [], formatPlan(again.plan, 'after the repair'));
    await probe([P('c3', 'ti', 'ping', false), P('c3', 'tp', 'ping', false), P('c1', 'tp', 'ping', true), P('c3', 'ti', 'tcp', true, 8000)]);
  });

  it('rate limits hold a configured 20 Mbit/s in both directions (iperf3)', { skip: spawnSync('iperf3', ['--version']).status === 0 ? false : 'iperf3 is not installed (scripts/setup.sh)' }, async (t) => {
    const want = 20 * 1024 * 1024; // 20mbit, 1024-based like tc
    /** Goodput c3 receives, from (reverse) or to rt, over 3 s after 1 s of slow start; one server per run. */
    const measure = async (port: number, reverse: boolean): Promise<number> => {
      const server = spawn('ip', ['netns', 'exec', ns('rt'), 'iperf3', '-s', '-1', '-p', String(port)], { stdio: 'ignore' });
      servers.push(server);
      let last = '';
      for (let i = 0; i < 30; i++) {
        const r = sh(ns('c3'), `iperf3 -c ${ip4('rt')} -p ${port} -t 3 -O 1 -J${reverse ? ' -R' : ''}`);
        last = `${r.stdout}${r.stderr}`;
        try {
          const bps = (JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second?: number } } }).end?.sum_received?.bits_per_second;
          if (r.status === 0 && bps !== undefined) return bps;
        } catch {
          // not JSON: try again
        }
        await new Promise((res) => setTimeout(res, 100)); // the server is still starting
      }
      throw new Error(`iperf3 gave no result: ${last.slice(0, 2000)}`);
    };
    const toVm = await measure(5201, false);
    const fromVm = await measure(5202, true);
    const pct = (x: number) => `${(x / 1e6).toFixed(2)} Mbit/s (${((x / want - 1) * 100).toFixed(1)} %)`;
    t.diagnostic(`configured ${(want / 1e6).toFixed(2)} Mbit/s; toward the VM (tbf on its port) ${pct(toVm)}; from the VM (IFB) ${pct(fromVm)}`);
    for (const [what, got] of [['toward the VM', toVm], ['from the VM', fromVm]] as const) {
      assert.ok(Math.abs(got / want - 1) <= 0.25, `${what}: ${pct(got)} is not within 25 % of ${want} bit/s`);
    }
  });
});
