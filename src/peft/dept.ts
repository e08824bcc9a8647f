/**
 * DePT (Decomposed Prompt Tuning, ICLR 2024), ADePT's predecessor and baseline: a soft prompt
 * P (M, C) plus a POSITION-based low-rank offset on the source rows (docs/method.md):
 *
 * ```
 * E' = wte[ids] + s · (A1 · B1)[:S]       A1 (S_max, R), B1 (R, C), s = 8 / √R
 * X  = [P; E']
 * ```
 *
 * Init: A1 ~ U(−1/√R, 1/√R) (PyTorch's kaiming-uniform on an (S_max, R) tensor); B1 = 0. No
 * dropout, no bias.
 *
 * Shape legend: B batch, S source length, S_max the positions A1 covers, M prompt length,
 * C d_model, R rank.
 *
 * @module
 */

import type { Op } from "../gpu/op.ts";
import { type Tensor, type TensorSpec, viewOf } from "../gpu/tensor.ts";
import { matmul } from "../layers/matmul.ts";
import { sumBatch } from "../layers/prompt_embed.ts";
import type { FrozenT5 } from "../model/t5_graph.ts";
import {
  type DeptConfig,
  type MethodInit,
  type MethodModule,
  type ParamGroup,
  PeftError,
  type RandomSource,
} from "./method.ts";
import {
  type BindContext,
  loraForkFields,
  type OffsetForward,
  PROMPT_DEFAULTS,
  PromptMethod,
  promptSettingsFrom,
  resolveConfig,
  uniformValues,
} from "./prompt_method.ts";

/** The trainable tensors of DePT for a width C. */
function shapes(c: DeptConfig, C: number): Record<string, { shape: number[]; group: ParamGroup }> {
  return {
    prompt: { shape: [c.promptLength, C], group: "prompt" },
    A1: { shape: [c.maxSourceLength, c.rank], group: "offset" },
    B1: { shape: [c.rank, C], group: "offset" },
  };
}

/**
 * DePT's scale of the position offset, `8 / √R`.
 *
 * @example
 * ```ts
 * import { deptScale } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(deptScale(64), 1);
 * assert.equal(deptScale(30), 8 / Math.sqrt(30)); // the paper's R
 * ```
 */
export function deptScale(rank: number): number {
  return 8 / Math.sqrt(rank);
}

/**
 * DePT on a frozen T5.
 *
 * @example
 * ```ts
 * import { loadT5, methodModule, Mt19937, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const model = await loadT5(gpu, "tests/fixtures/t5/tiny-t5-v1_1"); // d_model 64
 * const dept = methodModule("dept");
 * const config = dept.resolve({ promptLength: 2, rank: 4, maxSourceLength: 8 });
 * const initTextIds = [37, 1]; // the ids of the prompt's init text (here made up), EOS last
 * const method = await dept.create(model, config, { rng: new Mt19937(1), initTextIds });
 * const shapes = method.tensors.map((t) => [t.name, t.param.shape]);
 * assert.deepEqual(shapes, [["prompt", [2, 64]], ["A1", [8, 4]], ["B1", [4, 64]]]);
 * const gen = model.generator({ batch: 1, sourceLength: 2 + 3 }); // S 3 <= maxSourceLength
 * const binding = method.bind(gen, { train: false });
 * binding.setInputs(Int32Array.of(13, 8, 1), [1, 1, 1]);
 * await gpu.run(binding.forwardOps);
 * // B1 starts at 0: the first source row is the embedding row of token 13, no offset yet
 * const [x, wte] = [await gpu.read(gen.inputsEmbeds), await gpu.read(model.w("shared.weight"))];
 * assert.deepEqual(x.subarray(2 * 64, 3 * 64), wte.subarray(13 * 64, 14 * 64));
 * method.destroy();
 * gen.destroy();
 * model.destroy();
 * gpu.destroy();
 * ```
 */
export class DeptMethod extends PromptMethod<DeptConfig> {
  constructor(model: FrozenT5, config: DeptConfig) {
    super(model, config, shapes(config, model.config.dModel));
  }

  protected initOffset(rng: RandomSource): void {
    const { rank: R, maxSourceLength: S } = this.config;
    const bound = 1 / Math.sqrt(R);
    this.gpu.write(this.tensor("A1").param, uniformValues(rng, S * R, -bound, bound));
    this.gpu.zero(this.tensor("B1").param);
  }

  protected scratchSpecs(_B: number, S: number, train: boolean): Record<string, TensorSpec> {
    const C = this.model.config.dModel;
    this.#checkLength(S);
    return train ? { pos: { shape: [S, C] }, dpos: { shape: [S, C] } } : { pos: { shape: [S, C] } };
  }

  #checkLength(S: number): void {
    if (S > this.config.maxSourceLength) {
      throw new PeftError(
        `dept: the source holds ${S} tokens but the position offset covers ` +
          `${this.config.maxSourceLength} (maxSourceLength); create the method with ` +
          `maxSourceLength >= ${S} or shorten the source`,
      );
    }
  }

  /** A1's first S rows (S, R). */
  #a1(S: number, grad = false): Tensor {
    const t = this.tensor("A1");
    return viewOf(grad ? t.grad : t.param, [S, this.config.rank]);
  }

  protected offsetForward(ctx: BindContext): OffsetForward {
    const pos = ctx.scratch.pos;
    return {
      ops: [matmul(ctx.gpu, {
        a: this.#a1(ctx.S),
        b: this.tensor("B1").param,
        out: pos,
        alpha: deptScale(this.config.rank),
        label: "dept.offset",
      })],
      offset: { kind: "position", pos },
    };
  }

  protected offsetBackward(ctx: BindContext, g: Tensor): Op[] {
    const { gpu, scratch, M, S } = ctx;
    const s = deptScale(this.config.rank);
    // Rows of A1 past S never get a gradient: they stay at the zeros they were given.
    return [
      sumBatch(gpu, { x: g, row0: M, out: scratch.dpos, label: "dept.offset.grad" }),
      matmul(gpu, {
        a: scratch.dpos,
        b: this.tensor("B1").param,
        out: this.#a1(S, true),
        transB: true,
        alpha: s,
        label: "dept.A1.grad",
      }),
      matmul(gpu, {
        a: this.#a1(S),
        b: scratch.dpos,
        out: this.tensor("B1").grad,
        transA: true,
        alpha: s,
        label: "dept.B1.grad",
      }),
    ];
  }
}

/** The DePT module of the registry. */
export const DEPT: MethodModule<DeptConfig> = {
  name: "dept",
  title: "DePT (Decomposed Prompt Tuning)",
  defaults: {
    method: "dept",
    promptLength: 60,
    rank: 30,
    maxSourceLength: 256,
    ...PROMPT_DEFAULTS,
  },
  options: [
    { key: "promptLength", description: "M, soft prompt rows (paper: 60)" },
    { key: "rank", description: "R, rank of the position offset A1·B1 (paper: 30)" },
    { key: "maxSourceLength", description: "S, source positions the offset covers (paper: 256)" },
  ],
  resolve(overrides) {
    return resolveConfig(DEPT.defaults, overrides);
  },
  adapter: {
    peftType: "PROMPT_TUNING_LORA",
    tensorNames: {
      prompt: "prompt_embeddings",
      A1: "prompt_encoder.lora_embedding_A",
      B1: "prompt_encoder.lora_embedding_B",
    },
    promptCopies: 1,
    configFields: (c, m) => loraForkFields(c.rank, c.maxSourceLength, m.dModel),
    settingsFrom: (j, where) =>
      promptSettingsFrom(j, where, { r: "rank", max_length: "maxSourceLength" }),
  },
  shapes,
  async create(model: FrozenT5, config: DeptConfig, init: MethodInit) {
    const m = new DeptMethod(model, config);
    await m.initialize(init);
    return m;
  },
};
