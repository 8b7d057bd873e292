/**
 * Migration in the lab: labUp builds only the initial layout, so when a virt is connected
 * elsewhere in the model (`virt.connect(newPhys, ifname)`), its host-side interface has to
 * follow: the veth end leaves the old phys namespace (which drops it from the bridge it was a
 * port of, and the FDB entries on it) and appears in the new phys namespace under the new
 * name, down and unenslaved, exactly like a fresh tap on the destination host. The virt's own
 * namespace (its eth0, MAC and addresses) is untouched, as a migrated VM keeps its NIC.
 */
import { Kernel } from '../kernel/exec.js';
import type { Virt } from '../model/netmodel.js';
import { LabError } from '../core/errors.js';
import type { LabLayout } from './layout.js';

export interface LabVirtPlace {
  /** Phys the virt's host-side interface is in now. */
  phys: string;
  /** Its name there. */
  if: string;
}

/**
 * Move the host-side end of `virt`'s veth from `from` to where the model now connects the
 * virt (`virt.phys`, `virt.if`). The caller applies the model afterwards.
 */
export async function labMoveVirt(layout: LabLayout, virt: Virt, from: LabVirtPlace): Promise<void> {
  const to = virt.phys;
  if (!to || !virt.if) throw new LabError(`virt "${virt.id}" is not connected in the model`);
  const fromNs = layout.physNs.get(from.phys);
  const toNs = layout.physNs.get(to.name);
  if (!fromNs) throw new LabError(`lab "${layout.prefix}" has no phys "${from.phys}"`);
  if (!toNs) throw new LabError(`lab "${layout.prefix}" has no phys "${to.name}"`);
  if (!layout.virtNs.has(virt.id)) throw new LabError(`lab "${layout.prefix}" has no virt "${virt.id}"`);
  if (fromNs === toNs && from.if === virt.if) return;
  // The move leaves the interface down and outside any bridge (the rename needs it down).
  const rename = from.if !== virt.if ? ['name', virt.if] : [];
  if (fromNs !== toNs) {
    await new Kernel({ netns: fromNs }).run('ip', ['link', 'set', 'dev', from.if, 'netns', toNs, ...rename], { mutates: true });
  } else {
    await new Kernel({ netns: fromNs }).run('ip', ['link', 'set', 'dev', from.if, 'down', 'nomaster'], { mutates: true });
    if (rename.length) await new Kernel({ netns: fromNs }).run('ip', ['link', 'set', 'dev', from.if, ...rename], { mutates: true });
  }
  const lines = [`link set dev ${virt.if} addrgenmode none`, `link set dev ${virt.if} up`];
  await new Kernel({ netns: toNs }).batch('ip', lines);
}
