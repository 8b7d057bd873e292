/**
 * lsdn as a library. The CLI is a thin client of these functions.
 *
 *   import { Netmodel, validate, compileHost, planHost, applyHost } from 'lsdn';
 */
export * from './model/netmodel.js';
export * from './core/location.js';
export { parseRate, parseSize } from './model/units.js';
export { loadModelFile, loadModelText, type LoadResult } from './file/load.js';
export { dumpYaml, dumpJson, dumpLsdnJson, modelToFile } from './file/dump.js';
export { jsonSchema } from './file/schema.js';
export { validate, hasErrors, type ValidateOptions } from './validate/validate.js';
export { formatProblem, type Problem, type Severity } from './core/problem.js';
export { compileHost, compileNet, type HostFacts } from './compile/compile.js';
export * from './core/objects.js';
export { OWNED_NAME_PREFIX, OWNED_ALIAS_PREFIX, isOwnedLink } from './core/names.js';
export { planChanges, isEmptyPlan, planOperations, type Plan, type Step } from './plan/plan.js';
export { executePlan, type ExecuteReport, type StepResult } from './apply/execute.js';
export { planHost, applyHost, destroyHost, selectLocalPhys, type HostOptions, type HostPlan } from './apply/host.js';
export { Kernel } from './kernel/exec.js';
export { readHostState, type ReadResult } from './kernel/read/host.js';
export { probeFeatures, typeSupport, type KernelFeatures } from './kernel/probe.js';
export { NETWORK_TYPE_PLUGINS, NETWORK_TYPES, isNetworkType, networkType } from './types/registry.js';
export type { NetworkType, NetCompileContext, LocalNet, SettingsFileFields, SettingsShorthand, TypeChecks, TypeCheckContext } from './types/plugin.js';
export { labUp, labDown } from './lab/lab.js';
export { labLayout, labPrefix, type LabLayout } from './lab/layout.js';
export { labCheck, expectedReachability, formatMatrix, type CheckReport } from './lab/check.js';
export { applyInLab } from './lab/apply.js';
export { applyVirt, planVirt, virtByInterface, type VirtApplyOptions, type VirtApplyResult } from './apply/virt.js';
export { qemuNetArgs, libvirtInterfaceXml, findVirt, vmNic } from './vm/generate.js';
export { assignAddresses, allocate, serverAddress, slaacAddress, type AssignedAddress, type VirtAddressing } from './ipam/ipam.js';
export { writeAllocations, fileFormat } from './ipam/record.js';
export { runLsctl, importLsctl } from './lsctl/run.js';
export { dumpLsctl } from './lsctl/dump.js';
export { LsdnError, KernelError, UsageError, ModelInvalidError, LockBusyError, VmError, LabError, LsctlError, TclshMissingError } from './core/errors.js';
export { trace, type TraceRequest, type TraceResult, type Hop, type TracePath } from './trace/trace.js';
export { formatTrace, traceJson } from './trace/format.js';
