/**
 * Vanilla prompt tuning (Lester et al., 2021), the baseline: a soft prompt P (L, C) prepended to
 * the encoder input, nothing else (docs/method.md: L = 100).
 *
 * Shape legend: B batch, S source length, L (= M) prompt length, C d_model.
 *
 * @module
 */

import type { Op } from "../gpu/op.ts";
import type { TensorSpec } from "../gpu/tensor.ts";
import type { FrozenT5 } from "../model/t5_graph.ts";
import type { MethodInit, MethodModule, ParamGroup, PromptTuningConfig } from "./method.ts";
import {
  type OffsetForward,
  PROMPT_DEFAULTS,
  PromptMethod,
  promptSettingsFrom,
  resolveConfig,
} from "./prompt_method.ts";

/** The trainable tensor of prompt tuning for a width C. */
function shapes(
  c: PromptTuningConfig,
  C: number,
): Record<string, { shape: number[]; group: ParamGroup }> {
  return { prompt: { shape: [c.promptLength, C], group: "prompt" } };
}

/**
 * Prompt tuning on a frozen T5.
 *
 * @example The prompt starts as the embedding rows of a text
 * ```ts
 * import { loadT5, loadTokenizer, methodModule, Mt19937, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const model = await loadT5(gpu, "tasks/default/model"); // the demo's tiny T5, d_model 48
 * const tokenizer = await loadTokenizer("tasks/default/model");
 * const pt = methodModule("pt");
 * const config = pt.resolve({ promptLength: 6, promptInitText: "translate the words" });
 * const initTextIds = tokenizer.encode(config.promptInitText); // with EOS
 * const method = await pt.create(model, config, { rng: new Mt19937(1), initTextIds });
 * assert.equal(method.parameterCount, 6 * 48);
 * const { prompt } = await method.readState(); // (L, C)
 * const wte = await gpu.read(model.w("shared.weight"));
 * for (let r = 0; r < 6; r++) { // the text's rows, tiled to L
 *   const id = initTextIds[r % initTextIds.length];
 *   assert.deepEqual(prompt.subarray(r * 48, r * 48 + 48), wte.subarray(id * 48, id * 48 + 48));
 * }
 * method.destroy();
 * model.destroy();
 * gpu.destroy();
 * ```
 */
export class PromptTuningMethod extends PromptMethod<PromptTuningConfig> {
  constructor(model: FrozenT5, config: PromptTuningConfig) {
    super(model, config, shapes(config, model.config.dModel));
  }

  protected initOffset(): void {}

  protected scratchSpecs(): Record<string, TensorSpec> {
    return {};
  }

  protected offsetForward(): OffsetForward {
    return { ops: [] };
  }

  protected offsetBackward(): Op[] {
    return [];
  }
}

/** The prompt-tuning module of the registry. */
export const PROMPT_TUNING: MethodModule<PromptTuningConfig> = {
  name: "prompt_tuning",
  title: "prompt tuning",
  defaults: { method: "prompt_tuning", promptLength: 100, ...PROMPT_DEFAULTS },
  options: [{ key: "promptLength", description: "L, soft prompt rows (paper: 100)" }],
  resolve(overrides) {
    return resolveConfig(PROMPT_TUNING.defaults, overrides);
  },
  adapter: {
    // Hugging Face PEFT's own prompt tuning (0.21), as `save_pretrained` writes it.
    peftType: "PROMPT_TUNING",
    tensorNames: { prompt: "prompt_embeddings" },
    promptCopies: 2,
    configFields: () => ({
      auto_mapping: null,
      modules_to_save: null,
      peft_version: "0.21.0",
      tokenizer_kwargs: null,
    }),
    settingsFrom: (j, where) => promptSettingsFrom(j, where),
  },
  shapes,
  async create(model: FrozenT5, config: PromptTuningConfig, init: MethodInit) {
    const m = new PromptTuningMethod(model, config);
    await m.initialize(init);
    return m;
  },
};
