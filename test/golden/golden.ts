/** Golden-file comparison: UPDATE_GOLDEN=1 rewrites the expected files. */
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import assert from 'node:assert/strict';

const DIR = join(dirname(new URL(import.meta.url).pathname), 'expected');

export function assertGolden(name: string, actual: string): void {
  const file = join(DIR, name);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.CI && !existsSync(file)) assert.fail(`golden file ${name} is missing (run with UPDATE_GOLDEN=1 and commit it)`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.equal(actual, readFileSync(file, 'utf8'), `output differs from golden file test/golden/expected/${name} (UPDATE_GOLDEN=1 to accept)`);
}
