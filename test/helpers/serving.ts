/**
 * A lab with address servers for a describe block: a private runtime dir for the servers
 * (LSDN_RUN_DIR, readable by dnsmasq, which drops to nobody and rereads its hosts file there),
 * the lab up with every host applied, and everything removed afterwards even when a test fails.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { after, before } from 'node:test';
import type { Netmodel } from '../../src/model/netmodel.js';
import { labDown, labUp } from '../../src/lab/lab.js';
import type { LabLayout } from '../../src/lab/layout.js';
import { applyInLab } from '../../src/lab/apply.js';
import { deleteNamespacesWithPrefix, ensureNeighbourTableRoom, uniquePrefix } from './netns.js';

export interface ServingLab {
  prefix: string;
  layout: LabLayout;
  model: Netmodel;
  runDir: string;
}

/** Register before/after hooks that build and remove the lab; the fields are set once `before` ran. */
export function servingLab(tag: string, load: () => Netmodel): ServingLab {
  const lab = {} as ServingLab;
  before(async () => {
    ensureNeighbourTableRoom();
    lab.runDir = mkdtempSync(`${tmpdir()}/lsdn-run-`);
    chmodSync(lab.runDir, 0o755);
    process.env.LSDN_RUN_DIR = lab.runDir;
    lab.prefix = uniquePrefix(tag);
    const model = (lab.model = load());
    const t0 = Date.now();
    lab.layout = await labUp(model, { prefix: lab.prefix, apply: (p, n) => applyInLab(model, p, n) });
    console.log(`# lab "${lab.prefix}" with address servers up in ${Date.now() - t0} ms`);
  });
  after(async () => {
    try {
      if (lab.prefix) await labDown(lab.prefix);
    } finally {
      if (lab.prefix) deleteNamespacesWithPrefix(`${lab.prefix}-`);
      if (lab.runDir) rmSync(lab.runDir, { recursive: true, force: true });
      delete process.env.LSDN_RUN_DIR;
    }
  });
  return lab;
}
