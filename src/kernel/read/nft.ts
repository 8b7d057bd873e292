/** The nftables tables lsdn owns, in one process (decoded by src/kinds/nft.ts). */
import type { Kernel } from '../exec.js';
import { KernelError } from '../../core/errors.js';
import type { NftTableObject } from '../../core/objects.js';
import { isOwnedNftTable, nftTableName } from '../../core/names.js';
import { parseNftTables } from '../../kinds/nft.js';

export function isNftMissing(e: unknown): boolean {
  if (!(e instanceof KernelError)) return false;
  // Not installed: spawn ENOENT (no exit code), or `ip netns exec` failing to exec it.
  if (e.exitCode === null && / is not installed/.test(e.message)) return true;
  if (/exec of "nft" failed/.test(e.stderr)) return true;
  // No nf_tables in this kernel: nothing lsdn could own either.
  return /Protocol not supported|Operation not supported|Address family not supported/.test(e.stderr);
}

/**
 * The owned tables, in one process: the whole ruleset, stateless (`-s`: no counter values).
 * (nft 1.0.6 cannot list several tables in one process, its cache keeps only the last one.)
 * With a context, only that context's tables (`lsdn_<context>`, in any family).
 */
export async function readNft(kernel: Kernel, context?: string): Promise<NftTableObject[]> {
  let stdout: string;
  try {
    ({ stdout } = await kernel.run('nft', ['-s', 'list', 'ruleset']));
  } catch (e) {
    if (isNftMissing(e)) return [];
    throw e;
  }
  const mine = context !== undefined ? nftTableName(context) : undefined;
  return parseNftTables(stdout, (_family, name) => (mine !== undefined ? name === mine : isOwnedNftTable(name)));
}
