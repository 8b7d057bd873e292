/**
 * The ONE list of what runs in the test guest (test/vm/run.ts, `npm run test:kernels`, the VM
 * step of `npm test`): the kernel tests this host's kernel cannot run, by file and test name.
 * They are the same test files as on the host; there they skip (the kernel lacks the feature,
 * the reason printed), in the guest's full distribution kernel they run. Names are node:test
 * name patterns (regular expressions on a test's own name); the step fails when a pattern
 * matches no test that ran, or when a chosen test skips in the guest.
 */
export interface GuestTest {
  /** Test file, relative to the checkout. */
  file: string;
  /** node:test name patterns: a test runs when its name matches one of them. */
  names: string[];
  /** What it proves there. */
  why: string;
}

/** Types this host's dev/CI kernel cannot run (no 802.1Q, Geneve, tc flower/gact/...). */
const T = '(vlan|geneve|geneve/e2e)';

export const GUEST_TESTS: GuestTest[] = [
  {
    file: 'test/kernel/types.test.ts',
    names: [
      `^basic: ${T}$`,
      `^msettings: .*\\b(vlan|geneve)\\b`,
      `^isolation: `,
      `^duplicate MACs in two nets stay isolated and both work: ${T}$`,
      `^IPv6 underlay \\(fd00::/64\\), IPv4 and IPv6 overlay: ${T}$`,
    ],
    why: 'vlan, geneve and geneve/e2e with real pings: basic, msettings, duplicate MACs, IPv6 underlay; a vlan, a geneve and a vxlan net sharing ids and a subnet stay isolated',
  },
  {
    file: 'test/kernel/examples.test.ts',
    names: ['^example vlan-and-geneve\\.yaml: '],
    why: '`lsdn lab demo examples/vlan-and-geneve.yaml` (a vlan net and two geneve nets with one subnet, a default-drop firewall, rates) passes every pair',
  },
  {
    file: 'test/kernel/probe.test.ts',
    names: ['^doctor: every network type runnable'],
    why: '`lsdn doctor` finds every type runnable and every tc classifier (flower, matchall) and action (gact, tunnel_key, police)',
  },
];

/** node's --test-name-pattern arguments for the whole list. */
export function namePatterns(list: GuestTest[] = GUEST_TESTS): string[] {
  return list.flatMap((t) => t.names);
}
