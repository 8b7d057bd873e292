/**
 * Runs in the test guest, in one node process (node's start-up under TCG costs 10-20 s): imports
 * every file of the list, whose tests then run here, filtered by the list's name patterns
 * (given on the command line by test/vm/run.ts).
 */
import { join } from 'node:path';
import { GUEST_TESTS } from './guest-tests.js';

const root = new URL('../..', import.meta.url).pathname;
for (const t of GUEST_TESTS) await import(join(root, t.file));
