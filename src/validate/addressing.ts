/**
 * Subnets, static addresses against them, recorded allocations and the pools (src/ipam assigns;
 * its problems are located here). Allocated but unrecorded addresses warn, one line per net.
 */
import type { Net } from '../model/netmodel.js';
import { analyzeAddresses } from '../ipam/ipam.js';
import { netLabel, type Checker } from './checker.js';

export function checkAddressing(c: Checker): void {
  const { addressing, issues } = analyzeAddresses(c.model);
  c.addressing = addressing;
  for (const i of issues) c.add(i.severity, i.code, i.object, i.message, i.at, i.field);
  // One warning per net, naming its virts (10,000 new virts are one line, not 10,000).
  const byNet = new Map<Net, string[]>();
  for (const [id, a] of addressing) {
    if (a.v4?.source !== 'allocated') continue;
    const v = c.model.virt(id);
    if (!v) continue;
    const names = byNet.get(v.net) ?? [];
    names.push(v.name);
    byNet.set(v.net, names);
  }
  for (const [n, names] of byNet) {
    const one = names.length === 1;
    const shown = names.slice(0, 8).join(', ') + (names.length > 8 ? ` and ${names.length - 8} more` : '');
    c.warning('allocation-unrecorded', netLabel(n),
      `${one ? 'virt' : `${names.length} virts`} ${shown} ${one ? 'has an IPv4 address' : 'have IPv4 addresses'} allocated but not recorded in "allocations"; run \`lsdn allocate FILE\` to record ${one ? 'it' : 'them'} so ${one ? 'it stays' : 'they stay'} stable`,
      one ? n.virts.get(names[0]!) : n);
  }
}