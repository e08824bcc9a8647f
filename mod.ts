/**
 * ADePT trainer: parameter-efficient fine-tuning of frozen language models on WebGPU.
 *
 * - `src/gpu`: `requestGpu()` acquires a headless WebGPU device; tensors, arenas and ops live on
 *   it.
 * - `src/io`: Hugging Face Hub access and cache (`hubDownload`), safetensors, label conventions.
 * - `src/layers`: launchers of the WGSL kernels (forward and backward) with CPU references.
 * - `src/optim`: AdamW and gradient clipping on the GPU.
 * - `src/model`: T5 checkpoints (`loadT5`), forward/backward sessions and greedy generation.
 * - `src/data`: tokenizers, datasets, the paper's tasks, splits, metrics, tokenized cache, batches.
 * - `src/sweep`: grids of training runs (`planSweep`, `runSweep`, Slurm and Kubernetes job arrays,
 *   `collectReport`), as `deno task sweep` runs them.
 *
 * @example Loss, input-embedding gradient and greedy decoding of a T5
 * ```ts
 * import { loadT5, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * // A Hub id such as "google-t5/t5-base" (through the HF cache) or a local folder; here the
 * // tests' tiny T5 v1.1 (d_model 64, vocabulary 256).
 * const model = await loadT5(gpu, "tests/fixtures/t5/tiny-t5-v1_1");
 * const session = model.session({ batch: 2, sourceLength: 8, targetLength: 3 });
 * const inputIds = new Int32Array([13, 8, 1, 0, 0, 0, 0, 0, 37, 1, 0, 0, 0, 0, 0, 0]);
 * const attentionMask = [1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0];
 * const labels = new Int32Array([209, 1, -100, 63, 1, -100]); // -100: ignored by the loss
 * session.setBatch({ inputIds, attentionMask, labels });
 * await session.forward(); // evaluation mode: dropout off
 * assert.ok((await session.readLoss()) > 0);
 * await session.backward(); // training mode: dropout on
 * const grad = await session.readInputsEmbedsGrad(); // (2, 8, 64)
 * assert.equal(grad.length, 2 * 8 * 64);
 * const gen = model.generator({ batch: 2, sourceLength: 8 }); // at most 20 new tokens
 * const out = await gen.generate({ inputIds, attentionMask }); // ids per row, ending at EOS
 * assert.equal(out.length, 2);
 * gpu.destroy();
 * ```
 *
 * @example Kernels directly
 * ```ts
 * import { matmul, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const a = gpu.upload("a", new Float32Array([1, 2, 3, 4]), [2, 2]);
 * const c = gpu.tensor("c", [2, 2]);
 * await gpu.run(matmul(gpu, { a, b: a, out: c }));
 * assert.deepEqual(await gpu.read(c), new Float32Array([7, 10, 15, 22]));
 * gpu.destroy();
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
export * from "./src/peft/mod.ts";
export * from "./src/train/mod.ts";
export * from "./src/sweep/mod.ts";
