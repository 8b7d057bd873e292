/**
 * A throw-away single-member etcd on 127.0.0.1 (`lsdn lab --cluster`, bench): free ports, a
 * temporary data dir, stopped and removed by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { UsageError } from '../core/errors.js';

export interface LocalEtcd {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (the kernel's pick; closed again at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startLocalEtcd(): Promise<LocalEtcd> {
  const dir = mkdtempSync(join(tmpdir(), 'lsdn-etcd-'));
  const [client, peer] = [await freePort(), await freePort()];
  const log: string[] = [];
  const proc = spawn('etcd', [
    '--name', 'lab', '--data-dir', dir,
    '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `lab=http://127.0.0.1:${peer}`, '--log-level', 'warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
  proc.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
  const spawned = new Promise<void>((resolve, reject) => {
    proc.once('error', (e) => reject(new UsageError(`cannot start etcd (${e.message}); scripts/setup.sh installs etcd-server`)));
    proc.once('spawn', () => resolve());
  });
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await done;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await spawned;
    const c = new Etcd3({ hosts: `http://127.0.0.1:${client}`, dialTimeout: 1000 });
    try {
      for (let i = 0; ; i++) {
        try {
          await c.get('/lsdn-probe').string();
          break;
        } catch (e) {
          if (proc.exitCode !== null || i > 100) throw new UsageError(`etcd did not start: ${log.join('').slice(-500) || (e as Error).message}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      c.close();
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { url: `etcd://127.0.0.1:${client}`, proc, stop };
}
