/**
 * vxvde unicast: what a third member of the cloud receives of a flow between two others, and
 * TCP throughput, with lsdn's datapath and with the one before it (nolearning, no per-MAC
 * entries, no port table: everything to the group, rebuilt by hand on the same lab), in
 * alternating rounds. The cloud is examples/vde-cloud.yaml without its qemu guest (it plays no
 * part in these figures and boots slowly under TCG).
 *
 *   npx tsx bench/vxvde.ts [--rounds N] [--seconds S]      (root; namespaces lsb<pid>-vde-*)
 *
 * Flows: 200 pings (400 frames on the overlay) lan/v1 -> lan/v2 (two lsdn hosts) and
 * lan/v1 -> plug (lsdn -> a vde_plug client); watched: the eth0 rx counters of the hosts of
 * vni2 (a client of the same group, VNI 2), dens (a client of the cloud) and lsdn host b.
 */
import { readFileSync } from 'node:fs';
import { loadModelText } from '../src/file/load.js';
import { labDown, labUp } from '../src/lab/lab.js';
import { applyInLab } from '../src/lab/apply.js';
import { labExtension } from '../src/lab/extension.js';
import { flow, groupOnly, must } from '../test/helpers/vde.js';

const argv = process.argv.slice(2);
const opt = (name: string, d: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : d);
const rounds = opt('--rounds', 3);
const seconds = opt('--seconds', 3);
const prefix = `lsb${process.pid}-vde`;

const text = readFileSync(new URL('../examples/vde-cloud.yaml', import.meta.url), 'utf8');
const loaded = loadModelText(text, 'examples/vde-cloud.yaml');
const model = loaded.model!;
const ext = labExtension(loaded.lab);
ext.clients = ext.clients.filter((c) => c.run !== 'qemu');

function iperf(from: string, serverNs: string, ip: string): number {
  must(serverNs, `iperf3 -s -1 -D -B ${ip}`);
  must(serverNs, 'sleep 0.3');
  const out = must(from, `iperf3 -c ${ip} -t ${seconds} -J`);
  return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e6;
}

type Row = Record<string, number[]>;
const results: Record<'lsdn' | 'group only', Row> = { lsdn: {}, 'group only': {} };
const add = (mode: keyof typeof results, k: string, v: number) => (results[mode][k] ??= []).push(v);

async function main(): Promise<void> {
  await labDown(prefix);
  const layout = await labUp(model, { prefix, lab: ext, apply: (p, ns) => applyInLab(model, p, ns), onProgress: (s) => process.stderr.write(`${s}\n`) });
  try {
    const host = (c: string) => layout.clientNs.get(c)!;
    const v1 = layout.virtNs.get('lan/v1')!;
    const v2 = layout.virtNs.get('lan/v2')!;
    const b = layout.physNs.get('b')!;
    for (let r = 0; r < rounds; r++) {
      for (const mode of ['lsdn', 'group only'] as const) {
        if (mode === 'group only') for (const p of ['a', 'b']) groupOnly(layout.physNs.get(p)!, 'lsdn_vdecloud');
        else for (const p of model.physes.values()) await applyInLab(model, p, layout.physNs.get(p.name)!);
        must(v1, 'ping -c 2 -W 1 10.77.0.2 >/dev/null; ping -c 2 -W 1 10.77.0.10 >/dev/null');
        const [x1, x2] = flow(v1, '10.77.0.2', [host('vni2'), host('dens')]);
        add(mode, 'v1<->v2 at vni2 host', x1!);
        add(mode, 'v1<->v2 at dens host', x2!);
        const [y1, y2] = flow(v1, '10.77.0.10', [host('dens'), b]);
        add(mode, 'v1<->plug at dens host', y1!);
        add(mode, 'v1<->plug at host b', y2!);
        add(mode, 'TCP v1->v2 Mbit/s', iperf(v1, v2, '10.77.0.2'));
        add(mode, 'TCP v1->plug Mbit/s', iperf(v1, host('plug'), '10.77.0.10'));
        process.stderr.write(`round ${r + 1} ${mode} done\n`);
      }
    }
  } finally {
    await labDown(prefix);
  }
  const range = (xs: number[]) => {
    const s = [...xs].sort((p, q) => p - q).map((x) => (Number.isInteger(x) ? String(x) : x.toFixed(0)));
    return s[0] === s.at(-1) ? s[0]! : `${s[0]}-${s.at(-1)}`;
  };
  const keys = Object.keys(results.lsdn);
  process.stdout.write(`| measure (${rounds} rounds, 200-ping flows = 400 frames) | group only (before) | lsdn (now) |\n|---|---|---|\n`);
  for (const k of keys) process.stdout.write(`| ${k} | ${range(results['group only'][k] ?? [])} | ${range(results.lsdn[k] ?? [])} |\n`);
}

main().catch(async (e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  await labDown(prefix).catch(() => undefined);
  process.exit(1);
});
