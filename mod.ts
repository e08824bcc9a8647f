/**
 * ADePT trainer: parameter-efficient fine-tuning of frozen language models on WebGPU.
 *
 * - `requestGpu()` acquires a headless WebGPU device; tensors, arenas and ops live on it.
 * - `src/layers`: launchers of the WGSL kernels (forward and backward) with CPU references.
 * - `src/optim`: AdamW and gradient clipping on the GPU.
 * - `src/model`: safetensors, T5 checkpoints (`loadT5`), forward/backward sessions and greedy
 *   generation (`T5Generator`).
 * - `src/data`: Hub access, splits and metrics.
 *
 * @example Loss, input-embedding gradient and greedy decoding of a T5
 * ```ts ignore
 * import { loadT5, requestGpu } from "@adept/trainer";
 * const gpu = await requestGpu();
 * const model = await loadT5(gpu, "google-t5/t5-base"); // Hub id or local folder
 * const session = model.session({ batch: 2, sourceLength: 8, targetLength: 3 });
 * const inputIds = new Int32Array([13, 8, 1, 0, 0, 0, 0, 0, 37, 1, 0, 0, 0, 0, 0, 0]);
 * const attentionMask = [1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0];
 * session.setBatch({ inputIds, attentionMask, labels: new Int32Array([209, 1, -100, 632, 1, -100]) });
 * await session.forward(); // evaluation mode: dropout off
 * console.log(await session.readLoss());
 * await session.backward(); // training mode: dropout on
 * const grad = await session.readInputsEmbedsGrad(); // (2, 8, 768)
 * const gen = model.generator({ batch: 2, sourceLength: 8 });
 * console.log(await gen.generate({ inputIds, attentionMask })); // number[][], each ending at EOS
 * ```
 *
 * @example Kernels directly
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
export * from "./src/io/mod.ts";
export * from "./src/layers/mod.ts";
export * from "./src/optim/mod.ts";
export * from "./src/model/mod.ts";
export * from "./src/data/mod.ts";
