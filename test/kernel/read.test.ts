/**
 * The kernel reader against hand-built kernel state in test namespaces: the exact owned
 * objects come back, foreign ones never, the context filter works, and the number of
 * processes does not depend on the number of objects.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Kernel } from '../../src/kernel/exec.js';
import { parseNftTables } from '../../src/kinds/nft.js';
import { readHostState } from '../../src/kernel/read/host.js';
import type { KernelObject } from '../../src/core/objects.js';
import { HostState } from '../../src/core/objects.js';
import { isRoot, testNamespaces } from '../helpers/netns.js';

const nftInstalled = spawnSync('nft', ['--version']).status === 0;
const skip = !isRoot() ? 'needs root' : false;

const DEFAULT_PORT = { learning: true, flood: true, mcast_flood: true, bcast_flood: true, neigh_suppress: false, isolated: false };

function sorted(objects: KernelObject[]): KernelObject[] {
  return new HostState(objects).sorted();
}

describe('readHostState', { skip }, () => {
  it('reads exactly the owned objects, with the attrs vocabulary of the type plug-ins', async (t) => {
    const ns = await testNamespaces(t, 'read');
    const a = await ns.add('a');
    const b = await ns.add('b');
    // Underlay: eth0 (a) <-> peer0 (b).
    ns.sh(a, [
      `ip link add eth0 type veth peer name peer0 netns ${b}`,
      'ip addr add 10.0.0.1/24 dev eth0',
      'ip link set eth0 up',
    ].join(' && '));
    ns.sh(b, ['ip addr add 10.0.0.2/24 dev peer0', 'ip link set peer0 up'].join(' && '));

    ns.sh(a, [
      // Owned bridge of context ctxA with an owned static VXLAN port.
      'ip link add lsbr-a type bridge',
      'ip link set lsbr-a alias lsdn:ctxA:net:a mtu 1400 up',
      'ip link add lsx-a type vxlan id 100 local 10.0.0.1 dev eth0 dstport 4789 nolearning',
      'ip link set lsx-a alias lsdn:ctxA:net:a:vxlan mtu 1400 master lsbr-a up',
      'bridge link set dev lsx-a learning off flood off neigh_suppress on',
      // A foreign VM port on it.
      'ip link add vm1 type veth peer name vm1p',
      'ip link set vm1 mtu 1400 master lsbr-a up',
      'ip addr add 10.99.0.2/24 dev vm1p',
      'ip link set vm1p up',
      // Owned multicast VXLAN (down, not enslaved, ttl, learning), vxvde-like, unicast-remote.
      'ip link add lsx-m type vxlan id 101 group 239.1.1.1 dev eth0 dstport 4789 ttl 5 learning',
      'ip link set lsx-m alias lsdn:ctxA:net:m:vxlan',
      'ip link add lsx-v type vxlan id 102 group 239.0.0.1 dev eth0 dstport 14789 srcport 14789 14790 ttl 1 nolearning',
      'ip link set lsx-v alias lsdn:ctxA:net:v:vxlan',
      'ip link add lsx-r type vxlan id 103 remote 10.0.0.9 local 10.0.0.1 dstport 4790 nolearning',
      'ip link set lsx-r alias lsdn:ctxA:net:r:vxlan mtu 1400',
      // Owned learning VXLAN toward b, with an address (learned entries will appear on it).
      'ip link add lsx-l type vxlan id 104 local 10.0.0.1 dev eth0 dstport 4789 learning',
      'ip link set lsx-l alias lsdn:ctxA:net:l:vxlan mtu 1400 up',
      'ip addr add 10.201.0.1/24 dev lsx-l',
      'bridge fdb append 00:00:00:00:00:00 dev lsx-l dst 10.0.0.2 self permanent',
      // Owned bridge of another context, with its port.
      'ip link add lsbr-b type bridge',
      'ip link set lsbr-b alias lsdn:ctxB:net:b mtu 1500',
      'ip link add vm2 type veth peer name vm2p',
      'ip link set vm2 master lsbr-b',
      // Foreign: wrong prefix with an lsdn alias, right prefix with a foreign alias, a foreign
      // VXLAN with FDB entries, a foreign bridge with a port and static entries.
      'ip link add brx type bridge',
      'ip link set brx alias lsdn:ctxA:net:x',
      'ip link add lsfake type bridge',
      'ip link set lsfake alias something-else',
      'ip link add vxf type vxlan id 200 local 10.0.0.1 dev eth0 dstport 4789 nolearning',
      'bridge fdb append 00:00:00:00:00:00 dev vxf dst 10.0.0.5 self permanent',
      'bridge fdb add 52:54:00:00:02:01 dev vxf dst 10.0.0.5 self permanent',
      'ip link add brf type bridge',
      'ip link add vm3 type veth peer name vm3p',
      'ip link set vm3 master brf',
      'bridge fdb add 52:54:00:00:03:01 dev vm3 master static',
      // FDB of the owned VXLAN: flood entries, a MAC, a MAC with another port, one with the
      // device's own port (no port attribute), a static one, a dynamic one (not programmed).
      'bridge fdb append 00:00:00:00:00:00 dev lsx-a dst 10.0.0.2 self permanent',
      'bridge fdb append 00:00:00:00:00:00 dev lsx-a dst 10.0.0.3 self permanent',
      'bridge fdb add 52:54:00:00:00:01 dev lsx-a dst 10.0.0.2 self permanent',
      'bridge fdb add 52:54:00:00:00:02 dev lsx-a dst 10.0.0.3 port 5555 self permanent',
      'bridge fdb add 52:54:00:00:00:03 dev lsx-a dst 10.0.0.3 port 4789 self permanent',
      'bridge fdb add 52:54:00:00:00:04 dev lsx-a dst 10.0.0.3 self static',
      'bridge fdb add 52:54:00:00:00:05 dev lsx-a dst 10.0.0.3 self dynamic',
      // Bridge entries: static ones (owned), a permanent one (not lsdn's kind), and vm2's.
      'bridge fdb add 52:54:00:00:00:01 dev lsx-a master static',
      'bridge fdb add 52:54:00:00:01:01 dev vm1 master static',
      'bridge fdb add 52:54:00:00:01:02 dev vm1 master',
      'bridge fdb add 52:54:00:00:04:01 dev vm2 master static',
      // Neighbours: permanent on an owned link (kept), reachable (not), permanent on a foreign one (not).
      // The reachable one (like the pings below) needs room in the machine-wide ARP table, which
      // other namespaces fill: testNamespaces raises its limit (see ensureNeighbourTableRoom).
      'ip neigh add 10.99.0.50 lladdr 52:54:00:00:00:50 dev lsbr-a nud permanent',
      'ip neigh add 10.99.0.51 lladdr 52:54:00:00:00:51 dev lsbr-a nud reachable',
      'ip neigh add 10.0.0.50 lladdr 52:54:00:00:00:52 dev eth0 nud permanent',
      // Addresses on owned links (IPv4, IPv6; the IPv6 link-local one is not reported).
      'ip addr add 10.99.0.1/24 dev lsbr-a',
      'ip addr add fd00:99::1/64 dev lsbr-a',
    ].join(' && '));

    // Learned entries: b's VXLAN talks to lsx-a's sibling lsx-l; a learns b's MAC (dynamic
    // VXLAN entry, not permanent neighbour); vm1p's ARP teaches the bridge a MAC on vm1.
    ns.sh(b, [
      'ip link add vx type vxlan id 104 local 10.0.0.2 dev peer0 dstport 4789 learning',
      'bridge fdb append 00:00:00:00:00:00 dev vx dst 10.0.0.1 self permanent',
      'ip addr add 10.201.0.2/24 dev vx',
      'ip link set vx mtu 1400 up',
      'ping -c1 -W2 10.201.0.1',
    ].join(' && '));
    ns.sh(a, 'ping -c1 -W1 -I vm1p 10.99.0.77 || true');
    const bMac = JSON.parse(ns.sh(b, 'ip -j link show vx'))[0].address as string;
    const vm1pMac = JSON.parse(ns.sh(a, 'ip -j link show vm1p'))[0].address as string;
    const rawFdb = JSON.parse(ns.sh(a, 'bridge -j fdb show')) as { mac: string; ifname: string; state: string }[];
    assert.ok(rawFdb.some((e) => e.mac === bMac && e.ifname === 'lsx-l' && e.state === ''), 'a learned VXLAN entry exists');
    assert.ok(rawFdb.some((e) => e.mac === vm1pMac && e.ifname === 'vm1' && e.state === ''), 'a learned bridge entry exists');

    const nftTables: KernelObject[] = [];
    if (nftInstalled) {
      ns.sh(a, `nft -f - <<'EOF'
table bridge lsdn {
  chain forward { type filter hook forward priority 0; policy accept;
    iifname "vm1" ether saddr != 52:54:00:00:01:01 drop
    ether type arp counter accept
  }
  chain other { ip saddr 10.0.0.0/8 accept; }
}
table inet lsdn_ctxA { chain input { type filter hook input priority 0; policy accept; }; }
table inet foreign { chain c { ip saddr 10.0.0.1 drop; }; }
EOF`);
      nftTables.push(
        {
          kind: 'nft', family: 'bridge', name: 'lsdn',
          chains: {
            forward: [
              'type filter hook forward priority 0; policy accept;',
              'iifname "vm1" ether saddr != 52:54:00:00:01:01 drop',
              'ether type arp counter accept',
            ],
            other: ['ip saddr 10.0.0.0/8 accept'],
          },
        },
        { kind: 'nft', family: 'inet', name: 'lsdn_ctxA', chains: { input: ['type filter hook input priority filter; policy accept;'] } },
      );
    }

    const ctxA: KernelObject[] = [
      { kind: 'link', name: 'lsbr-a', type: 'bridge', alias: 'lsdn:ctxA:net:a', up: true, mtu: 1400, attrs: {} },
      {
        kind: 'link', name: 'lsx-a', type: 'vxlan', alias: 'lsdn:ctxA:net:a:vxlan', up: true, mtu: 1400, master: 'lsbr-a',
        brport: { learning: false, flood: false, mcast_flood: true, bcast_flood: true, neigh_suppress: true, isolated: false },
        attrs: { id: 100, local: '10.0.0.1', dev: 'eth0', dstport: 4789, learning: false },
      },
      {
        kind: 'link', name: 'lsx-m', type: 'vxlan', alias: 'lsdn:ctxA:net:m:vxlan', up: false, mtu: 1450,
        attrs: { id: 101, group: '239.1.1.1', dev: 'eth0', ttl: 5, dstport: 4789, learning: true },
      },
      {
        kind: 'link', name: 'lsx-v', type: 'vxlan', alias: 'lsdn:ctxA:net:v:vxlan', up: false, mtu: 1450,
        attrs: { id: 102, group: '239.0.0.1', dev: 'eth0', ttl: 1, dstport: 14789, srcport: '14789 14790', learning: false },
      },
      {
        kind: 'link', name: 'lsx-r', type: 'vxlan', alias: 'lsdn:ctxA:net:r:vxlan', up: false, mtu: 1400,
        attrs: { id: 103, remote: '10.0.0.9', local: '10.0.0.1', dstport: 4790, learning: false },
      },
      {
        kind: 'link', name: 'lsx-l', type: 'vxlan', alias: 'lsdn:ctxA:net:l:vxlan', up: true, mtu: 1400,
        attrs: { id: 104, local: '10.0.0.1', dev: 'eth0', dstport: 4789, learning: true },
      },
      { kind: 'port', name: 'vm1', master: 'lsbr-a', up: true, mtu: 1400, brport: DEFAULT_PORT },
      { kind: 'fdb', dev: 'lsx-a', mac: '00:00:00:00:00:00', dst: '10.0.0.2', table: 'self' },
      { kind: 'fdb', dev: 'lsx-a', mac: '00:00:00:00:00:00', dst: '10.0.0.3', table: 'self' },
      { kind: 'fdb', dev: 'lsx-a', mac: '52:54:00:00:00:01', dst: '10.0.0.2', table: 'self' },
      { kind: 'fdb', dev: 'lsx-a', mac: '52:54:00:00:00:02', dst: '10.0.0.3', port: 5555, table: 'self' },
      { kind: 'fdb', dev: 'lsx-a', mac: '52:54:00:00:00:03', dst: '10.0.0.3', table: 'self' },
      { kind: 'fdb', dev: 'lsx-a', mac: '52:54:00:00:00:04', dst: '10.0.0.3', table: 'self' },
      { kind: 'fdb', dev: 'lsx-l', mac: '00:00:00:00:00:00', dst: '10.0.0.2', table: 'self' },
      { kind: 'fdb', dev: 'lsx-a', mac: '52:54:00:00:00:01', table: 'master' },
      { kind: 'fdb', dev: 'vm1', mac: '52:54:00:00:01:01', table: 'master' },
      { kind: 'neigh', dev: 'lsbr-a', ip: '10.99.0.50', mac: '52:54:00:00:00:50' },
      { kind: 'addr', dev: 'lsbr-a', prefix: '10.99.0.1/24' },
      { kind: 'addr', dev: 'lsbr-a', prefix: 'fd00:99::1/64' },
      { kind: 'addr', dev: 'lsx-l', prefix: '10.201.0.1/24' },
    ];
    const ctxB: KernelObject[] = [
      { kind: 'link', name: 'lsbr-b', type: 'bridge', alias: 'lsdn:ctxB:net:b', up: false, mtu: 1500, attrs: {} },
      { kind: 'port', name: 'vm2', master: 'lsbr-b', up: false, mtu: 1500, brport: DEFAULT_PORT },
      { kind: 'fdb', dev: 'vm2', mac: '52:54:00:00:04:01', table: 'master' },
    ];

    const kernel = new Kernel({ netns: a });
    // A context owns the tables named lsdn_<context>; `lsdn` and other contexts' tables are not its.
    const ofCtx = (c: string) => nftTables.filter((o) => o.kind === 'nft' && o.name === `lsdn_${c}`);
    const onlyA = await readHostState(kernel, { context: 'ctxA' });
    assert.deepEqual(onlyA.state.sorted(), sorted([...ctxA, ...ofCtx('ctxA')]));

    const onlyB = await readHostState(kernel, { context: 'ctxB' });
    assert.deepEqual(onlyB.state.sorted(), sorted([...ctxB, ...ofCtx('ctxB')]));

    const all = await readHostState(kernel);
    assert.deepEqual(all.state.sorted(), sorted([...ctxA, ...ctxB, ...nftTables]));

    // Nothing foreign leaks in, whatever the kind.
    const foreign = ['eth0', 'brx', 'lsfake', 'vxf', 'brf', 'vm3', 'vm1p', 'lo'];
    for (const o of all.state.objects.values()) {
      const names = o.kind === 'link' || o.kind === 'port' || o.kind === 'dhcp' || o.kind === 'tap' ? [o.name] : o.kind === 'nft' || o.kind === 'sysctl' ? [] : [o.dev];
      for (const n of names) assert.ok(!foreign.includes(n), `foreign ${n} in state: ${JSON.stringify(o)}`);
      if (o.kind === 'fdb') assert.notEqual(o.mac, bMac);
      if (o.kind === 'fdb') assert.notEqual(o.mac, vm1pMac);
    }

    // Facts cover every link, owned or not.
    const eth0 = all.links.get('eth0');
    assert.ok(eth0);
    assert.equal(eth0.type, 'veth');
    assert.equal(eth0.mtu, 1500);
    assert.equal(eth0.up, true);
    assert.ok(eth0.addresses.includes('10.0.0.1/24'));
    assert.match(eth0.mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.equal(all.links.get('vm1')?.master, 'lsbr-a');
    assert.equal(all.links.get('lsbr-a')?.alias, 'lsdn:ctxA:net:a');
    assert.equal(all.links.get('lo')?.type, undefined);
    assert.ok(all.links.has('vxf') && all.links.has('lsfake') && all.links.has('vm3p'));
  });

  it('uses a constant number of processes (3 vs 30 FDB entries)', async (t) => {
    const ns = await testNamespaces(t, 'readn');
    const a = await ns.add('a');
    ns.sh(a, [
      'ip link add eth0 type veth peer name eth1',
      'ip addr add 10.0.0.1/24 dev eth0',
      'ip link add lsbr type bridge',
      'ip link set lsbr alias lsdn:c:net:n up',
      'ip link add lsx type vxlan id 7 local 10.0.0.1 dev eth0 dstport 4789 nolearning',
      'ip link set lsx alias lsdn:c:net:n:vxlan master lsbr up',
    ].join(' && '));
    const entries = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => {
        const x = (from + i).toString(16).padStart(2, '0');
        return `fdb add 52:54:00:00:10:${x} dev lsx dst 10.0.1.${from + i} self permanent\nfdb add 52:54:00:00:10:${x} dev lsx master static`;
      }).join('\n');
    ns.sh(a, `bridge -batch - <<'EOF'\n${entries(1, 3)}\nEOF`);

    const k3 = new Kernel({ netns: a });
    const r3 = await readHostState(k3);
    ns.sh(a, `bridge -batch - <<'EOF'\n${entries(4, 27)}\nEOF`);
    const k30 = new Kernel({ netns: a });
    const r30 = await readHostState(k30);

    const fdbCount = (s: HostState) => [...s.objects.values()].filter((o) => o.kind === 'fdb').length;
    assert.equal(fdbCount(r3.state), 6);
    assert.equal(fdbCount(r30.state), 60);
    assert.equal(k30.stats.processes, k3.stats.processes);
    assert.ok(k3.stats.processes <= 5, `processes: ${k3.stats.processes}`);
    assert.equal(k3.stats.operations, 0, 'reading changes nothing');
  });

  it('returns no nft objects when nft is not installed', async (t) => {
    const ns = await testNamespaces(t, 'readnonft');
    const a = await ns.add('a');
    // An owned table exists, but nft cannot be run: the reader must not fail, only report no tables.
    if (nftInstalled) ns.sh(a, 'nft add table bridge lsdn');
    const saved = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const kernel = new Kernel({ netns: a });
      // `ip` itself must still be found: run it by absolute path through a wrapper kernel.
      const ipPath = spawnSync('sh', ['-c', 'command -v ip'], { env: { PATH: saved }, encoding: 'utf8' }).stdout.trim();
      const bridgePath = spawnSync('sh', ['-c', 'command -v bridge'], { env: { PATH: saved }, encoding: 'utf8' }).stdout.trim();
      const orig = kernel.argv.bind(kernel);
      kernel.argv = (tool: string, args: string[]) => {
        const argv = orig(tool, args);
        if (argv[0] === 'ip') argv[0] = ipPath;
        if (argv[0] === 'bridge') argv[0] = bridgePath;
        return argv;
      };
      const r = await readHostState(kernel);
      assert.equal(r.state.size, 0);
      assert.ok(r.links.has('lo'));
    } finally {
      process.env.PATH = saved;
    }
  });
});

describe('parseNftTables', () => {
  it('keeps the wanted tables, their chains and trimmed body lines, and the declarations of their sets (not their elements)', () => {
    const text = [
      'table bridge lsdn {',
      '\tset macs {',
      '\t\ttype ether_addr',
      '\t\telements = { 52:54:00:00:00:01, 52:54:00:00:00:02,',
      '\t\t\t     52:54:00:00:00:03 }',
      '\t}',
      '',
      '\tchain forward {',
      '\t\ttype filter hook forward priority 0; policy accept;',
      '\t\tether daddr @macs accept',
      '\t\tip saddr { 10.0.0.1, 10.0.0.2 } drop',
      '\t}',
      '}',
      'table inet foreign {',
      '\tchain c {',
      '\t\tdrop',
      '\t}',
      '}',
      'table netdev lsdn_x {',
      '\tchain empty {',
      '\t}',
      '}',
    ].join('\n');
    const got = parseNftTables(text, (_f, n) => n.startsWith('lsdn'));
    assert.deepEqual(got, [
      {
        kind: 'nft', family: 'bridge', name: 'lsdn',
        sets: { 'set macs': ['type ether_addr'] },
        chains: { forward: ['type filter hook forward priority 0; policy accept;', 'ether daddr @macs accept', 'ip saddr { 10.0.0.1, 10.0.0.2 } drop'] },
      },
      { kind: 'nft', family: 'netdev', name: 'lsdn_x', chains: { empty: [] } },
    ]);
  });
});
