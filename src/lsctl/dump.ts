/**
 * A netmodel as an lsctl script (`show -tcl`, `lsdn dump --format lsctl`): running the script
 * builds the same model again, every field included (settings options, net ids, MTUs,
 * attachments, virt addresses, rules with MAC masks, rates).
 */
import type { Netmodel, Rate, Rule, Virt } from '../model/netmodel.js';
import { formatRateHuman, formatSizeHuman } from '../file/dump.js';

const BARE = /^[A-Za-z0-9_.:/@%+,=-]+$/;

/** `s` as one Tcl word. */
export function tclWord(s: string): string {
  if (s === '') return '{}';
  if (BARE.test(s)) return s;
  let depth = 0;
  let balanced = !s.includes('\\');
  for (const c of s) {
    if (c === '{') depth++;
    else if (c === '}' && --depth < 0) balanced = false;
  }
  if (balanced && depth === 0) return `{${s}}`;
  const esc: Record<string, string> = { '\n': '\\n', '\t': '\\t', '\r': '\\r' };
  return [...s].map((c) => esc[c] ?? (/[A-Za-z0-9_.:/@%+,=-]/.test(c) || c.charCodeAt(0) > 127 ? c : `\\${c}`)).join('');
}

/** Words as a Tcl list. */
export function tclList(words: string[]): string {
  return words.map(tclWord).join(' ');
}

/** Positional words, after `--` when one of them looks like an option. */
function positional(...words: string[]): string {
  return `${words.some((w) => w.startsWith('-')) ? '-- ' : ''}${tclList(words)}`;
}

function opt(name: string, value: string | number | undefined): string[] {
  return value === undefined ? [] : [name, tclWord(String(value))];
}

function ruleLine(r: Rule): string {
  const s = r.spec;
  const words = ['rule', r.direction, String(s.priority), tclWord(s.action)];
  for (const f of ['srcIp', 'dstIp', 'srcMac', 'dstMac', 'proto', 'srcPort', 'dstPort', 'icmpType'] as const) {
    words.push(...opt(`-${f}`, s[f]));
  }
  return words.join(' ');
}

function rateLine(dir: string, r: Rate): string {
  return [
    'rate', dir,
    '-avg', formatRateHuman(r.spec.avg),
    '-burst', formatSizeHuman(r.spec.burst),
    ...(r.spec.peak !== undefined ? ['-burstRate', formatRateHuman(r.spec.peak)] : []),
  ].join(' ');
}

function virtLines(v: Virt, indent: string): string[] {
  const words = [
    'virt',
    ...opt('-name', v.name),
    ...opt('-phys', v.physRef),
    ...opt('-if', v.if),
    ...opt('-mac', v.mac),
    ...(v.ips.length ? ['-ip', tclWord(tclList(v.ips))] : []),
    ...opt('-mtu', v.mtu),
  ];
  const body = [
    ...v.rules.map(ruleLine),
    ...(['in', 'out'] as const).flatMap((d) => (v.rates[d] ? [rateLine(d, v.rates[d])] : [])),
  ];
  if (!body.length) return [`${indent}${words.join(' ')}`];
  return [`${indent}${words.join(' ')} {`, ...body.map((l) => `${indent}    ${l}`), `${indent}}`];
}

/** The model as an lsctl script. */
export function dumpLsctl(model: Netmodel, opts: { runnable?: boolean } = {}): string {
  const lines = [
    opts.runnable ? '# lsctl script written by lsdn: `lsctl FILE PHYS` configures the host of phys PHYS' : '# lsctl script written by lsdn',
    'namespace import lsdn::*',
  ];
  if (model.name !== 'lsdn') lines.push(`context ${tclWord(model.name)}`);

  for (const s of model.settings.values()) {
    const o = s.options;
    lines.push([
      'settings', s.type,
      ...(s.name !== 'default' ? ['-name', tclWord(s.name)] : []),
      ...opt('-mcastIp', o.mcastIp),
      ...opt('-port', o.port),
      ...opt('-ttl', o.ttl),
      ...opt('-vni', o.vni),
      ...opt('-if', o.iface),
    ].join(' '));
  }

  for (const p of model.physes.values()) {
    lines.push(['phys', ...opt('-name', p.name), ...opt('-if', p.if), ...opt('-ip', p.ip), ...opt('-mtu', p.mtu)].join(' '));
  }

  for (const n of model.nets.values()) {
    const impliedVid = /^\d+$/.test(n.name) ? Number(n.name) : undefined;
    const head = [
      'net',
      ...(n.vid !== undefined && n.vid !== impliedVid ? ['-vid', String(n.vid)] : []),
      ...opt('-settings', n.settingsRef),
      ...opt('-mtu', n.mtu),
      positional(n.name),
    ].join(' ');
    const body: string[] = [];
    if (n.physes.size) body.push(`    attach ${positional(...[...n.physes].map((p) => p.name))}`);
    for (const v of n.virts.values()) body.push(...virtLines(v, '    '));
    lines.push(body.length ? `${head} {` : head, ...(body.length ? [...body, '}'] : []));
  }

  if (model.localPhyses.size) lines.push(`claimLocal ${positional(...[...model.localPhyses].map((p) => p.name))}`);
  // A script to run on the hosts: the phys is the first argument, as in LSDN's examples.
  if (opts.runnable) lines.push('if {$argc > 0} { claimLocal [lindex $argv 0] }', 'commit');
  return `${lines.join('\n')}\n`;
}
