/**
 * `npm run test:kernels`: boots the test guest (test/vm/guest.ts) and runs in it, in one node
 * process, the kernel tests of test/vm/guest-tests.ts, which this host's kernel cannot run.
 * Prints the guest's console as it comes (prefixed "guest|"), then what ran where: every chosen
 * test with its result, the guest kernel, the accelerator and the wall time.
 *
 *   tsx test/vm/run.ts [--allow-skip] [--timeout SECONDS] [--only REGEX]...
 *
 * --allow-skip: when qemu or the kernel package cannot be had, print why and exit 0 (the VM
 * step of `npm test`); without it that is a failure. --only REGEX (repeatable) runs the tests
 * of the list's files whose names match REGEX instead of the list's patterns (while working on
 * one test). Exit status: 0 when every chosen test ran and passed.
 */
import { readFileSync } from 'node:fs';
import { killGuests, guestAssets, runGuest, ROOT } from './guest.js';
import { GUEST_TESTS, namePatterns } from './guest-tests.js';
import type { GuestResult } from './reporter.js';
import { vmAccel } from '../../src/lab/clients.js';

const argv = process.argv.slice(2);
const flag = (f: string) => argv.includes(f);
const values = (f: string) => argv.flatMap((a, i) => (a === f && argv[i + 1] !== undefined ? [argv[i + 1] as string] : []));
const allowSkip = flag('--allow-skip');
const only = values('--only');
const timeoutS = Number(values('--timeout')[0] ?? process.env.LSDN_VM_TIMEOUT ?? 900);

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const T0 = Date.now();
const secs = (ms: number) => `${(ms / 1000).toFixed(0)} s`;

function bail(msg: string): never {
  console.log(`# VM step: ${msg}`);
  process.exit(allowSkip ? 0 : 1);
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    killGuests();
    process.exit(130);
  });
}

const assets = guestAssets();
if (typeof assets === 'string') bail(`SKIPPED, ${assets}`);

const accel = vmAccel().name;
// Wall-clock limits of the tests scale by this factor in the guest (test/helpers/time.ts): TCG
// runs the guest 20-30 times slower than the host.
const factor = process.env.LSDN_VM_TIME_FACTOR ?? (accel === 'tcg' ? '10' : '2');
const patterns = only.length ? only : namePatterns();
const env: Record<string, string> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LANG: 'C.UTF-8',
  LSDN_TEST: '1',
  LSDN_GUEST: '1',
  LSDN_EXPECT_RUNNABLE: '1',
  LSDN_TIME_FACTOR: factor,
};
const job = [
  ...Object.entries(env).map(([k, v]) => `export ${k}=${q(v)}`),
  'echo "guest: $(nproc) CPUs, $(awk \'/MemTotal/ {print int($2/1024)}\' /proc/meminfo) MiB, kernel $(uname -r)"',
  'node --import tsx --test-reporter=spec --test-reporter-destination=stdout' +
    ' --test-reporter=./test/vm/reporter.ts --test-reporter-destination=/run/lsdn-guest/results.jsonl' +
    ` ${patterns.map((p) => `--test-name-pattern=${q(p)}`).join(' ')} test/vm/guest-main.ts`,
].join('\n');

console.log(`# VM step: booting the test guest (Linux ${assets.kver}, ${accel}, time factor ${factor}) for ${GUEST_TESTS.map((t) => t.file).join(', ')}`);
let pending = '';
const run = await runGuest({
  assets,
  job,
  cwd: ROOT,
  // as a host's boot does: br_netfilter is never loaded on demand, /dev/net/tun needs tun loaded
  modprobe: ['br_netfilter', 'tun'],
  timeoutMs: timeoutS * 1000,
  onOutput: (chunk) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    // (the tests of the list's files that the name patterns leave out are not worth a line each)
    // eslint-disable-next-line no-control-regex -- the firmware's terminal escapes
    for (const l of lines) if (!l.includes('# test name does not match pattern')) process.stdout.write(`guest| ${l.replace(/\r$/, '').replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc/g, '')}\n`);
  },
});
if (pending) process.stdout.write(`guest| ${pending}\n`);

const results: GuestResult[] = (run.files.get('results.jsonl') ?? '')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l) as GuestResult);
const tests = results.filter((r) => r.type === 'test');
const byPattern = (r: GuestResult) => r.status === 'skip' && r.reason === 'test name does not match pattern';
const chosen = tests.filter((r) => !byPattern(r));
const problems: string[] = [];
if (run.timedOut) problems.push(`the guest ran past ${timeoutS} s and was killed`);
if (run.failure !== undefined) problems.push(run.failure);
if (run.rc !== 0 && run.rc !== null) problems.push(`the guest's test run exited ${run.rc}`);
for (const r of chosen) {
  if (r.status === 'fail') problems.push(`failed in the guest: ${r.name}${r.error ? `: ${r.error.split('\n')[0]}` : ''}`);
  if (r.status === 'skip' || r.status === 'todo') problems.push(`skipped in the guest: ${r.name}: ${r.reason ?? ''}`);
}
if (chosen.length === 0) problems.push('no test ran in the guest');
for (const t of only.length ? [] : GUEST_TESTS) {
  for (const p of t.names) {
    const re = new RegExp(p);
    if (!chosen.some((r) => re.test(r.name))) problems.push(`${t.file}: no test ran for the name pattern /${p}/`);
  }
}

console.log(`\n# VM step: ran in the test guest (Linux ${assets.kver}, ${accel}, 2 vCPUs), not on this host (Linux ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}):`);
for (const r of chosen) console.log(`#   ${r.status === 'pass' ? 'ok  ' : r.status.padEnd(4)} ${r.name} (${secs(r.ms)})`);
const passed = chosen.filter((r) => r.status === 'pass').length;
console.log(`# VM step: ${passed} of ${chosen.length} passed; guest ${secs(run.ms)} (boot to power-off), step ${secs(Date.now() - T0)}`);
if (problems.length) {
  for (const p of problems) console.log(`# VM step: FAIL ${p}`);
  process.exit(1);
}
