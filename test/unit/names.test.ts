/**
 * Hostile names (issue 16, found 1-6 and build 1-2): every name a batch reader, nft, dnsmasq or
 * Tcl treats specially is refused by validation with a located error per field (model file,
 * builder API and lsctl alike), and the renderers behind it represent a value exactly or throw
 * (property tests against a model of iproute2's batch reader and nft's strings).
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { loadModelText } from '../../src/file/load.js';
import { validate } from '../../src/validate/validate.js';
import { Netmodel } from '../../src/model/netmodel.js';
import { compileHost } from '../../src/compile/compile.js';
import { planChanges } from '../../src/plan/plan.js';
import { HostState } from '../../src/core/objects.js';
import { BatchEscapeError, checkBatchLine, iprouteArg, iprouteWords, nftString } from '../../src/kinds/escape.js';
import { interfaceNameProblem, objectNameProblem, virtInterfaceProblem } from '../../src/core/charset.js';
import { runLsctl } from '../../src/lsctl/run.js';
import type { Problem } from '../../src/core/problem.js';

/** A one-virt model; `net` and `ifname` are written as YAML double-quoted strings. */
function model(net: string, ifname: string, extra = ''): string {
  return `name: t
settings: { default: { type: vxlan/e2e } }
physes: { a: { if: eth0, ip: 192.0.2.1 } }
nets:
  ${JSON.stringify(net)}:
    vid: 5
    virts:
      v1: { phys: a, if: ${JSON.stringify(ifname)}, mac: "02:00:00:00:00:01", policy: drop, tap: {} }${extra}
`;
}

function errors(text: string): Problem[] {
  const { model: m, problems } = loadModelText(text, 'h.yaml');
  assert.ok(m, JSON.stringify(problems));
  return [...problems, ...validate(m)].filter((p) => p.severity === 'error');
}

/** The hostile names: [what, net, virt if]. */
const FOUND: [string, string, string][] = [
  ['found 1: a backslash in a virt if (nft read it as an escape: the firewall never matched)', 'blue', 'a\\b'],
  ['found 2: a trailing * in a virt if (an nft wildcard: the transaction failed)', 'blue', 'x*'],
  ['found 3: a double quote in a net name (the alias line broke the whole ip batch)', 'q"x', 'tap1'],
  ['found 4: a # in a tap if (iproute2 cut the line: acted on the foreign "fp")', 'blue', 'fp#1'],
  ['found 4: a # in a net name (the alias was truncated: drift forever)', 'a#b', 'tap1'],
  ['found 5: a tap if starting with a single quote (an unterminated quote aborted the batch)', 'blue', "'x"],
  ['found 6: lo as a virt if (the plan set its MTU)', 'blue', 'lo'],
  ["found 6: one of lsdn's own device names as a virt if", 'blue', 'lsb-0123abcd'],
  ["found 6: lsdn's server interface name as a virt if", 'blue', 'lsdn0'],
];

describe('name rules (core/charset.ts), at validation', () => {
  for (const [what, net, ifname] of FOUND) {
    test(what, () => {
      const errs = errors(model(net, ifname));
      assert.equal(errs.length, 1, JSON.stringify(errs));
      const e = errs[0]!;
      if (net !== 'blue') {
        assert.equal(e.code, 'name-invalid');
        assert.deepEqual([e.loc?.line, e.loc?.col], [5, 3]);
      } else {
        assert.equal(e.code, 'virt-if-invalid');
        assert.deepEqual([e.loc?.file, e.loc?.line], ['h.yaml', 8]);
        assert.ok(e.message.includes(JSON.stringify(ifname)) || e.message.includes(ifname), e.message);
      }
    });
  }

  test('every field that holds a name gets its own located error', () => {
    const text = `name: "bad ctx"
settings: { "s#1": { type: vxlan/e2e } }
physes: { "p;1": { if: "e\\\\th0", ip: 192.0.2.1 } }
nets:
  "n$1":
    vid: 5
    settings: "s#1"
    virts:
      "v[1]": { phys: "p;1", if: "x*", mac: "02:00:00:00:00:01" }
`;
    const errs = errors(text).map((p) => `${p.loc?.line}:${p.code}`);
    assert.deepEqual(errs, ['1:context-name-invalid', '2:name-invalid', '5:name-invalid', '3:name-invalid', '3:phys-if-invalid', '9:name-invalid', '9:virt-if-invalid']);
  });

  test('the builder API gets the same problems (validation is the one place)', () => {
    const m = new Netmodel('t');
    m.addSettings('vxlan/e2e');
    const p = m.addPhys('a', { if: 'eth0', ip: '192.0.2.1' });
    const n = m.addNet('a#b', { vid: 5 }).attach(p);
    n.virt('v1', { phys: p, if: 'fp#1', mac: '02:00:00:00:00:01' });
    assert.deepEqual(validate(m).map((x) => x.code), ['name-invalid', 'virt-if-invalid']);
  });

  test('lsctl: a hostile name is refused at its script line, nothing is committed', async (t: TestContext) => {
    const dir = mkdtempSync(join(tmpdir(), 'lsdn-names-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 's.lsctl');
    writeFileSync(file, 'namespace import lsdn::*\nsettings vxlan/e2e\nphys -name a -if eth0 -ip 192.0.2.1\nnet 5 {\n  attach a\n  virt -name v1 -phys a -if {fp#1} -mac 02:00:00:00:00:01\n}\ncommit\n');
    const r = await runLsctl(file, [], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', host: { commit: () => Promise.resolve() } as never });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${file}:6:\\d+: error: virt 5/v1: interface name "fp#1" contains "#"`));
  });

  test('real interface and object names are accepted', () => {
    for (const n of ['eth0', 'enp0s31f6', 'eth0.100', 'br-lan', 'vnet12', 'tap_x', 'wg0', 'a', 'x'.repeat(15), 'lsdn', 'lsb-xyz']) {
      assert.equal(virtInterfaceProblem(n), undefined, n);
    }
    for (const n of ['web', 'tenant-a', 'db.1', '_1', 'A_B-c.d', '9']) assert.equal(objectNameProblem(n), undefined, n);
    for (const n of ['all', 'default', '.', '..', 'x'.repeat(16), '-x', 'é', 'a b', 'a/b', 'a:b', '']) assert.ok(interfaceNameProblem(n), n);
    for (const n of ['a b', 'a:b', 'a/b', "a'b", 'a,b', 'a{b', '-a', '.a', 'x'.repeat(65), 'a\u00a0b']) assert.ok(objectNameProblem(n), n);
  });

  test('property: whatever passes the name rules renders in every tool unchanged', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary-ascii', maxLength: 20 }), (s) => {
      if (virtInterfaceProblem(s) === undefined) {
        assert.equal(iprouteArg(s), s);
        assert.equal(nftString(s), `"${s}"`);
      }
      if (objectNameProblem(s) === undefined) assert.equal(iprouteArg(`lsdn:ctx:tap:${s}/${s}`), `lsdn:ctx:tap:${s}/${s}`);
    }), { seed: 16, numRuns: 3000 });
  });
});

describe('escaping (kinds/escape.ts): exact or a throw', () => {
  const anyString = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 24 }),
    fc.string({ unit: fc.constantFrom('a', ' ', '\t', '"', "'", '#', '\\', '*', '\n', ';', '{', '}', '$'), maxLength: 12 }),
  );

  test('property: iproute2 batch words read back exactly (ip, bridge, tc share the reader)', () => {
    fc.assert(fc.property(anyString, (v) => {
      let arg: string;
      try {
        arg = iprouteArg(v);
      } catch (e) {
        assert.ok(e instanceof BatchEscapeError, String(e));
        return;
      }
      const line = `link set dev x alias ${arg}`;
      assert.doesNotMatch(line, /[\n\r#]/);
      checkBatchLine('ip', line);
      assert.deepEqual(iprouteWords(line), ['link', 'set', 'dev', 'x', 'alias', v]);
      // Also when it is not last on the line.
      assert.deepEqual(iprouteWords(`link set dev ${arg} up`), ['link', 'set', 'dev', v, 'up']);
    }), { seed: 16, numRuns: 5000 });
  });

  test('property: nft strings are exact (no quote, escape, wildcard, comment or control character) or throw', () => {
    fc.assert(fc.property(anyString, (v) => {
      let s: string;
      try {
        s = nftString(v);
      } catch (e) {
        assert.ok(e instanceof BatchEscapeError, String(e));
        // eslint-disable-next-line no-control-regex
        assert.match(v, /["\\*#\x00-\x1f\x7f]/);
        return;
      }
      assert.equal(s, `"${v}"`);
      checkBatchLine('nft', `iifname ${s} drop`);
    }), { seed: 16, numRuns: 5000 });
  });

  test('the reader model follows iproute2: # cuts even inside quotes, a quote has no escape, what follows a closing quote is a new word', () => {
    assert.deepEqual(iprouteWords('link set dev "a#b" up'), undefined);
    assert.deepEqual(iprouteWords('a "b c" \'d "e\''), ['a', 'b c', 'd "e']);
    assert.deepEqual(iprouteWords('a "ab"cd'), ['a', 'ab', 'cd']);
    assert.deepEqual(iprouteWords('a b"c'), ['a', 'b"c']);
    assert.equal(iprouteWords("a 'x"), undefined);
    assert.throws(() => checkBatchLine('ip', 'link set dev fp#1 up'), BatchEscapeError);
    assert.throws(() => checkBatchLine('nft', 'add table bridge x\nflush ruleset'), BatchEscapeError);
  });

  test('defence in depth: a hostile name that got past validation makes the renderer throw, never a line', () => {
    for (const [what, net, ifname] of FOUND.slice(0, 5).filter(([, n]) => n !== 'q"x')) {
      const { model: m } = loadModelText(model(net, ifname), 'h.yaml');
      assert.ok(m);
      assert.throws(() => {
        const state = compileHost(m, 'a', { mtu: new Map([['eth0', 1500]]) });
        const plan = planChanges(state, new HostState());
        for (const s of plan.steps) for (const c of s.commands) checkBatchLine(c.tool, c.line);
      }, BatchEscapeError, what);
    }
    // Quotes can be represented: inside a word a quote is no quote to iproute2, and a word that
    // starts with one is quoted with the other kind. Written, and read, exactly.
    const { model: m } = loadModelText(model('q"x', "'x"), 'h.yaml');
    assert.ok(m);
    const cmds = planChanges(compileHost(m, 'a', { mtu: new Map([['eth0', 1500]]) }), new HostState()).steps.flatMap((s) => s.commands);
    for (const c of cmds) checkBatchLine(c.tool, c.line);
    const aliases = cmds.filter((c) => c.line.includes(' alias ')).map((c) => iprouteWords(c.line)?.at(-1));
    assert.deepEqual(aliases.sort(), ['lsdn:t:net:q"x', 'lsdn:t:net:q"x:vxlan', 'lsdn:t:tap:q"x/v1']);
    assert.ok(cmds.some((c) => iprouteWords(c.line)?.join(' ') === "tuntap add dev 'x mode tap vnet_hdr"));
  });
});
