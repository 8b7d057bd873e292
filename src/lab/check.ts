/**
 * Reachability checks of a lab: from every connected virt, ping every address of every other
 * one; same net -> must answer, other net -> must not.
 */
import ipaddr from 'ipaddr.js';
import { Kernel } from '../kernel/exec.js';
import { parsePrefix, type Prefix } from '../core/addr.js';
import type { Netmodel } from '../model/netmodel.js';
import { isNetworkType, networkType } from '../types/registry.js';
import { labVirts, type LabLayout } from './layout.js';
import { clientId, cloudKey, virtCloud, type LabClient } from './extension.js';
import { clientShell } from './clients.js';

export interface ExpectedPair {
  from: string;
  to: string;
  toIp: string;
  expected: boolean;
  /** Not checked: the outcome says nothing (see note). */
  skip?: boolean;
  note?: string;
}

export interface PairResult {
  from: string;
  to: string;
  toIp: string;
  expected: boolean;
  reachable: boolean;
  ok: boolean;
  /** Not pinged (see note); counted neither as passed nor failed. */
  skipped?: boolean;
  /** Pings sent (1, or more for an expected-reachable target that did not answer at once). */
  attempts?: number;
  note?: string;
}

export interface CheckReport {
  pairs: PairResult[];
  passed: number;
  failed: number;
  skipped?: number;
}

/** Is the net of a routed type (public: a segment per host)? */
function routedNet(model: Netmodel, name: string): boolean {
  const s = model.net(name)?.effectiveSettings();
  return s !== undefined && isNetworkType(s.type) && networkType(s.type).routed !== undefined;
}

function onLink(target: string, prefixes: Prefix[]): boolean {
  const t = ipaddr.parse(target);
  return prefixes.some((p) => {
    const n = ipaddr.parse(p.ip);
    return n.kind() === t.kind() && t.match(n, p.len);
  });
}

/** A member of the lab's clouds: a connected virt, or a VDE client of the lab section. */
interface Member {
  id: string;
  /** What it joins (extension.ts): a vxvde cloud, or the net of another type. */
  cloud: string;
  prefixes: Prefix[];
  /** Virts: their net (the routed-net rule) and phys. */
  net?: string;
  phys?: string;
}

function members(model: Netmodel, layout: LabLayout): Member[] {
  const out: Member[] = [];
  const parsed = (ips: string[]) => ips.map(parsePrefix).filter((p): p is Prefix => p !== undefined);
  for (const v of labVirts(model)) {
    if (!layout.virtNs.has(v.id)) continue;
    out.push({ id: v.id, cloud: virtCloud(v), prefixes: parsed(layout.virtIps.get(v.id) ?? []), net: v.net.name, ...(v.phys ? { phys: v.phys.name } : {}) });
  }
  for (const c of layout.lab?.clients ?? []) out.push({ id: clientId(c), cloud: cloudKey(c.cloud), prefixes: parsed(c.ips) });
  return out;
}

/**
 * What each ping should do (pure). The members are the virts connected to a phys and the lab
 * section's VDE clients; members of one cloud must reach each other, others must not (a vxvde
 * net, and the clients whose URL names its group, port and VNI, are one cloud). A target
 * address that also exists in the source's own cloud (overlapping subnets, duplicates) or is
 * the source's own, and a same-cloud target the source has no route to, is skipped with a note.
 */
export function expectedReachability(model: Netmodel, layout: LabLayout): ExpectedPair[] {
  const all = members(model, layout);

  // cloud -> address -> members of that cloud holding it
  const holders = new Map<string, Map<string, string[]>>();
  for (const m of all) {
    let h = holders.get(m.cloud);
    if (!h) holders.set(m.cloud, (h = new Map()));
    for (const p of m.prefixes) h.set(p.ip, [...(h.get(p.ip) ?? []), m.id]);
  }
  const out: ExpectedPair[] = [];
  for (const from of all) {
    for (const to of all) {
      if (to === from) continue;
      const same = to.cloud === from.cloud;
      for (const p of to.prefixes) {
        const pair: ExpectedPair = { from: from.id, to: to.id, toIp: p.ip, expected: same };
        const others = (holders.get(from.cloud)?.get(p.ip) ?? []).filter((h) => h !== to.id);
        const where = from.net !== undefined ? `net ${from.net}` : `cloud (${from.cloud})`;
        if (others.includes(from.id)) {
          pair.skip = true;
          pair.note = `${p.ip} is also ${from.id}'s own address`;
        } else if (others.length) {
          pair.skip = true;
          pair.note = same
            ? `${p.ip} is held by ${others.join(', ')} too (duplicate in ${where})`
            : `${p.ip} also exists in ${from.id}'s ${where} (${others.join(', ')})`;
        } else if (same && from.net !== undefined && from.net === to.net && routedNet(model, from.net) && from.phys !== to.phys) {
          // Each host's segment of a routed net (public) is its own (the host routes; nothing crosses at L2).
          pair.skip = true;
          pair.note = `public net ${from.net}: ${from.id} and ${to.id} are on different hosts' segments`;
        } else if (!onLink(p.ip, from.prefixes)) {
          if (same) {
            pair.skip = true;
            pair.note = `${p.ip} is on no subnet of ${from.id}`;
          } else {
            pair.note = `${p.ip} is on no subnet of ${from.id}: unreachable by routing, isolation not exercised`;
          }
        }
        out.push(pair);
      }
    }
  }
  return out;
}

export interface CheckOptions {
  /** Most ping processes running at once (default 256). */
  concurrency?: number;
  /** How long one ping waits for its reply (default 1000 ms, `ping -W 1`). */
  timeoutMs?: number;
  /** Further pings of an expected-reachable target that did not answer (default 2). */
  retries?: number;
}

interface Job {
  /** The source member: a virt's namespace, or a client. */
  ns?: string;
  client?: LabClient;
  idx: number[];
}

/**
 * A shell script pinging several targets at once; prints "INDEX EXITCODE ATTEMPTS" per target.
 * `guest`: one line, for a qemu client's console, with busybox's ping (no -n, whole seconds).
 */
export function pingScript(items: { id: number; ip: string; attempts: number }[], waitS: string, guest = false): string {
  // Retries wait 0.1-0.5 s, spread over the targets: retrying all at once would repeat the
  // burst (of ARP broadcasts, fanned out to every phys) that may have lost the first ping.
  const wait = guest ? String(Math.max(1, Math.ceil(Number(waitS)))) : waitS;
  const fn = [
    'p() { id=$1; n=$2; fam=$3; ip=$4; d=$5; a=0',
    '  while :; do a=$((a+1))',
    `    ping ${guest ? '' : '-n '}-q -c 1 -W ${wait} "$fam" "$ip" >/dev/null 2>&1; r=$?`,
    '    if [ "$r" -eq 0 ] || [ "$a" -ge "$n" ]; then break; fi',
    '    sleep "$d"',
    '  done',
    '  echo "$id $r $a"; }',
  ];
  const calls = items.map((it) => `p ${it.id} ${it.attempts} -${it.ip.includes(':') ? 6 : 4} ${it.ip} ${(0.1 + ((it.id * 7) % 5) * 0.1).toFixed(1)} &`);
  if (guest) return `${fn.map((l) => l.trim()).join('; ')}; ${calls.join(' ')} wait`;
  return [...fn, ...calls, 'wait'].join('\n');
}

/**
 * Ping every pair (from the source virt's namespace: `ping -c 1 -W 1`, `-6` for IPv6
 * targets), many at once: the pings of one source run in one shell in its namespace.
 */
export async function labCheck(model: Netmodel, layout: LabLayout, opts: CheckOptions = {}): Promise<CheckReport> {
  const limit = Math.max(1, opts.concurrency ?? 256);
  const waitS = String(Math.max(0.1, (opts.timeoutMs ?? 1000) / 1000));
  const retries = Math.max(0, opts.retries ?? 2);
  const expected = expectedReachability(model, layout);
  const pairs: PairResult[] = expected.map((e) => ({
    from: e.from,
    to: e.to,
    toIp: e.toIp,
    expected: e.expected,
    reachable: false,
    ok: true,
    ...(e.skip ? { skipped: true } : {}),
    ...(e.note !== undefined ? { note: e.note } : {}),
  }));

  // Jobs: per source, chunks of at most `limit` targets.
  const jobs: Job[] = [];
  const bySource = new Map<string, number[]>();
  pairs.forEach((p, i) => {
    if (p.skipped) return;
    bySource.set(p.from, [...(bySource.get(p.from) ?? []), i]);
  });
  const clientOf = new Map((layout.lab?.clients ?? []).map((c) => [clientId(c), c]));
  for (const [from, idx] of bySource) {
    const client = clientOf.get(from);
    const src = client ? { client } : { ns: layout.virtNs.get(from) as string };
    for (let i = 0; i < idx.length; i += limit) jobs.push({ ...src, idx: idx.slice(i, i + limit) });
  }

  const runJob = async (job: Job) => {
    const items = job.idx.map((i) => {
      const p = pairs[i] as PairResult;
      return { id: i, ip: p.toIp, attempts: p.expected ? 1 + retries : 1 };
    });
    // (A job's pings run at once; the retries of an expected one take (1 + retries) waits at most.)
    const timeoutMs = 30_000 + (1 + retries) * Number(waitS) * 2000;
    const stdout = job.client
      ? await clientShell(layout, job.client, pingScript(items, waitS, job.client.run === 'qemu'), { timeoutMs })
      : (await new Kernel({ netns: job.ns }).run('sh', ['-c', pingScript(items, waitS)])).stdout;
    const seen = new Set<number>();
    for (const line of stdout.split(/\r?\n/)) {
      const m = /^(\d+) (\d+) (\d+)$/.exec(line.trim());
      if (!m) continue;
      const i = Number(m[1]);
      const p = pairs[i];
      if (!p || !job.idx.includes(i)) continue;
      seen.add(i);
      const code = Number(m[2]);
      p.reachable = code === 0;
      p.attempts = Number(m[3]);
      if (code > 1) p.note = [p.note, `ping failed (exit ${code})`].filter(Boolean).join('; ');
    }
    for (const i of job.idx) {
      if (!seen.has(i)) {
        const p = pairs[i] as PairResult;
        p.note = [p.note, 'no result from ping'].filter(Boolean).join('; ');
      }
    }
  };

  // Weighted semaphore: a job holds one slot per ping it runs.
  await new Promise<void>((resolve, reject) => {
    let inflight = 0;
    let next = 0;
    let done = 0;
    let failed = false;
    const pump = () => {
      if (failed) return;
      if (done === jobs.length) return resolve();
      while (next < jobs.length) {
        const job = jobs[next] as Job;
        if (inflight > 0 && inflight + job.idx.length > limit) break;
        next++;
        inflight += job.idx.length;
        runJob(job).then(
          () => {
            inflight -= job.idx.length;
            done++;
            pump();
          },
          (e: unknown) => {
            failed = true;
            reject(e);
          },
        );
      }
    };
    pump();
  });

  let passed = 0;
  let failedCount = 0;
  let skipped = 0;
  for (const p of pairs) {
    if (p.skipped) {
      skipped++;
      continue;
    }
    p.ok = p.reachable === p.expected;
    if (p.ok) passed++;
    else failedCount++;
  }
  return { pairs, passed, failed: failedCount, skipped };
}

function cellOf(p: PairResult): string {
  if (p.skipped) return 'sk';
  const r = p.reachable ? 'ok' : '--';
  return p.ok ? r : `${r}!!`;
}

/**
 * The report as a matrix: rows are sources, columns targets (numbered as the rows). "ok":
 * answered, "--": did not, "!!" appended when that was not expected, "sk": skipped, "." the
 * virt itself; a target with several addresses gets one mark per address ("ok/--"). Failures
 * and skips are listed below; the last line is exactly "N passed, N failed".
 */
export function formatMatrix(report: CheckReport, layout: LabLayout): string {
  const ids = [...layout.virtNs.keys(), ...(layout.lab?.clients ?? []).map(clientId)];
  for (const p of report.pairs) for (const id of [p.from, p.to]) if (!ids.includes(id)) ids.push(id);
  const cells = new Map<string, string[]>();
  for (const p of report.pairs) {
    const k = `${p.from}\0${p.to}`;
    cells.set(k, [...(cells.get(k) ?? []), cellOf(p)]);
  }
  const text = (from: string, to: string) => (from === to ? '.' : (cells.get(`${from}\0${to}`) ?? []).join('/'));
  const num = (i: number) => String(i + 1);
  const rowLabels = ids.map((id, i) => `${num(i).padStart(String(ids.length).length)} ${id}`);
  const labelW = Math.max(0, ...rowLabels.map((l) => l.length));
  const colW = ids.map((to, j) => Math.max(num(j).length, ...ids.map((from) => text(from, to).length)));
  const lines: string[] = [];
  lines.push(`${' '.repeat(labelW)}  ${ids.map((_, j) => num(j).padEnd(colW[j] as number)).join(' ')}`.trimEnd());
  ids.forEach((from, i) => {
    lines.push(`${(rowLabels[i] as string).padEnd(labelW)}  ${ids.map((to, j) => text(from, to).padEnd(colW[j] as number)).join(' ')}`.trimEnd());
  });
  const bad = report.pairs.filter((p) => !p.skipped && !p.ok);
  if (bad.length) {
    lines.push('', 'unexpected:');
    for (const p of bad) {
      lines.push(`  ${p.from} -> ${p.to} (${p.toIp}): expected ${p.expected ? 'reachable' : 'unreachable'}, was ${p.reachable ? 'reachable' : 'unreachable'}${p.note ? ` (${p.note})` : ''}`);
    }
  }
  const skipped = report.pairs.filter((p) => p.skipped);
  if (skipped.length) {
    lines.push('', 'skipped:');
    for (const p of skipped) lines.push(`  ${p.from} -> ${p.to} (${p.toIp}): ${p.note ?? ''}`);
  }
  lines.push('', `${report.passed} passed, ${report.failed} failed`);
  return lines.join('\n');
}
