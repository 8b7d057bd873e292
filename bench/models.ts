/**
 * Generated netmodels for the control-plane benchmark, built with the builder API only.
 *
 * Placement is deterministic: virt i belongs to net (i mod nets) and is its k-th virt
 * (k = floor(i / nets)); it lives on phys (net + k) mod physes, so every net spans
 * min(virtsPerNet, physes) consecutive physes and every phys carries virts of many nets.
 * With `local`, the first `local` virts live on p0 instead (the host whose applies are
 * measured) and the others are spread over the remaining physes the same way.
 * Every net is attached to exactly the physes its virts live on.
 */
import { Netmodel, type Net, type NetworkTypeName, type Phys, type Virt } from '../src/model/netmodel.js';

export interface ModelSpec {
  /** Key used in tables and to rebuild the model in a child process. */
  key: string;
  /** What it stands for, for the tables. */
  label: string;
  physes: number;
  nets: number;
  virts: number;
  /** Virts placed on p0 (the measured host); the rest go to p1..p(n-1). */
  local?: number;
  type: NetworkTypeName;
  /** lsdn's default per-virt firewall (anti-spoofing); false switches it off on every virt. */
  antiSpoof?: boolean;
}

/** The measured host of every generated model. */
export const LOCAL_PHYS = 'p0';
/** Underlay interface of every phys. */
export const UNDERLAY_IF = 'eth0';

export const MODEL_SPECS: Record<string, ModelSpec> = {
  a: { key: 'a', label: '20 physes, 50 nets, 1000 virts', physes: 20, nets: 50, virts: 1000, type: 'vxlan/static' },
  b: { key: 'b', label: '100 physes, 500 nets, 10,000 virts', physes: 100, nets: 500, virts: 10_000, type: 'vxlan/static' },
  c: { key: 'c', label: '20 physes, 50 nets, 2000 virts, 1000 on p0', physes: 20, nets: 50, virts: 2000, local: 1000, type: 'vxlan/static' },
  d: { key: 'd', label: '(c) with anti-spoofing off', physes: 20, nets: 50, virts: 2000, local: 1000, type: 'vxlan/static', antiSpoof: false },
};

/** The same shapes at a tenth of the size (`--quick`). */
export const QUICK_SPECS: Record<string, ModelSpec> = {
  a: { ...MODEL_SPECS.a!, label: '10 physes, 10 nets, 100 virts', physes: 10, nets: 10, virts: 100 },
  b: { ...MODEL_SPECS.b!, label: '20 physes, 50 nets, 1000 virts', physes: 20, nets: 50, virts: 1000 },
  c: { ...MODEL_SPECS.c!, label: '10 physes, 10 nets, 200 virts, 100 on p0', physes: 10, nets: 10, virts: 200, local: 100 },
  d: { ...MODEL_SPECS.d!, physes: 10, nets: 10, virts: 200, local: 100 },
};

export function specFor(key: string, quick: boolean): ModelSpec {
  const s = (quick ? QUICK_SPECS : MODEL_SPECS)[key];
  if (!s) throw new Error(`unknown model "${key}"`);
  return s;
}

export function physName(i: number): string {
  return `p${i}`;
}

/** Underlay address of phys i: 10.200.0.0/16. */
export function physIp(i: number): string {
  return `10.200.${(i >> 8) & 255}.${(i & 255) + 1}`;
}

/** A locally administered unicast MAC from a number (unique per model). */
export function macOf(n: number): string {
  const b = [0x02, Math.floor(n / 2 ** 32) & 255, (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Host-side interface name of virt i (unique on every phys, at most 15 characters). */
export function virtIf(i: number): string {
  return `vm${i}`;
}

export function netName(n: number): string {
  return `n${n}`;
}

/** Where virt i lives. */
export function placeOf(spec: ModelSpec, i: number): number {
  const local = spec.local ?? 0;
  if (i < local) return 0;
  const net = i % spec.nets;
  const k = Math.floor(i / spec.nets);
  if (local > 0) return 1 + ((net + k) % (spec.physes - 1));
  return (net + k) % spec.physes;
}

export interface Generated {
  model: Netmodel;
  spec: ModelSpec;
  physes: Phys[];
  nets: Net[];
  /** Host-side interface names of the virts on p0 (what the host must have before an apply). */
  localIfs: string[];
}

export function generate(spec: ModelSpec): Generated {
  const model = new Netmodel(`bench-${spec.key}`);
  model.addSettings(spec.type);
  const physes: Phys[] = [];
  for (let p = 0; p < spec.physes; p++) physes.push(model.addPhys(physName(p), { if: UNDERLAY_IF, ip: physIp(p) }));
  const nets: Net[] = [];
  for (let n = 0; n < spec.nets; n++) nets.push(model.addNet(netName(n), { vid: 1000 + n }));
  const localIfs: string[] = [];
  for (let i = 0; i < spec.virts; i++) {
    const net = nets[i % spec.nets]!;
    const p = placeOf(spec, i);
    const phys = physes[p]!;
    net.attach(phys);
    const v = net.virt(`v${i}`, { mac: macOf(i + 1), phys, if: virtIf(i) });
    if (spec.antiSpoof !== undefined) v.configure({ antiSpoof: spec.antiSpoof });
    if (p === 0) localIfs.push(virtIf(i));
  }
  return { model, spec, physes, nets, localIfs };
}

/**
 * The one-virt changes measured after the first build, applied cumulatively in this order:
 *   add     a new virt on p0 in the net of p0's first local virt
 *   move    that virt to another phys of the same net (it leaves p0)
 *   remove  p0's first original local virt
 */
export const CHANGES = ['add', 'move', 'remove'] as const;
export type Change = (typeof CHANGES)[number];

/** Interface name of the virt `add` creates. */
export const ADDED_IF = 'vmadd';

/** p0's first virt in model order. */
export function firstLocalVirt(g: Generated): Virt {
  const v = g.model.virts().find((x) => x.phys?.name === LOCAL_PHYS);
  if (!v) throw new Error('the model has no virt on p0');
  return v;
}

/** Apply the changes up to and including `upTo` to a freshly generated model. */
export function applyChanges(g: Generated, upTo: Change | 'none'): void {
  if (upTo === 'none') return;
  const first = firstLocalVirt(g);
  const net = first.net;
  const added = net.virt('vadd', { mac: macOf(0xfffff0), phys: LOCAL_PHYS, if: ADDED_IF });
  if (g.spec.antiSpoof !== undefined) added.configure({ antiSpoof: g.spec.antiSpoof });
  if (upTo === 'add') return;
  const target = [...net.physes].find((p) => p.name !== LOCAL_PHYS);
  if (!target) throw new Error(`net ${net.name} spans no other phys to move to`);
  added.migrate(target);
  if (upTo === 'move') return;
  first.remove();
}
