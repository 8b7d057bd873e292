/**
 * `lsdn watch --metrics HOST:PORT`: Prometheus metrics of one watcher (prom-client), served on
 * http://HOST:PORT/metrics: apply duration, the last applied revision, steps done / failed /
 * blocked, drift objects found, whether the store is reachable.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { UsageError } from '../core/errors.js';
import type { ApplyEvent } from './watch.js';

export interface Metrics {
  registry: Registry;
  hooks: { onApply: (e: ApplyEvent) => void; onConnection: (c: boolean) => void };
  address: string;
  close(): Promise<void>;
}

export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`--metrics ${s}: expected HOST:PORT (e.g. 127.0.0.1:9477)`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

export function watchMetrics(): Pick<Metrics, 'registry' | 'hooks'> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'lsdn_watch_process_' });
  const duration = new Histogram({
    name: 'lsdn_watch_apply_duration_seconds', help: 'Time from reading the model to the host converged (full: the kernel was read)',
    labelNames: ['full'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry],
  });
  const revision = new Gauge({ name: 'lsdn_watch_applied_revision', help: 'Model revision last applied on this host', registers: [registry] });
  const steps = new Counter({ name: 'lsdn_watch_steps_total', help: 'Plan steps, by result', labelNames: ['result'], registers: [registry] });
  const drift = new Gauge({ name: 'lsdn_watch_drift_objects', help: 'Kernel objects that differed from the model at the last full apply', registers: [registry] });
  const applies = new Counter({ name: 'lsdn_watch_applies_total', help: 'Looks at the model, by kind (full: read the kernel; unchanged: same desired state, no kernel read)', labelNames: ['kind'], registers: [registry] });
  const connected = new Gauge({ name: 'lsdn_watch_store_connected', help: '1 when the last store call succeeded, 0 while the store is unreachable', registers: [registry] });
  const result = new Gauge({ name: 'lsdn_watch_last_result', help: '1 for the result of the last apply (ok, failed, blocked, invalid, error)', labelNames: ['result'], registers: [registry] });
  connected.set(0);
  return {
    registry,
    hooks: {
      onApply: (e) => {
        duration.observe({ full: String(e.full) }, e.durationMs / 1000);
        revision.set(e.revision);
        applies.inc({ kind: e.full ? 'full' : 'unchanged' });
        if (e.full) {
          steps.inc({ result: 'done' }, e.status.counts.done);
          steps.inc({ result: 'failed' }, e.status.counts.failed);
          steps.inc({ result: 'blocked' }, e.status.counts.blocked);
          drift.set(e.status.counts.drift);
        }
        for (const r of ['ok', 'failed', 'blocked', 'invalid', 'error']) result.set({ result: r }, r === e.status.result ? 1 : 0);
      },
      onConnection: (c) => connected.set(c ? 1 : 0),
    },
  };
}

/** Serve the watcher's metrics on HOST:PORT (GET /metrics). */
export async function startMetrics(hostPort: string): Promise<Metrics> {
  const { host, port } = parseHostPort(hostPort);
  const m = watchMetrics();
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('lsdn watch serves /metrics only\n');
      return;
    }
    m.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': m.registry.contentType }).end(text),
      (e: unknown) => res.writeHead(500).end(String(e)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new UsageError(`--metrics ${hostPort}: ${(e as Error).message}`)));
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as { address: string; port: number };
  return { ...m, address: `${a.address}:${a.port}`, close: () => new Promise((r) => server.close(() => r())) };
}
