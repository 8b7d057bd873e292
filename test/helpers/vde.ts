/** What a VDE cloud lab needs on this machine: VDE's clients, qemu and the test VM. */
import { spawnSync } from 'node:child_process';
import { vmAssets } from './qemu.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Why a lab with vde_plug, vdens and qemu clients cannot run here; undefined when it can. */
export function vdeCloudMissing(): string | undefined {
  for (const [cmd, pkg] of [['vde_plug', 'vdeplug'], ['vdens', 'vdens'], ['ethtool', 'ethtool']]) {
    if (!has(cmd as string)) return `${cmd} is not installed (Debian package ${pkg}; scripts/setup.sh installs it)`;
  }
  const assets = vmAssets();
  return typeof assets === 'string' ? assets : undefined;
}
