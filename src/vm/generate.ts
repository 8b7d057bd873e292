/**
 * How a hypervisor attaches a VM to an lsdn virt: qemu arguments and the libvirt `<interface>`
 * element, generated from the model. Pure. The interface is a tap on the virt's phys named
 * virt.if, created by lsdn (virt option `tap`) or by the hypervisor; either way qemu opens it
 * with `script=no` (lsdn's apply or hooks wire it), and the guest is told the overlay's MTU
 * (virtio-net `host_mtu`, libvirt `<mtu>`), so it never sends frames the overlay cannot carry.
 */
import type { Netmodel, Virt } from '../model/netmodel.js';
import { overlayMtu, DEFAULT_UNDERLAY_MTU, type HostFacts } from '../compile/compile.js';
import { VmError } from '../core/errors.js';

export interface VmNicOptions {
  /** qemu's id of the netdev (default: "net-" + the virt's name, made safe). */
  id?: string;
  /** Use vhost-net (needs /dev/vhost-net). */
  vhost?: boolean;
  /** Host facts for the MTU (the underlay's MTU when the model gives none). */
  facts?: HostFacts;
}

/** A virt by "net/virt", or by its name when that is unique in the model. */
export function findVirt(model: Netmodel, ref: string): Virt {
  const [a, b] = ref.split('/');
  if (b !== undefined) {
    const v = model.net(a as string)?.virts.get(b);
    if (!v) throw new VmError(`no virt "${ref}" in model "${model.name}"`);
    return v;
  }
  const all = model.virts().filter((v) => v.name === ref);
  if (all.length === 1) return all[0] as Virt;
  if (all.length === 0) throw new VmError(`no virt "${ref}" in model "${model.name}"`);
  throw new VmError(`virt name "${ref}" is in ${all.length} nets (${all.map((v) => v.id).join(', ')}): write NET/VIRT`);
}

export interface VmNic {
  ifname: string;
  mac?: string;
  mtu: number;
  queues: number;
}

/** What both generators need: the tap's name, the MAC, the MTU the guest gets, the queues. */
export function vmNic(virt: Virt, facts: HostFacts = {}): VmNic {
  if (!virt.phys || !virt.if) throw new VmError(`virt "${virt.id}" is not connected to a phys with an interface ("phys", "if")`);
  const mtu = virt.mtu ?? overlayMtu(virt.net, virt.phys, facts) ?? DEFAULT_UNDERLAY_MTU;
  return { ifname: virt.if, ...(virt.mac ? { mac: virt.mac.toLowerCase() } : {}), mtu, queues: Math.max(1, virt.tap?.queues ?? 1) };
}

const safeId = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '_');

/**
 * qemu arguments for the virt's NIC:
 *   -netdev tap,id=ID,ifname=IF,script=no,downscript=no[,vhost=on][,queues=N]
 *   -device virtio-net-pci,netdev=ID[,mac=MAC],host_mtu=MTU[,mq=on,vectors=2N+2]
 */
export function qemuNetArgs(virt: Virt, opts: VmNicOptions = {}): string[] {
  const nic = vmNic(virt, opts.facts);
  const id = opts.id ?? `net-${safeId(virt.name)}`;
  const netdev = [`tap`, `id=${id}`, `ifname=${nic.ifname}`, 'script=no', 'downscript=no'];
  if (opts.vhost) netdev.push('vhost=on');
  if (nic.queues > 1) netdev.push(`queues=${nic.queues}`);
  const device = ['virtio-net-pci', `netdev=${id}`];
  if (nic.mac) device.push(`mac=${nic.mac}`);
  device.push(`host_mtu=${nic.mtu}`);
  if (nic.queues > 1) device.push('mq=on', `vectors=${2 * nic.queues + 2}`);
  return ['-netdev', netdev.join(','), '-device', device.join(',')];
}

/** Quote a word for a POSIX shell when it needs it. */
export function shellWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

const xmlAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;').replace(/"/g, '&quot;');

/**
 * libvirt's `<interface type='ethernet'>` for the virt: the tap exists already (lsdn made it,
 * or will on the `prepare` hook), so libvirt must not create or delete it (`managed='no'`).
 */
export function libvirtInterfaceXml(virt: Virt, opts: VmNicOptions = {}): string {
  const nic = vmNic(virt, opts.facts);
  const lines = [`<interface type='ethernet'>`];
  if (nic.mac) lines.push(`  <mac address='${xmlAttr(nic.mac)}'/>`);
  lines.push(`  <target dev='${xmlAttr(nic.ifname)}' managed='no'/>`);
  lines.push(`  <model type='virtio'/>`);
  lines.push(`  <mtu size='${nic.mtu}'/>`);
  const driver: string[] = [];
  if (opts.vhost !== undefined) driver.push(`name='${opts.vhost ? 'vhost' : 'qemu'}'`);
  if (nic.queues > 1) driver.push(`queues='${nic.queues}'`);
  if (driver.length) lines.push(`  <driver ${driver.join(' ')}/>`);
  lines.push(`</interface>`);
  return lines.join('\n') + '\n';
}
