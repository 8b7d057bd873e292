/**
 * Rules of a virt: every field (parsed as the firewall compiler parses them, src/core/rules.ts),
 * no two rules of one priority matching the same packets, one layout per priority (LSDN).
 */
import ipaddr from 'ipaddr.js';
import type { Rule, RuleSpec, Virt } from '../model/netmodel.js';
import { parsePrefix, type IpFamily } from '../core/addr.js';
import { icmpTypeNumber, parseMacMatch, parsePortRange } from '../core/rules.js';
import { familyName, isIntIn, q, ruleLabel, where, type Checker } from './checker.js';

export const RULE_PRIORITY_MAX = 32767;
/** LSDN's limit of IP/MAC matches in one rule. */
export const RULE_MAX_ADDR_MATCHES = 2;

export const RULE_ACTIONS = ['drop', 'accept'];
const IP_PROTOS = ['tcp', 'udp', 'icmp', 'icmpv6', 'sctp'];
const PORT_PROTOS = ['tcp', 'udp', 'sctp'];
const ADDR_MATCHES = ['srcIp', 'dstIp', 'srcMac', 'dstMac'] as const;

/** A rule with every field parsed and normalized (host bits and MAC bits under the mask cleared). */
interface ParsedRule {
  /** What the rule matches: equal for two rules that match the same packets. */
  matchKey: string;
  /** The match fields with their prefix lengths / masks (LSDN's "layout"). */
  layout: string;
}

export function checkRules(c: Checker, v: Virt): void {
  const byMatch = new Map<string, Rule>();
  const layouts = new Map<string, { layout: string; rule: Rule }>();
  for (const r of v.rules) {
    const parsed = checkRule(c, r);
    if (!parsed) continue;
    const group = `${r.direction} ${r.spec.priority}`;
    const matchKey = `${group} ${parsed.matchKey}`;
    const same = byMatch.get(matchKey);
    if (same) {
      const act = same.spec.action !== r.spec.action ? ` with action ${q(same.spec.action)}` : '';
      c.error('rule-duplicate', ruleLabel(r),
        `${describeRule(r.spec)} matches the same packets as an earlier rule of priority ${r.spec.priority}${act}${where(same.loc)}`,
        r);
      continue;
    }
    byMatch.set(matchKey, r);
    const first = layouts.get(group);
    if (!first) {
      layouts.set(group, { layout: parsed.layout, rule: r });
    } else if (first.layout !== parsed.layout) {
      c.error('rule-layout-mismatch', ruleLabel(r),
        `it matches ${parsed.layout}, but an earlier rule of priority ${r.spec.priority} (${r.direction}) matches ${first.layout}${where(first.rule.loc)}; rules of one priority must use the same match fields and masks`,
        r);
    }
  }
}
/** Check one rule; its parsed form when every field is valid. */
export function checkRule(c: Checker, r: Rule): ParsedRule | undefined {
  const s = r.spec;
  const label = ruleLabel(r);
  let ok = true;
  const err = (code: string, msg: string, field: string): void => {
    ok = false;
    c.error(code, label, msg, r, field);
  };

  if (!isIntIn(s.priority, 0, RULE_PRIORITY_MAX)) err('rule-priority-invalid', `priority ${q(s.priority)} is outside 0..${RULE_PRIORITY_MAX}`, 'priority');
  if (!RULE_ACTIONS.includes(s.action)) err('rule-action-invalid', `action ${q(s.action)} is not one of ${RULE_ACTIONS.join(', ')}`, 'action');
  if (s.proto !== undefined && !IP_PROTOS.includes(s.proto)) err('rule-proto-invalid', `proto ${q(s.proto)} is not one of ${IP_PROTOS.join(', ')}`, 'proto');

  const key: string[] = [];
  const layout: string[] = [];
  const fams = new Map<string, IpFamily>();
  for (const f of ['srcIp', 'dstIp'] as const) {
    const text = s[f];
    if (text === undefined) continue;
    const pre = typeof text === 'string' ? parsePrefix(text) : undefined;
    if (!pre) {
      err('rule-ip-invalid', `${f} ${q(text)} is not an IP address or prefix (like "10.0.0.0/24")`, f);
      continue;
    }
    fams.set(f, pre.family);
    const net = (pre.family === 4 ? ipaddr.IPv4 : ipaddr.IPv6).networkAddressFromCIDR(`${pre.ip}/${pre.len}`).toString();
    key.push(`${f}=${net}/${pre.len}`);
    layout.push(`${f} ${familyName(pre.family)}/${pre.len}`);
  }
  for (const f of ['srcMac', 'dstMac'] as const) {
    const text = s[f];
    if (text === undefined) continue;
    const m = typeof text === 'string' ? parseMacMatch(text) : undefined;
    if (!m) {
      err('rule-mac-invalid', `${f} ${q(text)} is not a MAC or MAC/MASK (like "02:00:00:00:00:00/ff:ff:ff:00:00:00")`, f);
      continue;
    }
    key.push(`${f}=${m.mac}/${m.mask}`);
    layout.push(`${f}/${m.mask}`);
  }

  const used = ADDR_MATCHES.filter((f) => s[f] !== undefined);
  if (used.length > RULE_MAX_ADDR_MATCHES) {
    err('rule-too-many-matches', `it matches ${used.join(', ')}; a rule may use at most ${RULE_MAX_ADDR_MATCHES} of srcIp, dstIp, srcMac, dstMac`, used[RULE_MAX_ADDR_MATCHES] ?? 'srcIp');
  }

  const src = fams.get('srcIp');
  const dst = fams.get('dstIp');
  if (src !== undefined && dst !== undefined && src !== dst) {
    err('rule-ip-family-mismatch', `srcIp ${q(s.srcIp)} is ${familyName(src)} but dstIp ${q(s.dstIp)} is ${familyName(dst)}`, 'dstIp');
  } else {
    const fam = src ?? dst;
    const field = src !== undefined ? 'srcIp' : 'dstIp';
    if (s.proto === 'icmp' && fam === 6) err('rule-ip-family-mismatch', `proto "icmp" is IPv4's, but ${field} ${q(s[field])} is IPv6 (use "icmpv6")`, 'proto');
    if (s.proto === 'icmpv6' && fam === 4) err('rule-ip-family-mismatch', `proto "icmpv6" is IPv6's, but ${field} ${q(s[field])} is IPv4 (use "icmp")`, 'proto');
  }

  if (s.proto !== undefined) key.push(`proto=${s.proto}`);
  for (const f of ['srcPort', 'dstPort'] as const) {
    const v = s[f];
    if (v === undefined) continue;
    const range = typeof v === 'number' || typeof v === 'string' ? parsePortRange(v) : undefined;
    if (!range) {
      err('rule-port-invalid', `${f} ${q(v)} is not a port or a range "lo-hi" within 0..65535`, f);
      continue;
    }
    if (s.proto === undefined || !PORT_PROTOS.includes(s.proto)) {
      err('rule-port-without-proto', `${f} ${q(v)} needs proto tcp, udp or sctp${s.proto !== undefined ? ` (not ${q(s.proto)})` : ''}`, f);
    }
    key.push(`${f}=${range[0]}-${range[1]}`);
    layout.push(range[0] === range[1] ? f : `${f} range`);
  }
  if (s.proto !== undefined) layout.push('proto');
  if (s.icmpType !== undefined) {
    if (s.proto !== 'icmp' && s.proto !== 'icmpv6') {
      err('rule-icmp-without-proto', `icmpType ${q(s.icmpType)} needs proto icmp or icmpv6${s.proto !== undefined ? ` (not ${q(s.proto)})` : ''}`, 'icmpType');
    } else {
      const n = typeof s.icmpType === 'number' || typeof s.icmpType === 'string' ? icmpTypeNumber(s.proto, s.icmpType) : undefined;
      if (n === undefined) {
        err('rule-icmp-type-invalid', `icmpType ${q(s.icmpType)} is neither a number 0..255 nor a known ${s.proto} type name`, 'icmpType');
      } else {
        key.push(`icmpType=${n}`);
        layout.push('icmpType');
      }
    }
  }
  if (!ok) return undefined;
  return { matchKey: key.join(' '), layout: layout.length ? layout.join(', ') : 'everything' };
}
/** A rule in words, for messages: "drop srcIp 10.0.0.0/24 proto tcp dstPort 22". */
function describeRule(s: RuleSpec): string {
  const parts: string[] = [String(s.action)];
  for (const f of ['srcIp', 'dstIp', 'srcMac', 'dstMac', 'proto', 'srcPort', 'dstPort', 'icmpType'] as const) {
    if (s[f] !== undefined) parts.push(`${f} ${String(s[f])}`);
  }
  return q(parts.join(' '));
}
