/** `lsdn trace` output: the path as text (one line per hop, grouped by host) and as JSON. Pure. */
import type { Hop, TraceResult } from './trace.js';

function hopLines(hops: readonly Hop[], indent: string): string[] {
  const out: string[] = [];
  let host: string | undefined;
  for (const h of hops) {
    if (h.host !== host) {
      host = h.host;
      out.push(`${indent}${host === 'outside' || host === 'underlay' ? host : `host ${host}`}:`);
    }
    out.push(`${indent}  ${h.step.padEnd(8)} ${h.text}`);
  }
  return out;
}

/** The trace as text: the packet, the hops by host, the verdict and its reason. */
export function formatTrace(r: TraceResult): string {
  const lines = [`trace ${r.from} -> ${r.to}: ${r.packet}`, ...hopLines(r.hops, '  ')];
  for (const b of r.branches ?? []) {
    lines.push(`  -> ${b.to}: ${b.verdict}`, ...hopLines(b.hops, '     '));
  }
  lines.push(`verdict: ${r.verdict}: ${r.reason}`);
  return `${lines.join('\n')}\n`;
}

/** The trace as one JSON object (`verdict`, `reason`, `hops` with `host` and `step`, `branches` for broadcast). */
export function traceJson(r: TraceResult): object {
  return {
    from: r.from,
    to: r.to,
    packet: r.packet,
    frame: r.frame,
    verdict: r.verdict,
    reason: r.reason,
    hops: r.hops,
    ...(r.branches ? { branches: r.branches } : {}),
  };
}
