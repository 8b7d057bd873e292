/** Models for tests: load YAML text and insist that it is valid (file and model problems). */
import assert from 'node:assert/strict';
import { loadModelText } from '../../src/file/load.js';
import type { Netmodel } from '../../src/model/netmodel.js';
import { hasErrors, validate } from '../../src/validate/validate.js';

export function loadValid(text: string, file = 'test.yaml'): Netmodel {
  const { model, problems } = loadModelText(text, file);
  assert.ok(model, JSON.stringify(problems));
  const all = [...problems, ...validate(model)];
  assert.ok(!hasErrors(all), JSON.stringify(all, null, 2));
  return model;
}
