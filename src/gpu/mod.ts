/**
 * The headless WebGPU runtime.
 *
 * @module
 */

export {
  type AdapterSummary,
  type Arena,
  arenaBytes,
  type ArenaChunk,
  Gpu,
  type GpuOptions,
  planArena,
  requestGpu,
  VIEW_ALIGNMENT,
} from "./device.ts";
export {
  GpuDeviceLostError,
  GpuLimitError,
  GpuOutOfMemoryError,
  GpuValidationError,
  NoAdapterError,
  ShapeError,
} from "./errors.ts";
export {
  buildOp,
  buildOps,
  type Constants,
  grid1d,
  type KernelName,
  Op,
  type OpSpec,
  uniformBytes,
} from "./kernel.ts";
export { type DType, type HostArray, numel, Tensor, type TensorSpec, viewOf } from "./tensor.ts";
