/**
 * `lsdn cluster status`: one row per phys of the committed model (and per status key of a phys
 * it no longer has): the revision applied against the model's, how long ago, the result, and
 * whether the host is alive (its status key lives on its lease).
 */
import { STATUS } from '../cluster/layout.js';
import { readModel } from './model.js';
import type { HostStatus } from './watch.js';
import type { Store } from './etcd.js';

export interface StatusRow {
  phys: string;
  alive: boolean;
  applied?: number;
  current: number;
  ageMs?: number;
  result?: HostStatus['result'];
  counts?: HostStatus['counts'];
  converged: boolean;
  problems?: string[];
  error?: string;
  version?: string;
}

export interface ClusterStatus {
  prefix: string;
  revision: number;
  valid: boolean;
  rows: StatusRow[];
  /** Every live host converged on the current revision. */
  converged: boolean;
}

export async function clusterStatus(store: Store, now = Date.now()): Promise<ClusterStatus> {
  await store.resolvePrefix();
  const { snapshot, model, problems } = await readModel(store);
  const statusPrefix = `${store.prefix}${STATUS}`;
  const statuses = new Map<string, HostStatus>();
  for (const kv of snapshot.others) {
    if (!kv.key.startsWith(statusPrefix)) continue;
    try {
      const s = JSON.parse(kv.value) as HostStatus;
      statuses.set(decodeURIComponent(kv.key.slice(statusPrefix.length)), s);
    } catch {
      /* a status written by hand that is not JSON: shown as alive, unknown */
      statuses.set(decodeURIComponent(kv.key.slice(statusPrefix.length)), { result: 'error', error: 'status is not JSON' } as HostStatus);
    }
  }
  const names = [...new Set([...(model ? [...model.physes.keys()] : []), ...statuses.keys()])].sort();
  const current = snapshot.revision;
  const rows = names.map((phys): StatusRow => {
    const s = statuses.get(phys);
    if (!s) return { phys, alive: false, current, converged: false };
    const ageMs = s.at ? now - Date.parse(s.at) : undefined;
    return {
      phys, alive: true, applied: s.applied, current, ...(ageMs !== undefined ? { ageMs } : {}), result: s.result, counts: s.counts,
      converged: s.applied === current && s.result === 'ok',
      ...(s.problems ? { problems: s.problems } : {}), ...(s.error ? { error: s.error } : {}), ...(s.version ? { version: s.version } : {}),
    };
  });
  const valid = !!model && !problems.some((p) => p.severity === 'error');
  return { prefix: store.prefix, revision: current, valid, rows, converged: valid && rows.filter((r) => r.alive).every((r) => r.converged) };
}

function age(ms: number | undefined): string {
  if (ms === undefined) return '-';
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

export function formatClusterStatus(c: ClusterStatus): string {
  const head = ['PHYS', 'ALIVE', 'APPLIED', 'CURRENT', 'AGE', 'RESULT', 'DONE', 'FAILED', 'BLOCKED', 'DRIFT'];
  const table = c.rows.map((r) => [
    r.phys, r.alive ? 'yes' : 'no', r.applied !== undefined ? String(r.applied) : '-', String(r.current), age(r.ageMs), r.result ?? '-',
    String(r.counts?.done ?? '-'), String(r.counts?.failed ?? '-'), String(r.counts?.blocked ?? '-'), String(r.counts?.drift ?? '-'),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((x, i) => x.padEnd(widths[i]!)).join('  ').trimEnd();
  const lines = [`${c.prefix} at revision ${c.revision}${c.valid ? '' : ' (INVALID: hosts keep their last good model)'}`, line(head), ...table.map(line)];
  for (const r of c.rows) for (const p of r.problems ?? []) lines.push(`  ${r.phys}: ${p}`);
  for (const r of c.rows) if (r.error) lines.push(`  ${r.phys}: ${r.error}`);
  const live = c.rows.filter((r) => r.alive);
  lines.push(c.converged ? `converged: ${live.length} live host(s) applied revision ${c.revision}` : `not converged: ${live.filter((r) => !r.converged).length} of ${live.length} live host(s) behind or failing`);
  return lines.join('\n');
}
