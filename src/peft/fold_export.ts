/**
 * Exporting a trained ADePT as what plain tools already run: a T5 checkpoint whose encoder
 * embedding is the folded table `wte'[v] = wte[v] + relu(wte[v]·A + a)·Bw + b`, plus the soft
 * prompt as a Hugging Face PEFT prompt-tuning adapter. transformers loads the checkpoint
 * (`encoder.embed_tokens.weight` differs from `shared.weight`, so it stays untied: the decoder
 * and the LM head keep the original embedding), and `PeftModel.from_pretrained` puts the prompt
 * in front of the encoder input: the result computes ADePT exactly, at prompt tuning's cost.
 *
 * ```
 * <dir>/model/config.json, model.safetensors   the folded checkpoint
 * <dir>/prompt/adapter_config.json, adapter_model.safetensors   PEFT prompt tuning
 * ```
 *
 * @module
 */

import { join } from "node:path";
import type { TensorToWrite } from "../io/safetensors.ts";
import { writeSafetensors } from "../io/safetensors.ts";
import type { T5Model } from "../model/t5.ts";
import type { AdeptMethod } from "./adept.ts";
import { type AdapterMeta, writeAdapter } from "./adapter.ts";
import { PeftError } from "./method.ts";

/** Files copied from the base checkpoint folder when present. */
const COPIED = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "spiece.model",
];

/**
 * Writes the folded checkpoint and the prompt adapter of `method` into `dir` (see the module
 * doc). The model must have been loaded from a folder (its `config.json` is copied).
 *
 * @example
 * ```ts
 * import {
 *   ADEPT,
 *   AdeptMethod,
 *   exportFolded,
 *   loadT5,
 *   Mt19937,
 *   openSafetensors,
 *   readAdapter,
 *   requestGpu,
 * } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const model = await loadT5(gpu, "tests/fixtures/t5/tiny-t5-v1_1");
 * const config = ADEPT.resolve({ promptLength: 4, rank: 8, promptInit: "random" });
 * const method = new AdeptMethod(model, config);
 * await method.initialize({ rng: new Mt19937(1) });
 * const dir = await Deno.makeTempDir();
 * await exportFolded(dir, model, method, { baseModel: "tests/fixtures/t5/tiny-t5-v1_1" });
 * {
 *   using weights = await openSafetensors(`${dir}/model/model.safetensors`);
 *   const folded = await weights.readFloat("encoder.embed_tokens.weight", { dtype: "f32" });
 *   assert.deepEqual(folded, await gpu.read(method.foldedTable)); // wte'
 * }
 * assert.equal((await readAdapter(`${dir}/prompt`)).methodConfig.method, "prompt_tuning");
 * await Deno.remove(dir, { recursive: true });
 * method.destroy();
 * model.destroy();
 * gpu.destroy();
 * ```
 */
export async function exportFolded(
  dir: string,
  model: T5Model,
  method: AdeptMethod,
  meta: Omit<AdapterMeta, "dModel" | "vocabSize">,
): Promise<void> {
  if (!model.dir) {
    throw new PeftError(
      "exportFolded: the model has no checkpoint folder to copy config.json from",
    );
  }
  const gpu = model.gpu;
  await gpu.run(method.foldOps(), "adept.fold");
  const modelDir = join(dir, "model");
  await Deno.mkdir(modelDir, { recursive: true });
  for (const f of COPIED) {
    await Deno.copyFile(join(model.dir, f), join(modelDir, f)).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, t] of Object.entries(model.weights.tensors)) {
    // f32, or f16 for projections loaded with weightDtype "f16" (written as F16)
    tensors[name] = { shape: t.shape, data: await gpu.read(t) };
  }
  const folded = method.foldedTable;
  tensors["encoder.embed_tokens.weight"] = {
    shape: folded.shape,
    data: await gpu.read(folded) as Float32Array,
  };
  await writeSafetensors(join(modelDir, "model.safetensors"), tensors, {
    metadata: { format: "pt" },
  });
  const prompt = method.tensor("prompt").param;
  const C = model.config.dModel;
  const { promptLength, promptInit, promptInitText } = method.config;
  await writeAdapter(
    join(dir, "prompt"),
    { method: "prompt_tuning", promptLength, promptInit, promptInitText },
    { prompt: { shape: [method.promptLength, C], data: await gpu.read(prompt) as Float32Array } },
    {
      ...meta,
      baseModel: meta.baseModel,
      dModel: C,
      vocabSize: model.config.vocabSize,
      numHeads: model.config.numHeads,
      numLayers: model.config.numLayers,
    },
  );
}
