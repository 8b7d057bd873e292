/**
 * Where an object or one of its fields was written: file, 1-based line and column. A model read
 * from a store has no lines: `file` is the object's key, `line` 0, and `field` the path of the
 * field inside its value ("ip", "rules.0.action").
 */
export interface SourceLoc {
  file: string;
  line: number;
  col: number;
  field?: string;
}

/** "FILE:LINE:COL", or for a stored object "KEY" / "KEY:FIELD". */
export function formatLoc(loc: SourceLoc | undefined): string {
  if (!loc) return '';
  if (loc.line === 0) return loc.field ? `${loc.file}:${loc.field}` : loc.file;
  return `${loc.file}:${loc.line}:${loc.col}`;
}

/** An object that remembers where it and its fields were written. */
export class Located {
  loc?: SourceLoc;
  readonly fieldLocs: Map<string, SourceLoc> = new Map();

  /** The location of `field`, falling back to the object's own location. */
  locOf(field?: string): SourceLoc | undefined {
    return (field !== undefined ? this.fieldLocs.get(field) : undefined) ?? this.loc;
  }

  setLoc(loc: SourceLoc | undefined, fields?: Record<string, SourceLoc | undefined>): this {
    if (loc) this.loc = loc;
    for (const [k, v] of Object.entries(fields ?? {})) if (v) this.fieldLocs.set(k, v);
    return this;
  }
}
