/**
 * The store boundary: an etcd v3 cluster reached through the `etcd3` client (gRPC). Every call
 * lsdn makes goes through `Store`, and every failure comes out as one `StoreError` saying what
 * was asked and what etcd answered (permission denied, unavailable, compacted...).
 *
 * URL: `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]` (`etcds://` for TLS), or `LSDN_STORE`.
 * TLS and users as etcdctl names them: --cacert, --cert, --key, --user USER[:PASSWORD],
 * --password (and ETCDCTL_CACERT, ETCDCTL_CERT, ETCDCTL_KEY, ETCDCTL_USER, ETCDCTL_PASSWORD).
 */
import { readFileSync } from 'node:fs';
import { Etcd3, EtcdPermissionDeniedError, EtcdAuthenticationFailedError, type IOptions, type Lease, type Watcher } from 'etcd3';
import { StoreError, UsageError } from '../core/errors.js';
import { defaultPrefix, normalizePrefix } from '../cluster/layout.js';

export interface StoreOptions {
  /** The store's URL (else LSDN_STORE). */
  store?: string;
  /** The context whose default prefix is used when the URL names none. */
  context?: string;
  cacert?: string;
  cert?: string;
  key?: string;
  /** USER or USER:PASSWORD. */
  user?: string;
  password?: string;
  /** Operations one transaction may hold (etcd's --max-txn-ops; default 128). */
  maxTxnOps?: number;
}

export interface StoreUrl {
  hosts: string[];
  tls: boolean;
  prefix?: string;
}

export function parseStoreUrl(url: string): StoreUrl {
  const m = /^(etcds?):\/\/([^/]+)(\/.*)?$/.exec(url);
  if (!m) throw new UsageError(`store URL "${url}": expected etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`);
  const [, scheme, hostPart, path] = m as unknown as [string, string, string, string | undefined];
  const hosts = hostPart.split(',').filter(Boolean);
  for (const h of hosts) if (!/^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):\d{1,5}$/.test(h)) throw new UsageError(`store URL "${url}": "${h}" is not HOST:PORT`);
  if (!hosts.length) throw new UsageError(`store URL "${url}": no HOST:PORT`);
  const prefix = path && path !== '/' ? normalizePrefix(path) : undefined;
  return { hosts, tls: scheme === 'etcds', ...(prefix ? { prefix } : {}) };
}

/** A key-value as lsdn reads it. */
export interface Kv {
  key: string;
  value: string;
  mod: number;
  create: number;
  lease: number;
}

export interface RangeResult {
  /** The store's revision the range was read at (the header's, or the one asked for). */
  revision: number;
  kvs: Kv[];
}

export type Compare =
  | { key: string; mod: number } // the key's mod revision equals (0: the key is absent)
  | { key: string; absent: true };

export type TxnOp = { put: string; value: string; lease?: string } | { del: string };

function describe(e: unknown): string {
  const msg = (e as Error)?.message ?? String(e);
  return msg.replace(/^\d+ [A-Z_]+: /, '');
}

/** An etcd failure as lsdn's StoreError: what was asked, what etcd answered, and whether it was unreachable. */
export function storeError(op: string, e: unknown, hint = ''): StoreError {
  if (e instanceof StoreError) return e;
  const answer = describe(e);
  const name = (e as Error)?.constructor?.name ?? '';
  const unavailable = /Unavailable|ConnectFailed|DeadlineExceeded|ClientClosed|No connection|ECONNREFUSED|not ready/i.test(`${name} ${answer}`);
  if (e instanceof EtcdPermissionDeniedError || /permission denied/i.test(answer)) {
    return new StoreError(`etcd refused ${op}: permission denied${hint}`, op, answer);
  }
  if (e instanceof EtcdAuthenticationFailedError || /authentication failed/i.test(answer)) {
    return new StoreError(`etcd refused the credentials for ${op}: ${answer}`, op, answer);
  }
  return new StoreError(`etcd: ${op} failed: ${answer}${unavailable ? ' (the store is unreachable)' : ''}`, op, answer, unavailable);
}

export class Store {
  readonly client: Etcd3;
  prefix: string;
  /** The prefix was named (URL or context), not a default. */
  readonly named: boolean;
  readonly url: StoreUrl;
  readonly maxTxnOps: number;
  readonly user?: string;

  constructor(opts: StoreOptions & { prefix?: string } = {}) {
    const raw = opts.store ?? process.env.LSDN_STORE;
    if (!raw) throw new UsageError('no store: give --store etcd://HOST:PORT[/PREFIX] or set LSDN_STORE');
    this.url = parseStoreUrl(raw);
    this.prefix = opts.prefix ?? this.url.prefix ?? defaultPrefix(opts.context ?? 'lsdn');
    this.named = (opts.prefix ?? this.url.prefix ?? opts.context) !== undefined;
    this.maxTxnOps = opts.maxTxnOps ?? 128;
    const env = process.env;
    const cacert = opts.cacert ?? env.ETCDCTL_CACERT;
    const cert = opts.cert ?? env.ETCDCTL_CERT;
    const key = opts.key ?? env.ETCDCTL_KEY;
    let user = opts.user ?? env.ETCDCTL_USER;
    let password = opts.password ?? env.ETCDCTL_PASSWORD;
    if (user?.includes(':') && password === undefined) [user, password] = [user.slice(0, user.indexOf(':')), user.slice(user.indexOf(':') + 1)];
    if (user !== undefined && password === undefined) throw new UsageError(`--user ${user}: no password (give USER:PASSWORD, --password or ETCDCTL_PASSWORD)`);
    const options: IOptions = {
      hosts: this.url.hosts.map((h) => `${this.url.tls || cacert ? 'https' : 'http'}://${h}`),
      dialTimeout: 3000,
    };
    if (this.url.tls || cacert) {
      const read = (f: string, what: string) => {
        try {
          return readFileSync(f);
        } catch (e) {
          throw new UsageError(`${what} ${f}: ${(e as Error).message}`);
        }
      };
      options.credentials = {
        rootCertificate: cacert ? read(cacert, '--cacert') : Buffer.alloc(0),
        ...(key ? { privateKey: read(key, '--key') } : {}),
        ...(cert ? { certChain: read(cert, '--cert') } : {}),
      };
    }
    if (user !== undefined) {
      this.user = user;
      options.auth = { username: user, password: password! };
    }
    this.client = new Etcd3(options);
  }

  private get who(): string {
    return this.user !== undefined ? ` (user ${this.user})` : '';
  }

  /** Every key under `prefix` (default: the store's), at `revision` (default: the latest). */
  async range(prefix = this.prefix, revision?: number): Promise<RangeResult> {
    const op = `read ${prefix}${revision ? ` at revision ${revision}` : ''}${this.who}`;
    try {
      const b = this.client.getAll().prefix(prefix);
      if (revision) b.revision(revision);
      const r = await b.exec();
      return {
        revision: revision ?? Number(r.header.revision),
        kvs: r.kvs.map((kv) => ({
          key: kv.key.toString(),
          value: kv.value.toString(),
          mod: Number(kv.mod_revision),
          create: Number(kv.create_revision),
          lease: Number(kv.lease),
        })),
      };
    } catch (e) {
      throw storeError(op, e, this.user !== undefined ? `: user ${this.user} may not read ${prefix}` : '');
    }
  }

  /**
   * With no prefix named (URL or --context), the one context stored under /lsdn/ (readers
   * need not repeat what the writer named); several are a usage error naming them.
   */
  async resolvePrefix(): Promise<string> {
    if (this.named) return this.prefix;
    let contexts: string[];
    try {
      const ks = await this.client.getAll().prefix('/lsdn/').keys();
      contexts = [...new Set(ks.filter((k) => /^\/lsdn\/[^/]+\/meta$/.test(k)).map((k) => k.slice(0, -'meta'.length)))];
    } catch (e) {
      throw storeError(`read /lsdn/${this.who}`, e);
    }
    if (contexts.length === 1) this.prefix = contexts[0]!;
    else if (contexts.length > 1) throw new UsageError(`the store holds several contexts (${contexts.join(', ')}): name one with --context or the URL's /PREFIX`);
    return this.prefix;
  }

  /** One key (undefined when absent). */
  async get(key: string): Promise<Kv | undefined> {
    const r = await this.range(key);
    return r.kvs.find((kv) => kv.key === key);
  }

  /**
   * One transaction: every compare must hold, then every op runs; false when a compare failed
   * (another writer got there first).
   */
  async txn(compares: Compare[], ops: TxnOp[], what = 'write'): Promise<{ ok: boolean; revision: number }> {
    const op = `${what} under ${this.prefix} (${ops.length} operation(s))${this.who}`;
    try {
      const r = await this.client.kv.txn({
        compare: compares.map((c) =>
          'absent' in c
            ? { key: Buffer.from(c.key), target: 'Create', result: 'Equal', create_revision: 0 }
            : { key: Buffer.from(c.key), target: 'Mod', result: 'Equal', mod_revision: c.mod },
        ),
        success: ops.map((o) =>
          'put' in o
            ? { request_put: { key: Buffer.from(o.put), value: Buffer.from(o.value), ...(o.lease ? { lease: o.lease } : {}) } }
            : { request_delete_range: { key: Buffer.from(o.del) } },
        ),
        failure: [],
      });
      return { ok: r.succeeded, revision: Number(r.header.revision) };
    } catch (e) {
      const hint = /permission denied/i.test(describe(e)) && this.user !== undefined
        ? `: user ${this.user} may not change the model under ${this.prefix} (hosts' roles may only write their status key; use an operator's credentials)`
        : '';
      throw storeError(op, e, hint);
    }
  }

  /** A lease of `ttl` seconds, kept alive by the client (emits 'lost' when it could not be). */
  lease(ttl: number): Lease {
    return this.client.lease(ttl, { autoKeepAlive: true });
  }

  /** A watch of the prefix from `fromRevision` (the client reconnects and resumes on its own). */
  async watch(fromRevision?: number): Promise<Watcher> {
    try {
      const b = this.client.watch().prefix(this.prefix);
      if (fromRevision) b.startRevision(String(fromRevision));
      return await b.create();
    } catch (e) {
      throw storeError(`watch ${this.prefix}${this.who}`, e);
    }
  }

  close(): void {
    this.client.close();
  }
}
