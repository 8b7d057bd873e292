/** The lab's link to the reconciler: simulated hosts are applied exactly like real ones (`lsdn apply --netns`). */
import type { Netmodel, Phys } from '../model/netmodel.js';
import { applyHost } from '../apply/host.js';
import { formatReport } from '../apply/format.js';

/** Apply the model on one simulated phys; throws with the apply report when a step failed. */
export async function applyInLab(model: Netmodel, phys: Phys, netns: string): Promise<void> {
  const r = await applyHost(model, { phys: phys.name, netns });
  if (!r.report.ok) throw new Error(formatReport(r.report, `apply on simulated phys ${phys.name}`));
}
