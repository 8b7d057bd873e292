/**
 * node:test reporter of the test guest: one JSON line per finished test or suite (name, nesting,
 * status, skip reason, duration, error message), read back by test/vm/run.ts.
 */
import type { TestEvent } from 'node:test/reporters';

export interface GuestResult {
  name: string;
  nesting: number;
  type: 'test' | 'suite';
  status: 'pass' | 'fail' | 'skip' | 'todo';
  reason?: string;
  ms: number;
  error?: string;
}

export default async function* guestReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  for await (const ev of source) {
    if (ev.type !== 'test:pass' && ev.type !== 'test:fail') continue;
    const d = ev.data;
    const skip = d.skip;
    const todo = d.todo;
    const details = d.details as { duration_ms?: number; type?: string; error?: unknown };
    const r: GuestResult = {
      name: d.name,
      nesting: d.nesting,
      type: details.type === 'suite' ? 'suite' : 'test',
      status: skip !== undefined && skip !== false ? 'skip' : todo !== undefined && todo !== false ? 'todo' : ev.type === 'test:pass' ? 'pass' : 'fail',
      ms: Math.round(details.duration_ms ?? 0),
    };
    if (typeof skip === 'string') r.reason = skip;
    if (ev.type === 'test:fail' && details.error !== undefined) {
      const e = details.error as { cause?: unknown; message?: string };
      r.error = String((e.cause as { message?: string } | undefined)?.message ?? e.message ?? e).slice(0, 4000);
    }
    yield `${JSON.stringify(r)}\n`;
  }
}
