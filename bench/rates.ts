/**
 * Rate limits on every path (issue 16): a virt shaped `in` and `out` at each rate, iperf3 TCP
 * from and to a virt on the same host and one on another host (VMs at MTU 1500 on a 1450
 * overlay, as in test/kernel/rates.test.ts), markdown to stdout. Needs root and iperf3.
 *
 *   npx tsx bench/rates.ts [--rates 1,10,100,1000] [--seconds 4,30] [--burst 64kb]
 *
 * Each run omits its first second (-O 1: slow start and the initial bucket) and reports the
 * goodput against the configured rate (tc's 1024-based mbit) and against what TCP can carry
 * through it: rate x payload/frame (MSS 1398 with timestamps in a 1464-byte frame).
 */
import { spawn, spawnSync } from 'node:child_process';
import { labDown, labUp } from '../src/lab/lab.js';
import { applyInLab } from '../src/lab/apply.js';
import { loadModelText } from '../src/file/load.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] as string) : dflt;
};
const rates = arg('rates', '1,10,100,1000').split(',').map(Number);
const seconds = arg('seconds', '4').split(',').map(Number);
const burst = arg('burst', '64kb');
const EFFICIENCY = 1398 / 1464;

function model(rate: number) {
  const r = `{ avg: ${rate}mbit, burst: ${burst} }`;
  const { model: m, problems } = loadModelText(`
name: rtb
settings: { default: { type: vxlan/e2e } }
physes:
  a: { if: eth0, ip: 172.16.0.1 }
  b: { if: eth0, ip: 172.16.0.2 }
nets:
  n:
    vid: 7
    virts:
      r: { phys: a, if: vr, mac: 02:00:00:00:07:01, ip: 10.0.7.1/24, rate: { in: ${r}, out: ${r} } }
      s: { phys: a, if: vs, mac: 02:00:00:00:07:02, ip: 10.0.7.2/24 }
      c: { phys: b, if: vc, mac: 02:00:00:00:07:03, ip: 10.0.7.3/24 }
`, 'rates.yaml');
  if (!m) throw new Error(JSON.stringify(problems));
  return m;
}

const sh = (ns: string, cmd: string) => spawnSync('ip', ['netns', 'exec', ns, 'sh', '-c', cmd], { encoding: 'utf8' });

async function measure(server: string, client: string, reverse: boolean, port: number, t: number): Promise<number> {
  const s = spawn('ip', ['netns', 'exec', server, 'iperf3', '-s', '-1', '-p', String(port)], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 30; i++) {
      const r = sh(client, `iperf3 -c 10.0.7.1 -p ${port} -t ${t} -O 1 -J${reverse ? ' -R' : ''}`);
      try {
        const bps = (JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second?: number } } }).end?.sum_received?.bits_per_second;
        if (r.status === 0 && bps !== undefined) return bps;
      } catch {
        // the server is still starting
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error('iperf3 gave no result');
  } finally {
    s.kill();
  }
}

console.log(`| rate | s | path | Mbit/s | vs rate | vs rate x ${EFFICIENCY.toFixed(3)} |`);
console.log('|---|---|---|---|---|---|');
let port = 5400;
for (const rate of rates) {
  const m = model(rate);
  const prefix = `rtb${process.pid}`;
  const layout = await labUp(m, { prefix, apply: (p, ns) => applyInLab(m, p, ns) });
  try {
    const ns = (v: string) => layout.virtNs.get(`n/${v}`) as string;
    for (const v of ['r', 's', 'c']) sh(ns(v), 'ip link set eth0 mtu 1500');
    const want = rate * 1024 * 1024;
    for (const t of seconds) {
      for (const [path, client, reverse] of [['same host in', 's', false], ['same host out', 's', true], ['cross host in', 'c', false], ['cross host out', 'c', true]] as const) {
        const got = await measure(ns('r'), ns(client), reverse, port++, t);
        const pct = (x: number) => `${((got / x - 1) * 100).toFixed(1)} %`;
        console.log(`| ${rate}mbit | ${t} | ${path} | ${(got / 1e6).toFixed(2)} | ${pct(want)} | ${pct(want * EFFICIENCY)} |`);
      }
    }
  } finally {
    await labDown(prefix);
  }
}
