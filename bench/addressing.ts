/**
 * Plan time with addressing: the 10,000-virt model of the control benchmark (b: 100 physes,
 * 500 nets) with an IPv4 subnet on every net (addresses allocated, IPv6 SLAAC), planned for p0
 * against an empty host. Compares the two ways of feeding the compiler its addresses, in one
 * process, alternating, median of N:
 *
 *   twice  validate(), then compileHost() assigns the addresses again (before the review fix)
 *   once   validateWithAddressing() hands its assignment to compileHost() (planHost now)
 *
 * and, as root, `planHost` itself (read of an empty namespace + validate + compile + plan).
 *
 *   npx tsx bench/addressing.ts [--repeat N] [--quick]
 */
import { spawnSync } from 'node:child_process';
import { validate, validateWithAddressing } from '../src/validate/validate.js';
import { compileHost } from '../src/compile/compile.js';
import { HostState } from '../src/core/objects.js';
import { planChanges } from '../src/plan/plan.js';
import { planHost } from '../src/apply/host.js';
import { assignAddresses, numToV4, v4ToNum } from '../src/ipam/ipam.js';
import { Netmodel } from '../src/model/netmodel.js';
import { generate, specFor, LOCAL_PHYS, UNDERLAY_IF } from './models.js';
import { nsName } from './lib.js';

const argv = process.argv.slice(2);
const repeat = Number(argv[argv.indexOf('--repeat') + 1]) || 7;
const quick = argv.includes('--quick');
const g = generate(specFor('b', quick));
g.nets.forEach((n, i) => {
  n.setSubnet(4, { prefix: `10.${(i >> 8) & 255}.${i & 255}.0/24`, gateway: `10.${(i >> 8) & 255}.${i & 255}.1` });
  n.setSubnet(6, { prefix: `fd00:${i.toString(16)}::/64` });
});
const facts = { interfaces: new Set(['lo', UNDERLAY_IF, ...g.localIfs]), mtu: new Map([[UNDERLAY_IF, 1500]]) };
const now = () => performance.now();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function twice(): number {
  const t = now();
  validate(g.model, { physes: [LOCAL_PHYS], host: facts });
  planChanges(compileHost(g.model, LOCAL_PHYS, facts), new HostState(), { links: facts.interfaces });
  return now() - t;
}
function once(): number {
  const t = now();
  const { addressing } = validateWithAddressing(g.model, { physes: [LOCAL_PHYS], host: facts });
  planChanges(compileHost(g.model, LOCAL_PHYS, { ...facts, addressing }), new HostState(), { links: facts.interfaces });
  return now() - t;
}
function assign(): number {
  const t = now();
  assignAddresses(g.model);
  return now() - t;
}

const r = { twice: [] as number[], once: [] as number[], assign: [] as number[], planHost: [] as number[] };
twice();
once(); // warm-up
for (let i = 0; i < repeat; i++) {
  r.twice.push(twice());
  r.once.push(once());
  r.assign.push(assign());
}
if (process.getuid?.() === 0) {
  const ns = nsName('addr');
  spawnSync('ip', ['netns', 'add', ns]);
  try {
    spawnSync('ip', ['-n', ns, 'link', 'add', UNDERLAY_IF, 'type', 'veth', 'peer', 'name', `${UNDERLAY_IF}p`]);
    await planHost(g.model, { phys: LOCAL_PHYS, netns: ns });
    for (let i = 0; i < repeat; i++) {
      const t = now();
      await planHost(g.model, { phys: LOCAL_PHYS, netns: ns });
      r.planHost.push(now() - t);
    }
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}
// One net of 10,000 virts (half with recorded allocations) and a full /18 (16,390 virts, 9 get
// nothing): the single-net cases the ipam unit test checks for correctness.
function oneNet(): Netmodel {
  const m = new Netmodel('big');
  const n = m.addNet('x');
  n.setSubnet(4, { prefix: '10.0.0.0/16', pools: ['10.0.0.0/17'], reserved: ['10.0.0.0/24'] });
  n.setSubnet(6, { prefix: '2001:db8::/64' });
  for (let i = 0; i < 10000; i++) n.virt(`v${i}`, { mac: `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}` });
  for (let i = 0; i < 5000; i++) m.allocations.set(`x/v${i * 2}`, numToV4(v4ToNum('10.0.1.0')! + i));
  return m;
}
function fullPool(): Netmodel {
  const m = new Netmodel('full');
  const n = m.addNet('x');
  n.setSubnet(4, { prefix: '10.0.0.0/18' });
  for (let i = 0; i < 16390; i++) n.virt(`v${i}`);
  return m;
}
const single = { oneNet: [] as number[], fullPool: [] as number[] };
for (const [k, m] of [['oneNet', oneNet()], ['fullPool', fullPool()]] as const) {
  assignAddresses(m);
  for (let i = 0; i < repeat; i++) {
    const t = now();
    assignAddresses(m);
    single[k].push(now() - t);
  }
}
const ms = (x: number[]) => (x.length ? `${median(x).toFixed(1)} ms` : 'n/a (not root)');
process.stdout.write([
  `model: ${g.spec.label}, IPv4 /24 + IPv6 /64 on every net; p0 against an empty host; median of ${repeat}`,
  `  assignAddresses alone:                         ${ms(r.assign)}`,
  `  validate + compile + plan, addresses twice:    ${ms(r.twice)}`,
  `  validate + compile + plan, addresses once:     ${ms(r.once)}`,
  `  planHost (read + validate + compile + plan):   ${ms(r.planHost)}`,
  `one net, 10,000 virts (5,000 recorded), assignAddresses: ${ms(single.oneNet)}`,
  `a full /18, 16,390 virts (9 get none), assignAddresses:  ${ms(single.fullPool)}`,
  '',
].join('\n'));
