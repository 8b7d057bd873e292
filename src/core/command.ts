/** One kernel command of a plan: a batch line for one tool (what `lsdn plan` prints after the tool's name). */

/** The kernel tools lsdn drives in batches. */
export type Tool = 'ip' | 'bridge' | 'tc' | 'nft';

export interface Command {
  /** `svc`: a service step (namespaces, files, processes, sysctls) run by the shell's service runner. */
  tool: Tool | 'svc';
  /** One batch line (without the tool name), e.g. "link add name lsb-1 type bridge". */
  line: string;
  /** svc `write` lines: the file's content. */
  input?: string;
}
