/**
 * A real etcd for a test: one member (or a cluster of several) on 127.0.0.1, random free
 * ports, a temporary data dir, killed and removed in t.after (even when the test fails).
 *
 *   const e = await startEtcd(t);           // e.url: "etcd://127.0.0.1:PORT"
 *   const c = await startEtcdCluster(t, 3); // c.url lists every member
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

export function etcdMissing(): string | undefined {
  const r = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : 'etcd is not installed (scripts/setup.sh installs etcd-server)';
}

import { freePort } from '../../src/store/server.js';

export { freePort };

export interface EtcdMember {
  name: string;
  client: string;
  peer: string;
  dir: string;
  proc?: ChildProcess;
  log: string[];
  /** Start (again) with the same data dir. */
  start(): Promise<void>;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: unreachable without losing anything. */
  pause(): void;
  resume(): void;
}

export interface Etcd {
  members: EtcdMember[];
  /** etcd://HOST:PORT[,HOST:PORT...] */
  url: string;
  endpoints: string;
  /** etcdctl with these endpoints (API 3); throws on failure with its stderr. */
  ctl(args: string[], env?: Record<string, string>): string;
  stop(): Promise<void>;
}

async function waitHealthy(endpoint: string, proc: ChildProcess | undefined, log: string[], timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = spawnSync('etcdctl', ['--endpoints', endpoint, '--command-timeout=1s', 'endpoint', 'health'], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' } });
    if (r.status === 0) return;
    if (proc && proc.exitCode !== null) throw new Error(`etcd exited (${proc.exitCode}):\n${log.join('').slice(-2000)}`);
    if (Date.now() > until) throw new Error(`etcd at ${endpoint} not healthy after ${timeoutMs} ms:\n${log.join('').slice(-2000)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

export async function startEtcdCluster(t: TestContext, size = 1, extra: string[] = []): Promise<Etcd> {
  const root = mkdtempSync(join(tmpdir(), 'lsdn-etcd-'));
  const members: EtcdMember[] = [];
  for (let i = 0; i < size; i++) {
    const [c, p] = [await freePort(), await freePort()];
    members.push({
      name: `m${i}`, client: `127.0.0.1:${c}`, peer: `127.0.0.1:${p}`, dir: join(root, `m${i}`), log: [],
      start: async () => undefined, kill: async () => undefined, pause: () => undefined, resume: () => undefined,
    });
  }
  const initial = members.map((m) => `${m.name}=http://${m.peer}`).join(',');
  for (const m of members) {
    m.start = async () => {
      const proc = spawn('etcd', [
        '--name', m.name, '--data-dir', m.dir,
        '--listen-client-urls', `http://${m.client}`, '--advertise-client-urls', `http://${m.client}`,
        '--listen-peer-urls', `http://${m.peer}`, '--initial-advertise-peer-urls', `http://${m.peer}`,
        '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', root,
        '--heartbeat-interval', '50', '--election-timeout', '500', '--log-level', 'warn',
        ...extra,
      ], { stdio: ['ignore', 'pipe', 'pipe'] });
      m.proc = proc;
      proc.stdout?.on('data', (d: Buffer) => m.log.push(d.toString()));
      proc.stderr?.on('data', (d: Buffer) => m.log.push(d.toString()));
    };
    m.kill = async () => {
      const p = m.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const done = new Promise((res) => p.once('exit', res));
      p.kill('SIGKILL');
      await done;
    };
    m.pause = () => m.proc?.kill('SIGSTOP');
    m.resume = () => m.proc?.kill('SIGCONT');
  }
  const endpoints = members.map((m) => m.client).join(',');
  const etcd: Etcd = {
    members,
    url: `etcd://${endpoints}`,
    endpoints,
    ctl(args, env = {}) {
      const r = spawnSync('etcdctl', ['--endpoints', endpoints, ...args], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3', ...env } });
      if (r.status !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    },
    async stop() {
      for (const m of members) {
        m.resume();
        await m.kill();
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
  t.after(() => etcd.stop());
  await Promise.all(members.map((m) => m.start()));
  await Promise.all(members.map((m) => waitHealthy(m.client, m.proc, m.log)));
  return etcd;
}

export function startEtcd(t: TestContext, extra: string[] = []): Promise<Etcd> {
  return startEtcdCluster(t, 1, extra);
}

export { waitHealthy };
