export {
  ProcessRuntime,
  ProcessState,
  ExitReason,
  LimitsMode,
  type ProcessSpec,
  type ProcessRecord,
  type ExitInfo,
  type ExitListener,
  type ProcessRuntimeOptions,
  type ResourceLimits,
} from './runtime.ts';
