/**
 * This host's users and groups, read as files (no process): tap owners compare as numeric ids
 * (src/kinds/tap.ts), a host fact handed to the compiler and applied to the read state alike.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseIdFile, type OwnerIds } from '../kinds/tap.js';

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** This host's users and groups, from `<etc>/passwd` and `<etc>/group` (missing files: none). */
export function readOwnerIds(etc = '/etc'): OwnerIds {
  return { users: parseIdFile(readOr(join(etc, 'passwd'))), groups: parseIdFile(readOr(join(etc, 'group'))) };
}
