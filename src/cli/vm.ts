/**
 * Virtual machines: `lsdn vm qemu-args|libvirt-xml|apply` and the hypervisor hooks
 * `lsdn hook qemu-ifup|qemu-ifdown|libvirt` (see examples/hooks/). Hooks find the model in
 * --model, else $LSDN_MODEL, else /etc/lsdn/netmodel.yaml; the phys in --phys or $LSDN_PHYS
 * (needed only when an interface name is used on several physes); a namespace in --netns or
 * $LSDN_NETNS (tests, labs).
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import type { Netmodel, Virt } from '../model/netmodel.js';
import { UsageError } from '../core/errors.js';
import { requireRoot } from '../apply/host.js';
import { applyVirt, virtByInterface, type VirtApplyResult } from '../apply/virt.js';
import { findVirt, libvirtInterfaceXml, qemuNetArgs, shellWord } from '../vm/generate.js';
import { VmError } from '../core/errors.js';
import { formatReport, reportJson } from '../apply/format.js';
import { Exit, err, loadOrExit, out } from './util.js';
import { cliLogger, logFormatOf, logOptions, withLog, type LogOptions } from './log.js';

/** The virt a command names (NET/VIRT, or a name unique in the model). */
function virtOrUsage(model: Netmodel, ref: string): Virt {
  return generated(() => findVirt(model, ref));
}

export const DEFAULT_MODEL_PATH = '/etc/lsdn/netmodel.yaml';

/** A VmError (no such virt, nothing to generate) is a usage error of the command. */
function generated<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof VmError) throw new UsageError(e.message);
    throw e;
  }
}

interface HookOpts extends LogOptions {
  model?: string;
  phys?: string;
  netns?: string;
  json?: boolean;
}

function hookOptions(c: Command): Command {
  return logOptions(c)
    .option('--model <file>', `netmodel file (default: $LSDN_MODEL, else ${DEFAULT_MODEL_PATH})`)
    .option('--phys <name>', 'this host\'s phys (default: $LSDN_PHYS; needed only when the interface name is not unique)')
    .option('--netns <name>', 'work inside this network namespace (default: $LSDN_NETNS)')
    .option('--json', 'machine-readable report');
}

function resolved(o: HookOpts): { model: string; phys?: string; netns?: string } {
  const phys = o.phys ?? process.env.LSDN_PHYS;
  const netns = o.netns ?? process.env.LSDN_NETNS;
  return { model: o.model ?? process.env.LSDN_MODEL ?? DEFAULT_MODEL_PATH, ...(phys ? { phys } : {}), ...(netns ? { netns } : {}) };
}

function printResult(r: VirtApplyResult, o: HookOpts, what: string): void {
  if (o.json) out(JSON.stringify({ virt: r.virt.id, report: reportJson(r.report) }, null, 2));
  else if (logFormatOf(o) === 'text') err(formatReport(r.report, what));
  if (!r.report.ok) throw new Exit(1);
}

/** Wire or unwire the virt whose interface is `ifname`; interfaces lsdn does not know are not its business (exit 0). */
async function hookInterfaces(ifnames: string[], mode: 'up' | 'down', o: HookOpts, caller: string): Promise<void> {
  const log = cliLogger(o).child({ hook: caller });
  await withLog(log, 'hook.failed', async () => {
    requireRoot(`hook ${caller}`);
    const r = resolved(o);
    const { model } = await loadOrExit(r.model);
    for (const ifname of ifnames) {
      const virt = virtByInterface(model, ifname, r.phys);
      if (!virt) {
        log.info('hook.skip', `${ifname} is no virt's interface${r.phys ? ` on phys ${r.phys}` : ''} in ${r.model}; nothing to do`, { if: ifname });
        continue;
      }
      const res = await applyVirt(model, virt, { mode, logger: log, ...(r.netns ? { netns: r.netns } : {}) });
      printResult(res, o, `${caller} ${ifname} (virt ${virt.id}, ${mode})`);
    }
  });
}

/** Target devices of a libvirt domain XML's `<interface>` elements. */
export function libvirtTargetDevs(xml: string): string[] {
  const out: string[] = [];
  for (const m of xml.matchAll(/<interface\b[\s\S]*?<\/interface>/g)) {
    const t = /<target\b[^>]*\bdev=(['"])([^'"]+)\1/.exec(m[0]);
    if (t) out.push(t[2] as string);
  }
  return out;
}

/** libvirt's hooks/qemu operations -> what lsdn does (others: nothing). */
export function libvirtHookMode(op: string, subop: string): 'up' | 'down' | undefined {
  if ((op === 'prepare' || op === 'started' || op === 'reconnect' || op === 'attach') && subop === 'begin') return 'up';
  if ((op === 'stopped' || op === 'release') && subop === 'end') return 'down';
  return undefined;
}

export function registerVm(program: Command): void {
  const vm = program.command('vm').description('attach VMs (qemu, libvirt) to lsdn virts');

  vm.command('qemu-args')
    .description("print the qemu arguments of a virt's NIC (-netdev tap,... -device virtio-net-pci,...)")
    .argument('<file>', 'netmodel file')
    .argument('<virt>', 'NET/VIRT, or a virt name unique in the model')
    .option('--vhost', 'use vhost-net (vhost=on)')
    .option('--id <id>', "qemu's id of the netdev")
    .option('--lines', 'one argument per line instead of one shell-quoted line')
    .action(async (file: string, ref: string, o: { vhost?: boolean; id?: string; lines?: boolean }) => {
      const { model } = await loadOrExit(file);
      const args = generated(() => qemuNetArgs(virtOrUsage(model, ref), { ...(o.vhost ? { vhost: true } : {}), ...(o.id ? { id: o.id } : {}) }));
      out(o.lines ? args.join('\n') : args.map(shellWord).join(' '));
    });

  vm.command('libvirt-xml')
    .description("print the libvirt <interface type='ethernet'> element of a virt")
    .argument('<file>', 'netmodel file')
    .argument('<virt>', 'NET/VIRT, or a virt name unique in the model')
    .option('--vhost', "driver name='vhost'")
    .action(async (file: string, ref: string, o: { vhost?: boolean }) => {
      const { model } = await loadOrExit(file);
      out(generated(() => libvirtInterfaceXml(virtOrUsage(model, ref), o.vhost ? { vhost: true } : {})));
    });

  hookOptions(
    vm.command('apply')
      .description("apply one virt's local objects only (what the hooks do): its tap/port, entries, rate limits, firewall chains")
      .argument('<file>', 'netmodel file')
      .argument('<virt>', 'NET/VIRT, or a virt name unique in the model')
      .option('--down', 'the VM stops: release an adopted interface (an lsdn tap stays wired)'),
  ).action(async (file: string, ref: string, o: HookOpts & { down?: boolean }) => {
    requireRoot('vm apply');
    const r = resolved({ ...o, model: file });
    const { model } = await loadOrExit(file);
    const virt = virtOrUsage(model, ref);
    if (r.phys && virt.phys?.name !== r.phys) throw new UsageError(`virt ${virt.id} is on phys ${virt.phys?.name ?? '(none)'}, not ${r.phys}`);
    const res = await applyVirt(model, virt, { mode: o.down ? 'down' : 'up', logger: cliLogger(o), ...(r.netns ? { netns: r.netns } : {}) });
    printResult(res, o, `vm apply ${virt.id}`);
  });

  const hook = program.command('hook').description('hypervisor hooks: connect a VM started or stopped after the last apply (examples/hooks/)');
  hookOptions(hook.command('qemu-ifup').description("qemu's -netdev tap,script=: wire the virt whose interface this is").argument('<ifname>'))
    .action((ifname: string, o: HookOpts) => hookInterfaces([ifname], 'up', o, 'qemu-ifup'));
  hookOptions(hook.command('qemu-ifdown').description("qemu's -netdev tap,downscript=: the VM stops").argument('<ifname>'))
    .action((ifname: string, o: HookOpts) => hookInterfaces([ifname], 'down', o, 'qemu-ifdown'));
  hookOptions(
    hook.command('libvirt')
      .description("libvirt's /etc/libvirt/hooks/qemu (DOMAIN OP SUBOP EXTRA, domain XML on stdin): prepare/started begin wire, stopped/release end unwire")
      .argument('<domain>')
      .argument('<op>')
      .argument('<subop>')
      .argument('[extra]'),
  ).action(async (domain: string, op: string, subop: string, _extra: string | undefined, o: HookOpts) => {
    const mode = libvirtHookMode(op, subop);
    if (!mode) return;
    let xml = '';
    try {
      xml = readFileSync(0, 'utf8');
    } catch {
      throw new UsageError(`hook libvirt ${domain}: the domain XML was expected on stdin`);
    }
    const devs = libvirtTargetDevs(xml);
    await hookInterfaces(devs, mode, o, `libvirt ${domain} ${op} ${subop}`);
  });
}
