/** Problems carry the path of the offending field in the file form, next to its file:line (not printed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModelText } from '../../src/file/load.js';
import { validate } from '../../src/validate/validate.js';
import { formatProblem } from '../../src/core/problem.js';
import { problemsJson } from '../../src/apply/format.js';

const MODEL = `
name: p
settings:
  default: { type: vxlan/e2e, port: 70000 }
  vde: { type: vxvde, if: "a very long name" }
physes:
  a: { if: eth0, ip: 192.0.2.1 }
nets:
  blue:
    vid: 1
    ipv4: { subnet: 10.0.0.0/24, gateway: 10.0.0.300 }
    virts:
      web:
        phys: a
        if: this-name-is-too-long
        rules: [{ dir: in, priority: 1, srcIp: 10.0.0.0/8 }, { dir: in, priority: 2, srcIp: nonsense }]
        rate: { in: { avg: 1mbit, burst: 100b } }
allocations: { gone/virt: 10.0.0.9 }
`;

test('validation problems carry the path of their field', () => {
  const { model, problems: loaded } = loadModelText(MODEL, 'p.yaml');
  assert.deepEqual(loaded, []);
  const problems = validate(model!);
  const path = (code: string) => problems.find((p) => p.code === code)?.path;
  assert.deepEqual(path('settings-port-invalid'), ['settings', 'default', 'port']);
  assert.deepEqual(path('settings-iface-invalid'), ['settings', 'vde', 'if'], 'the model field iface is the file key if');
  assert.deepEqual(path('virt-if-invalid'), ['nets', 'blue', 'virts', 'web', 'if']);
  assert.deepEqual(path('rule-ip-invalid'), ['nets', 'blue', 'virts', 'web', 'rules', 1, 'srcIp']);
  assert.deepEqual(path('rate-burst-below-mtu'), ['nets', 'blue', 'virts', 'web', 'rate', 'in', 'burst']);
  assert.deepEqual(path('subnet-address-invalid'), ['nets', 'blue', 'ipv4', 'gateway']);
  assert.deepEqual(path('allocation-stale'), ['allocations', 'gone/virt']);
  // Not printed: the text and the CLI's JSON are as they were.
  for (const p of problems) assert.ok(!formatProblem(p).includes('nets,'), formatProblem(p));
  assert.ok(problemsJson(problems).every((p) => !('path' in (p as object))));
});

test('file problems carry their path too', () => {
  const { problems } = loadModelText('nets:\n  blue:\n    virts:\n      web: { mac: 5, colour: red }\n', 'f.yaml');
  const unknown = problems.find((p) => p.code === 'unknown-field');
  assert.deepEqual(unknown?.path, ['nets', 'blue', 'virts', 'web', 'colour']);
  assert.deepEqual(problems.find((p) => p.code === 'invalid-field')?.path, ['nets', 'blue', 'virts', 'web', 'mac']);
});
