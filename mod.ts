/**
 * ADePT trainer: parameter-efficient fine-tuning of frozen language models on WebGPU.
 *
 * - `requestGpu()` acquires a headless WebGPU device; tensors, arenas and ops live on it.
 * - `src/layers`: launchers of the WGSL kernels (forward and backward) with CPU references.
 * - `src/optim`: AdamW and gradient clipping on the GPU.
 * - `src/model`: safetensors, T5 checkpoints.
 * - `src/data`: Hub access, splits and metrics.
 *
 * @example
 * ```ts ignore
 * import { matmul, requestGpu } from "@adept/trainer";
 * const gpu = await requestGpu();
 * const a = gpu.upload("a", new Float32Array([1, 2, 3, 4]), [2, 2]);
 * const c = gpu.tensor("c", [2, 2]);
 * await gpu.run(matmul(gpu, { a, b: a, out: c }));
 * console.log(await gpu.read(c)); // Float32Array [7, 10, 15, 22]
 * ```
 *
 * @module
 */

export * from "./src/gpu/mod.ts";
export * from "./src/layers/mod.ts";
export * from "./src/optim/mod.ts";
