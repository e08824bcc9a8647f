/**
 * The headless WebGPU runtime.
 *
 * @module
 */

export { allocTree, flattenSpecs, type SpecTree, treeBytes } from "./arena_tree.ts";
export {
  type AdapterSummary,
  type Arena,
  arenaBytes,
  type ArenaChunk,
  Gpu,
  type GpuOptions,
  planArena,
  type Recordable,
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
export { type Constants, type KernelName } from "./kernel.ts";
export { buildOp, buildOps, grid1d, Op, type OpSpec, uniformBytes, workgroupsFor } from "./op.ts";
export { type DType, type HostArray, numel, Tensor, type TensorSpec, viewOf } from "./tensor.ts";
