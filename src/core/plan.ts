/**
 * The words of plans: a plan is ordered steps, a step is one object's change and its kernel
 * commands, a command one batch line of one tool. Phases order the steps (src/plan).
 */

/** The kernel tools lsdn drives in batches. */
export type Tool = 'ip' | 'bridge' | 'tc' | 'nft';

export interface Command {
  /** `svc`: a service step (namespaces, files, processes, sysctls; see ServiceCommand). */
  tool: Tool | 'svc';
  /** One batch line (without the tool name), e.g. "link add name lsb-1 type bridge". */
  line: string;
  /** svc `netns add` and `write`: the file's content. */
  input?: string;
}

/**
 * What a service step does, typed: the shell's service runner executes this, and `line` (what
 * `lsdn plan` prints) is rendered from it, never parsed back.
 */
export type ServiceOp =
  /** Create the server's namespace (refused when the name exists); the input (its marked config) is written first. */
  | { op: 'netns-add'; ns: string }
  /** Delete the namespace (a missing one is fine). */
  | { op: 'netns-del'; ns: string }
  /** An iproute2 batch line inside the namespace. */
  | { op: 'ns'; ns: string; line: string }
  /** The input -> the server's runtime dir, file `file`. */
  | { op: 'write'; ns: string; file: string }
  | { op: 'start'; ns: string }
  | { op: 'stop'; ns: string }
  /** SIGHUP the server's dnsmasq (it rereads its hosts file). */
  | { op: 'reload'; ns: string }
  /** Remove the server's runtime dir. */
  | { op: 'clean'; ns: string }
  /** sysctl -w in the host's namespace. */
  | { op: 'sysctl'; key: string; value: string };

/** A `svc` command: its line, and (not enumerable: plans print and compare as before) its typed op. */
export interface ServiceCommand extends Command {
  tool: 'svc';
  readonly service: ServiceOp;
}

/** The plan line of a service op. */
export function serviceLine(s: ServiceOp): string {
  switch (s.op) {
    case 'netns-add':
      return `netns add ${s.ns}`;
    case 'netns-del':
      return `netns del ${s.ns}`;
    case 'ns':
      return `ns ${s.ns} ${s.line}`;
    case 'write':
      return `write ${s.ns} ${s.file}`;
    case 'sysctl':
      return `sysctl ${s.key}=${s.value}`;
    default:
      return `${s.op} ${s.ns}`;
  }
}

/** The command of a service op (with the file's content, for netns-add and write). */
export function serviceCommand(s: ServiceOp, input?: string): ServiceCommand {
  const c: Command = input === undefined ? { tool: 'svc', line: serviceLine(s) } : { tool: 'svc', line: serviceLine(s), input };
  return Object.defineProperty(c, 'service', { value: s, enumerable: false }) as ServiceCommand;
}

export function isServiceCommand(c: Command): c is ServiceCommand {
  return c.tool === 'svc' && (c as Partial<ServiceCommand>).service !== undefined;
}

export type StepAction = 'create' | 'delete' | 'update' | 'recreate';

export interface Step {
  action: StepAction;
  /** Object key ("link lsb-1a2b3c4d", "fdb lsx-... 02:..:01 master"...). */
  key: string;
  /** What changed, for updates and recreations ("mtu 1500 -> 1450"). */
  changes?: string[];
  /** Why the step cannot run, when it cannot (e.g. the VM's interface does not exist). */
  blocked?: string;
  /**
   * A blocked step that only waits for this interface to appear (a VM that is not running: its
   * hook wires it when it starts). Waiting steps do not make an apply fail.
   */
  waits?: string;
  commands: Command[];
}

export interface Plan {
  steps: Step[];
}

/**
 * Phases, in execution order: deletions before creations (a MAC moving between ports, a link
 * recreated with new immutable attributes), dependencies first (bridges before their ports,
 * ports before their FDB entries), the firewall in one transaction, address servers last.
 */
export const Phase = {
  DeleteEntries: 0,
  DeleteFilters: 1,
  DeleteQdiscs: 2,
  ReleasePorts: 3,
  DeleteLinks: 4,
  CreateBridges: 5,
  CreateLinks: 6,
  UpdateLinks: 7,
  Ports: 8,
  PortFlags: 9,
  CreateEntries: 10,
  Qdiscs: 11,
  Filters: 12,
  Firewall: 13,
  /** Address servers and sysctls: after the bridges, ports and firewall they rely on. */
  Services: 14,
} as const;
export type Phase = (typeof Phase)[keyof typeof Phase];
