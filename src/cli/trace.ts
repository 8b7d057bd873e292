/**
 * `lsdn trace FILE FROM TO`: a frame's path and verdict, from the model (src/trace). Exit 0
 * delivered, 3 dropped, 2 the model is invalid, 1 other errors (an unknown virt, bad options).
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { validateWithAddressing, hasErrors } from '../validate/validate.js';
import { formatProblems } from '../core/problem.js';
import { problemsJson } from '../apply/format.js';
import { trace, type TraceProto } from '../trace/trace.js';
import { formatTrace, traceJson } from '../trace/format.js';
import { Exit, err, loadOrExit, out } from './util.js';

export const EXIT_DROPPED = 3;

const PROTOS: readonly TraceProto[] = ['tcp', 'udp', 'icmp', 'arp'];

function portNumber(v: string): number {
  const n = Number(v);
  if (!/^\d{1,5}$/.test(v) || n > 65535) throw new InvalidArgumentError('a port is a number 0..65535');
  return n;
}

function protoName(v: string): TraceProto {
  if (!(PROTOS as readonly string[]).includes(v)) throw new InvalidArgumentError(`one of ${PROTOS.join(', ')}`);
  return v as TraceProto;
}

export function registerTrace(program: Command): void {
  program
    .command('trace')
    .description("a frame's path and verdict, computed from the model: every hop, firewall line, tunnel and the reason (exit 0 delivered, 3 dropped, 2 invalid model, 1 other errors)")
    .argument('<file>', 'netmodel file')
    .argument('<from>', 'the sending virt, NET/VIRT')
    .argument('<to>', 'a virt (NET/VIRT), an IP address or a MAC (ff:ff:ff:ff:ff:ff: broadcast)')
    .option('--proto <proto>', 'tcp | udp | icmp (an echo request, default) | arp (a request for TO\'s address)', protoName)
    .option('--dport <n>', 'destination port (tcp/udp; default 80 tcp, 53 udp)', portNumber)
    .option('--sport <n>', 'source port (tcp/udp; default 40000)', portNumber)
    .option('--icmp-type <type>', 'icmp: the ICMP type, a name nft knows or a number (default echo-request; echo-reply: a ping\'s answer)')
    .option('--src-ip <ip>', "send from this address instead of the virt's (what anti-spoofing judges)")
    .option('--src-mac <mac>', "send from this MAC instead of the virt's")
    .option('--json', 'one JSON object: verdict, reason, hops')
    .action(async (file: string, from: string, to: string, o: { proto?: TraceProto; icmpType?: string; dport?: number; sport?: number; srcIp?: string; srcMac?: string; json?: boolean }) => {
      const { model } = await loadOrExit(file, o.json);
      const { problems, addressing } = validateWithAddressing(model);
      if (hasErrors(problems)) {
        if (o.json) out(JSON.stringify({ valid: false, problems: problemsJson(problems) }, null, 2));
        err(formatProblems(problems));
        throw new Exit(2);
      }
      const r = trace(model, {
        from, to,
        ...(o.proto ? { proto: o.proto } : {}),
        ...(o.dport !== undefined ? { dport: o.dport } : {}),
        ...(o.sport !== undefined ? { sport: o.sport } : {}),
        ...(o.srcIp ? { srcIp: o.srcIp } : {}),
        ...(o.srcMac ? { srcMac: o.srcMac } : {}),
      }, addressing);
      if (o.json) out(JSON.stringify(traceJson(r), null, 2));
      else out(formatTrace(r));
      if (r.verdict === 'dropped') throw new Exit(EXIT_DROPPED);
    });
}
