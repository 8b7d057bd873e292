/**
 * Hypervisor hooks (issue 11): a VM whose interface appears after the last full apply is
 * wired by a virt-scoped apply (src/apply/virt.ts) that costs the same kernel operations and
 * processes at 10 and at 200 virts, and leaves the host exactly as a full apply would (a full
 * plan afterwards is empty). The example hook scripts (examples/hooks/) drive the CLI: qemu's
 * ifup/ifdown with the interface name, libvirt's with the domain XML on stdin.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelText } from '../../src/file/load.js';
import { applyHost, destroyHost, planHost } from '../../src/apply/host.js';
import { hostsFilePath, serverOfBridge } from '../../src/vm/serving.js';
import { ownedIfname } from '../../src/core/names.js';
import { applyVirt, virtByInterface } from '../../src/apply/virt.js';
import { Kernel } from '../../src/kernel/exec.js';
import type { Netmodel } from '../../src/model/netmodel.js';
import { isRoot, testNamespaces, type TestNamespaces } from '../helpers/netns.js';

const skip = !isRoot() ? 'needs root' : false;
const ROOT = new URL('../..', import.meta.url).pathname;

const mac = (i: number) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

/** n virts over physes a and b (veths v<i>), plus virt "vm" on a: interface vmtap, rate limits both ways, a rule. */
function doc(n: number, vm: Record<string, unknown> = {}): Record<string, unknown> {
  const virts: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) virts[`vm${i}`] = { phys: i % 2 ? 'b' : 'a', if: `v${i}`, mac: mac(i), ip: `10.9.${i >> 8}.${(i & 255) + 1}/16` };
  virts.vm = {
    phys: 'a', if: 'vmtap', mac: '52:54:00:aa:00:01', ip: '10.9.100.1/16',
    rate: { in: { avg: '10mbit', burst: '64kb' }, out: { avg: '5mbit', burst: '32kb' } },
    rules: [{ dir: 'in', priority: 10, action: 'drop', proto: 'tcp', dstPort: 23 }],
    ...vm,
  };
  return {
    name: 'hk',
    settings: { default: { type: 'vxlan/static' } },
    physes: { a: { if: 'eth0', ip: '10.78.0.1' }, b: { if: 'eth0', ip: '10.78.0.2' } },
    nets: { big: { vid: 780, virts } },
  };
}

function load(d: unknown): Netmodel {
  const { model, problems } = loadModelText(JSON.stringify(d), 'hooks.yaml');
  assert.ok(model, JSON.stringify(problems));
  assert.deepEqual(problems.filter((p) => p.severity === 'error'), []);
  return model;
}

async function host(nss: TestNamespaces, name: string, ip: string, ifs: string[]): Promise<string> {
  const ns = await nss.add(name);
  await new Kernel({ netns: ns }).batch('ip', ['link add eth0 type veth peer name eth0p', `addr add ${ip}/24 dev eth0`, 'link set eth0 up', 'link set eth0p up']);
  if (ifs.length) {
    const r = spawnSync('ip', ['-n', ns, '-batch', '-'], { input: ifs.map((i) => `link add ${i} type veth peer name ${i}p`).join('\n') + '\n', encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
  return ns;
}

function sh(ns: string, command: string): string {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'sh', '-c', command], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`in ${ns}: ${command}: ${r.stderr}`);
  return r.stdout;
}

function linkOf(ns: string, dev: string): { master?: string; mtu: number; flags: string[] } {
  return (JSON.parse(sh(ns, `ip -j link show dev ${dev}`)) as { master?: string; mtu: number; flags: string[] }[])[0]!;
}

describe('hypervisor hooks: virt-scoped apply', { skip }, () => {
  it('wires a VM started after the apply in the same operations at 10 and 200 virts, as a full apply would', async (t) => {
    const measured: Record<number, Record<string, [number, number]>> = {};
    for (const n of [10, 200]) {
      const nss = await testNamespaces(t, `hook${n}`);
      const idx = (p: string) => Array.from({ length: n }, (_, i) => i).filter((i) => (i % 2 ? 'b' : 'a') === p);
      const a = await host(nss, 'a', '10.78.0.1', idx('a').map((i) => `v${i}`));
      const b = await host(nss, 'b', '10.78.0.2', idx('b').map((i) => `v${i}`));
      const model = load(doc(n));
      for (const [phys, ns] of [['a', a], ['b', b]] as const) {
        const r = await applyHost(model, { phys, netns: ns });
        const notDone = r.report.results.filter((x) => x.status !== 'done').map((x) => x.step.key);
        // Only the VM's own steps wait for its interface.
        assert.ok(notDone.every((k) => k.includes('vmtap')), `${phys}: ${notDone.join(', ')}`);
      }
      const vm = virtByInterface(model, 'vmtap', 'a')!;
      assert.equal(vm.id, 'big/vm');
      const m: Record<string, [number, number]> = {};

      // The hypervisor makes the tap (as libvirt or qemu's own helper would), then the hook runs.
      sh(a, 'ip tuntap add dev vmtap mode tap');
      let kernel = new Kernel({ netns: a });
      let r = await applyVirt(model, vm, { netns: a, kernel });
      assert.ok(r.report.ok, JSON.stringify(r.report.results.filter((x) => x.status !== 'done')));
      m.up = [r.report.operations, kernel.stats.processes];
      t.diagnostic(`${n} virts: hook up: ${r.report.operations} operations, ${kernel.stats.processes} processes: ${r.plan.steps.map((s) => s.key).join('; ')}`);
      assert.deepEqual((await planHost(model, { phys: 'a', netns: a })).plan.steps, [], 'after the hook, a full apply has nothing to do');
      assert.ok(linkOf(a, 'vmtap').master?.startsWith('lsb-'));

      // Again: nothing to do, still a constant number of reads.
      kernel = new Kernel({ netns: a });
      r = await applyVirt(model, vm, { netns: a, kernel });
      assert.deepEqual(r.plan.steps, []);
      m.noop = [r.report.operations, kernel.stats.processes];

      // The VM stops: its adopted interface leaves the bridge (with the FDB entry, qdiscs).
      kernel = new Kernel({ netns: a });
      r = await applyVirt(model, vm, { netns: a, kernel, mode: 'down' });
      assert.ok(r.report.ok, JSON.stringify(r.report.results.filter((x) => x.status !== 'done')));
      m.down = [r.report.operations, kernel.stats.processes];
      assert.equal(linkOf(a, 'vmtap').master, undefined);
      const back = (await planHost(model, { phys: 'a', netns: a })).plan.steps.map((s) => s.key);
      assert.ok(back.includes('port vmtap') && back.every((k) => k.includes('vmtap')), back.join(', '));
      measured[n] = m;
      nss.cleanup();
    }
    assert.deepEqual(measured[200], measured[10], 'operations and processes do not depend on the model size');
    const [ops, procs] = measured[10]!.up!;
    assert.ok(ops > 0 && ops <= 12, `up: ${ops} operations`);
    assert.ok(procs <= 14, `up: ${procs} processes`);
    assert.equal(measured[10]!.noop![0], 0);
  });

  it('a `tap` virt: lsdn makes the tap; changing its owner recreates it, refused while a VM holds it', async (t) => {
    const nss = await testNamespaces(t, 'hooktap');
    const a = await host(nss, 'a', '10.78.0.1', ['v0', 'vfor']);
    const d = doc(1, { tap: { user: 'nobody', queues: 2 } });
    let model = load(d);
    const r = await applyHost(model, { phys: 'a', netns: a });
    assert.ok(r.report.ok, JSON.stringify(r.report.results.filter((x) => x.status !== 'done')));
    const info = () => (JSON.parse(sh(a, 'ip -d -j link show dev vmtap')) as { ifalias?: string; master?: string; linkinfo: { info_data: Record<string, unknown> } }[])[0]!;
    assert.equal(info().linkinfo.info_data.user, 'nobody');
    assert.equal(info().linkinfo.info_data.multi_queue, true);
    assert.equal(info().ifalias, 'lsdn:hk:tap:big/vm');
    assert.deepEqual((await planHost(model, { phys: 'a', netns: a })).plan.steps, []);

    // Owner changes: nothing holds the tap, so it is recreated and wired again.
    (d.nets as { big: { virts: { vm: { tap: unknown } } } }).big.virts.vm.tap = { user: 'root', queues: 2 };
    model = load(d);
    const p = await planHost(model, { phys: 'a', netns: a });
    assert.ok(p.plan.steps.some((s) => s.key === 'tap vmtap' && s.action === 'recreate'), JSON.stringify(p.plan.steps));
    const r2 = await applyHost(model, { phys: 'a', netns: a });
    assert.ok(r2.report.ok, JSON.stringify(r2.report.results.filter((x) => x.status !== 'done')));
    assert.equal(info().linkinfo.info_data.user, 'root');
    assert.ok(info().master?.startsWith('lsb-'));
    assert.deepEqual((await planHost(model, { phys: 'a', netns: a })).plan.steps, []);

    // A foreign interface of that name is never taken over or deleted.
    const model2 = load(doc(1, { if: 'vfor', tap: true }));
    const p2 = await planHost(model2, { phys: 'a', netns: a });
    const tapStep = p2.plan.steps.find((s) => s.key === 'tap vfor');
    assert.match(tapStep?.blocked ?? '', /not a tap of lsdn's/);
    assert.ok(!p2.plan.steps.some((s) => s.commands.some((c) => /(link del|tuntap \S+) dev vfor\b/.test(c.line))));
  });

  it('the example hook scripts drive the CLI (qemu ifup/ifdown, libvirt with the domain XML)', async (t) => {
    const nss = await testNamespaces(t, 'hookcli');
    const a = await host(nss, 'a', '10.78.0.1', ['v0']);
    const dir = mkdtempSync(join(tmpdir(), 'lsdn-hooks-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'netmodel.json');
    writeFileSync(file, JSON.stringify(doc(1)));
    const model = load(doc(1));
    await applyHost(model, { phys: 'a', netns: a });
    // `lsdn` on PATH: this checkout, run from source.
    writeFileSync(join(dir, 'lsdn'), `#!/bin/sh\nexec ${process.execPath} --import tsx -e "const m = await import('${ROOT}src/cli/main.ts'); process.exitCode = await m.main(process.argv.slice(1));" --input-type=module -- "$@"\n`);
    chmodSync(join(dir, 'lsdn'), 0o755);
    const env = { ...process.env, PATH: `${dir}:${process.env.PATH}`, LSDN_MODEL: file, LSDN_NETNS: a, LSDN_PHYS: 'a' };
    const run = (script: string, args: string[], input = '') =>
      spawnSync(join(ROOT, 'examples/hooks', script), args, { env, input, encoding: 'utf8', cwd: ROOT, timeout: 60_000 });

    sh(a, 'ip tuntap add dev vmtap mode tap');
    let r = run('qemu-ifup', ['vmtap']);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.ok(linkOf(a, 'vmtap').master?.startsWith('lsb-'), r.stderr);
    r = run('qemu-ifdown', ['vmtap']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(linkOf(a, 'vmtap').master, undefined);

    const xml = `<domain type='kvm'><name>vm</name><devices>
      <interface type='ethernet'><mac address='52:54:00:aa:00:01'/><target dev='vmtap' managed='no'/><model type='virtio'/></interface>
      <interface type='network'><source network='default'/><target dev='vnet9'/></interface>
    </devices></domain>`;
    r = run('libvirt-qemu', ['vm', 'prepare', 'begin', '-'], xml);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(linkOf(a, 'vmtap').master?.startsWith('lsb-'));
    assert.match(r.stderr, /vnet9 is no virt's interface/);
    r = run('libvirt-qemu', ['vm', 'migrate', 'begin', '-'], xml);
    assert.equal(r.status, 0, r.stderr);
    r = run('libvirt-qemu', ['vm', 'release', 'end', '-'], xml);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(linkOf(a, 'vmtap').master, undefined);
  });

  it('numeric tap owners (user: 0, group: 0) are no change once applied (iproute2 prints "root")', async (t) => {
    const nss = await testNamespaces(t, 'hooknum');
    const a = await host(nss, 'a', '10.78.0.1', ['v0']);
    const model = load(doc(1, { tap: { user: 0, group: 0 } }));
    const r = await applyHost(model, { phys: 'a', netns: a });
    assert.ok(r.report.ok, JSON.stringify(r.report.results.filter((x) => x.status !== 'done')));
    const data = (JSON.parse(sh(a, 'ip -d -j link show dev vmtap')) as { linkinfo: { info_data: Record<string, unknown> } }[])[0]!.linkinfo.info_data;
    assert.equal(data.user, 'root', 'iproute2 prints the name of uid 0');
    assert.deepEqual((await planHost(model, { phys: 'a', netns: a })).plan.steps, [], 'a second apply has nothing to do');
    const vm = virtByInterface(model, 'vmtap', 'a')!;
    assert.deepEqual((await applyVirt(model, vm, { netns: a })).plan.steps, [], 'nor has the hook');
  });

  it('a tap no longer lsdn\'s (`tap` removed) is kept while a VM holds it, deleted once it stops, and by destroy', async (t) => {
    const nss = await testNamespaces(t, 'hookheld');
    const a = await host(nss, 'a', '10.78.0.1', ['v0']);
    const withTap = load(doc(1, { tap: true }));
    assert.ok((await applyHost(withTap, { phys: 'a', netns: a })).report.ok);
    // A "VM": a process that attaches to the tap (TUNSETIFF, IFF_TAP | IFF_NO_PI), as qemu does.
    const holders: ReturnType<typeof spawn>[] = [];
    t.after(() => { for (const h of holders) if (h.exitCode === null && h.signalCode === null && h.pid) process.kill(h.pid); });
    const hold = async () => {
      const h = spawn('ip', ['netns', 'exec', a, 'perl', '-e',
        'use Fcntl; sysopen(my $f, "/dev/net/tun", O_RDWR) or die "open: $!"; my $r = pack("a16 s x22", "vmtap", 0x1002); ioctl($f, 0x400454ca, $r) or die "ioctl: $!"; $| = 1; print "held\\n"; sleep 300;'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
      holders.push(h);
      let err = '';
      h.stderr!.on('data', (d: Buffer) => { err += String(d); });
      await new Promise<void>((ok, fail) => {
        h.stdout!.on('data', (d: Buffer) => { if (String(d).includes('held')) ok(); });
        h.on('exit', (c) => fail(new Error(`tap holder exited ${c}: ${err}`)));
      });
      return h;
    };
    const release = async (h: ReturnType<typeof spawn>) => {
      const gone = new Promise((ok) => h.on('exit', ok));
      process.kill(h.pid!);
      await gone;
    };
    let h = await hold();
    assert.ok(linkOf(a, 'vmtap').flags.includes('LOWER_UP'), 'the holder gives the tap its carrier');

    const adopted = load(doc(1));
    let p = await planHost(adopted, { phys: 'a', netns: a });
    const step = p.plan.steps.find((s) => s.key === 'tap vmtap');
    assert.equal(step?.action, 'delete');
    assert.match(step?.blocked ?? '', /running VM holds it/);
    assert.deepEqual(p.plan.steps.filter((s) => !s.blocked), [], 'nothing else changes');
    await applyHost(adopted, { phys: 'a', netns: a });
    assert.ok(linkOf(a, 'vmtap').master?.startsWith('lsb-'), 'the VM stays wired');

    await release(h);
    p = await planHost(adopted, { phys: 'a', netns: a });
    assert.deepEqual(p.plan.steps.find((s) => s.key === 'tap vmtap')?.commands.map((c) => c.line), ['link del dev vmtap']);
    assert.match(p.plan.steps.find((s) => s.key === 'port vmtap')?.blocked ?? '', /does not exist/);
    const r = await applyHost(adopted, { phys: 'a', netns: a });
    assert.ok(r.report.results.every((x) => x.status === 'done' || x.step.blocked), JSON.stringify(r.report.results.filter((x) => x.status !== 'done')));
    assert.ok(!sh(a, 'ip -j link show').includes('"vmtap"'), 'deleted once the VM stopped');

    // Destroy takes it even while held.
    assert.ok((await applyHost(withTap, { phys: 'a', netns: a })).report.ok);
    h = await hold();
    const d = await destroyHost({ netns: a });
    assert.ok(d.report.ok, JSON.stringify(d.report.results.filter((x) => x.status !== 'done')));
    assert.ok(!sh(a, 'ip -j link show').includes('"vmtap"'), 'destroy deletes a held tap');
    await release(h);
  });

  it('refuses a virt the net\'s address server does not know yet (no firewall chains of its own)', { skip: !existsSync('/usr/sbin/dnsmasq') ? 'needs dnsmasq (Debian dnsmasq-base)' : false }, async (t) => {
    const nss = await testNamespaces(t, 'hooksrv');
    const a = await host(nss, 'a', '10.78.0.1', ['vold', 'vnew']);
    const served = (withNew: boolean) => load({
      name: 'hs',
      settings: { default: { type: 'vxlan/static' } },
      physes: { a: { if: 'eth0', ip: '10.78.0.1' } },
      nets: {
        srv: {
          vid: 781,
          ipv4: { subnet: '10.77.0.0/24', gateway: '10.77.0.1' },
          virts: {
            old: { phys: 'a', if: 'vold', mac: '02:00:00:77:00:01', ip: '10.77.0.11/24' },
            ...(withNew ? { new: { phys: 'a', if: 'vnew', mac: '02:00:00:77:00:02', ip: '10.77.0.12/24', antiSpoof: false } } : {}),
          },
        },
      },
    });
    try {
      const r = await applyHost(served(false), { phys: 'a', netns: a });
      assert.ok(r.report.ok, JSON.stringify(r.report.results.filter((x) => x.status !== 'done')));
      const model = served(true);
      const vm = virtByInterface(model, 'vnew', 'a')!;
      await assert.rejects(applyVirt(model, vm, { netns: a }), /(address server|firewall) .*run `lsdn apply`|run `lsdn apply`/);
      assert.equal(linkOf(a, 'vnew').master, undefined, 'not wired');
      // After the full apply the hook has nothing to do...
      const r2 = await applyHost(model, { phys: 'a', netns: a });
      assert.ok(r2.report.ok, JSON.stringify(r2.report.results.filter((x) => x.status !== 'done')));
      assert.deepEqual((await applyVirt(model, vm, { netns: a })).plan.steps, []);
      // ...and a hosts file without the virt (drift) is refused by the server check itself.
      const p = await planHost(model, { phys: 'a', netns: a });
      const file = hostsFilePath(serverOfBridge(p.desired, ownedIfname('hs', 'b', 'srv'))!)!;
      const text = readFileSync(file, 'utf8');
      assert.match(text, /02:00:00:77:00:02,10\.77\.0\.12/);
      writeFileSync(file, text.split('\n').filter((l) => !l.startsWith('02:00:00:77:00:02')).join('\n'));
      await assert.rejects(applyVirt(model, vm, { netns: a }), /not known to this host's address server yet \(the address server \S+ has no DHCP host entry 02:00:00:77:00:02,10\.77\.0\.12.*run `lsdn apply`/);
    } finally {
      await destroyHost({ netns: a });
    }
  });
});
