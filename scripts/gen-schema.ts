// Writes schema/netmodel.schema.json from the zod schemas in src/file/schema.ts, with the lab's
// own section (src/lab/extension.ts: `lsdn lab` reads it, apply ignores it).
// `--check` fails when the committed file is stale (the test suite runs it).
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { jsonSchema } from '../src/file/schema.js';
import { labSectionSchema } from '../src/lab/extension.js';

const file = new URL('../schema/netmodel.schema.json', import.meta.url);
const text = JSON.stringify(jsonSchema({ lab: labSectionSchema }), null, 2) + '\n';
if (process.argv.includes('--check')) {
  let old = '';
  try {
    old = readFileSync(file, 'utf8');
  } catch {
    /* missing */
  }
  if (old !== text) {
    console.error('schema/netmodel.schema.json is stale: run `npm run schema`');
    process.exit(1);
  }
} else {
  mkdirSync(new URL('../schema/', import.meta.url), { recursive: true });
  writeFileSync(file, text);
  console.log(`wrote ${file.pathname}`);
}
