/**
 * ADePT (Adaptive Decomposed Prompt Tuning, ICLR 2025): a soft prompt P (M, C) plus a
 * token-shared feed-forward network that offsets every source token's embedding
 * (docs/method.md):
 *
 * ```
 * E  = wte[ids]                          (B, S, C)
 * H  = dropout(E·A + a)                  (B, S, R)   dropout at the model's rate, training only
 * E' = E + relu(H)·Bw + b                (B, S, C)
 * X  = [P; E']                           (B, M + S, C), the prompt rows get no offset
 * ```
 *
 * Init: A ~ U(−1/√R, 1/√R); a, Bw, b = 0 (training starts as prompt tuning). Because the offset
 * depends only on the token id, it folds into the embedding table for evaluation:
 * `wte'[v] = wte[v] + relu(wte[v]·A + a)·Bw + b` ({@link AdeptMethod.foldOps}), after which a
 * forward pass costs what prompt tuning costs.
 *
 * Shape legend: B batch, S source length, M prompt length, C d_model, R rank, V vocab.
 *
 * @module
 */

import type { Op } from "../gpu/op.ts";
import { type Tensor, type TensorSpec, viewOf } from "../gpu/tensor.ts";
import { reluBackward } from "../layers/activation.ts";
import { dropoutForward } from "../layers/dropout.ts";
import { matmul, matmulStrided } from "../layers/matmul.ts";
import { lowRankUpBackward, promptEmbed } from "../layers/prompt_embed.ts";
import { sumRows } from "../layers/reduce.ts";
import { embeddingTable, type FrozenT5 } from "../model/t5_graph.ts";
import type { AdeptConfig, MethodInit, MethodModule, ParamGroup, RandomSource } from "./method.ts";
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

/** The trainable tensors of ADePT for a width C. */
function shapes(c: AdeptConfig, C: number): Record<string, { shape: number[]; group: ParamGroup }> {
  const R = c.rank;
  return {
    prompt: { shape: [c.promptLength, C], group: "prompt" },
    A: { shape: [C, R], group: "offset" },
    a: { shape: [R], group: "offset" },
    Bw: { shape: [R, C], group: "offset" },
    b: { shape: [C], group: "offset" },
  };
}

/**
 * ADePT on a frozen T5.
 *
 * @example Folded evaluation gives the unfolded encoder input
 * ```ts
 * import { ADEPT, AdeptMethod, loadT5, Mt19937, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const model = await loadT5(gpu, "tests/fixtures/t5/tiny-t5-v1_1");
 * const config = ADEPT.resolve({ promptLength: 2, rank: 4, promptInit: "random" });
 * const method = new AdeptMethod(model, config);
 * await method.initialize({ rng: new Mt19937(1) });
 * // Bw and b start at 0 (training starts as prompt tuning): give the offset network some values
 * const state = await method.readState();
 * method.writeState({ ...state, Bw: state.Bw.map((_, i) => Math.sin(i)), b: state.b.fill(0.1) });
 * const gen = model.generator({ batch: 1, sourceLength: 2 + 3, maxNewTokens: 4 });
 * const inputsEmbeds = async (folded: boolean) => {
 *   const binding = method.bind(gen, { train: false, folded });
 *   binding.setInputs(Int32Array.of(13, 8, 1), [1, 1, 1]);
 *   // folded: refresh the folded table after the parameters changed, then gather from it
 *   await gpu.run([...(folded ? method.foldOps() : []), ...binding.forwardOps]);
 *   binding.destroy();
 *   return await gpu.read(gen.inputsEmbeds);
 * };
 * const [folded, unfolded] = [await inputsEmbeds(true), await inputsEmbeds(false)];
 * folded.forEach((x, i) => assert.ok(Math.abs(x - unfolded[i]) < 1e-5));
 * gen.destroy();
 * method.destroy();
 * model.destroy();
 * gpu.destroy();
 * ```
 */
export class AdeptMethod extends PromptMethod<AdeptConfig> {
  #folded?: { table: Tensor; hidden: Tensor; ops: Op[] };

  constructor(model: FrozenT5, config: AdeptConfig) {
    super(model, config, shapes(config, model.config.dModel));
  }

  protected initOffset(rng: RandomSource): void {
    const R = this.config.rank, C = this.model.config.dModel;
    const bound = 1 / Math.sqrt(R);
    this.gpu.write(this.tensor("A").param, uniformValues(rng, C * R, -bound, bound));
    for (const n of ["a", "Bw", "b"]) this.gpu.zero(this.tensor(n).param);
  }

  protected scratchSpecs(
    B: number,
    S: number,
    train: boolean,
    folded: boolean,
  ): Record<string, TensorSpec> {
    const R = this.config.rank;
    const specs: Record<string, TensorSpec> = {};
    if (folded) return specs;
    specs.hidden = { shape: [B, S, R] };
    if (train) {
      specs.dropped = { shape: [B, S, R] };
      specs.dZ = { shape: [B, S, R] };
      specs.dH = { shape: [B, S, R] };
    }
    return specs;
  }

  protected override tokenTable(folded: boolean): Tensor {
    return folded ? this.#foldState().table : embeddingTable(this.model, "encoder");
  }

  protected offsetForward(ctx: BindContext): OffsetForward {
    if (ctx.folded) return { ops: [] };
    const { gpu, scratch } = ctx;
    const ops: Op[] = [matmul(gpu, {
      a: ctx.tokens,
      b: this.tensor("A").param,
      bias: this.tensor("a").param,
      out: scratch.hidden,
      label: "adept.hidden",
    })];
    let hidden = scratch.hidden;
    if (ctx.dropout) {
      hidden = scratch.dropped;
      ops.push(dropoutForward(gpu, {
        x: scratch.hidden,
        out: hidden,
        ...ctx.dropout,
        label: "adept.hidden.dropout",
      }));
    }
    return {
      ops,
      offset: {
        kind: "lowrank",
        hidden,
        up: this.tensor("Bw").param,
        bias: this.tensor("b").param,
      },
    };
  }

  protected offsetBackward(ctx: BindContext, g: Tensor): Op[] {
    const { gpu, scratch, B, S, M, C } = ctx;
    const R = this.config.rank;
    const hidden = ctx.dropout ? scratch.dropped : scratch.hidden;
    const ops: Op[] = [
      // dBw = relu(H)ᵀ · dE', db = Σ dE'
      lowRankUpBackward(gpu, {
        hidden,
        dout: g,
        dup: this.tensor("Bw").grad,
        dbias: this.tensor("b").grad,
        label: "adept.up.grad",
      }),
      // dZ = dE' · Bwᵀ over the source rows of each batch entry
      matmulStrided(gpu, {
        m: S,
        n: R,
        k: C,
        batch: [B, 1],
        transB: true,
        a: { tensor: g, offset: M * C, ld: C, batchStrides: [(M + S) * C, 0] },
        b: { tensor: this.tensor("Bw").param, ld: C },
        out: { tensor: scratch.dZ, ld: R, batchStrides: [S * R, 0] },
        label: "adept.relu_out.grad",
      }),
      // dH = dropout'(dZ ⊙ relu'(dropped H)): both factors are elementwise, so the kernel's
      // dropout-then-activation order gives the same product
      reluBackward(gpu, {
        dout: scratch.dZ,
        x: hidden,
        dx: scratch.dH,
        dropout: ctx.dropout,
        label: "adept.relu.grad",
      }),
    ];
    const dH = scratch.dH;
    ops.push(
      sumRows(gpu, { x: dH, out: this.tensor("a").grad, label: "adept.a.grad" }),
      matmul(gpu, {
        a: ctx.tokens.reshape([B * S, C]),
        b: dH.reshape([B * S, R]),
        out: this.tensor("A").grad,
        transA: true,
        label: "adept.A.grad",
      }),
    );
    return ops;
  }

  /** The folded table and the ops that compute it, allocated on first use. */
  #foldState(): { table: Tensor; hidden: Tensor; ops: Op[] } {
    if (this.#folded) return this.#folded;
    const gpu = this.gpu;
    const { vocabSize: V, dModel: C } = this.model.config;
    const wte = embeddingTable(this.model, "encoder");
    const table = gpu.tensor("adept.folded_wte", [V, C]);
    const hidden = gpu.tensor("adept.folded_hidden", [1, V, this.config.rank]);
    const ops = [
      matmul(gpu, {
        a: wte,
        b: this.tensor("A").param,
        bias: this.tensor("a").param,
        out: hidden.reshape([V, this.config.rank]),
        label: "adept.fold.hidden",
      }),
      // the same kernel as the unfolded forward, on the table's rows: B = 1, S = V, M = 0
      promptEmbed(gpu, {
        prompt: viewOf(gpu.placeholder, [0, C], "no_prompt"),
        tokens: wte.reshape([1, V, C]),
        out: table.reshape([1, V, C]),
        offset: {
          kind: "lowrank",
          hidden,
          up: this.tensor("Bw").param,
          bias: this.tensor("b").param,
        },
        label: "adept.fold",
      }),
    ];
    this.#folded = { table, hidden, ops };
    return this.#folded;
  }

  /**
   * Ops that fold the current offset network into a copy of the embedding table (V, C): run
   * them after the parameters change and before folded evaluation.
   */
  foldOps(): readonly Op[] {
    return this.#foldState().ops;
  }

  /** The folded table (V, C) (valid after {@link AdeptMethod.foldOps} ran). */
  get foldedTable(): Tensor {
    return this.#foldState().table;
  }

  override prepareEvalOps(): readonly Op[] {
    return this.foldOps();
  }

  override destroy(): void {
    super.destroy();
    if (this.#folded) {
      for (const op of this.#folded.ops) op.destroy();
      this.gpu.freeBuffer(this.#folded.table.buffer);
      this.gpu.freeBuffer(this.#folded.hidden.buffer);
    }
  }
}

/** The ADePT module of the registry. */
export const ADEPT: MethodModule<AdeptConfig> = {
  name: "adept",
  title: "ADePT (Adaptive Decomposed Prompt Tuning)",
  defaults: { method: "adept", promptLength: 60, rank: 19, ...PROMPT_DEFAULTS },
  options: [
    { key: "promptLength", description: "M, soft prompt rows (paper: 60)" },
    { key: "rank", description: "R, width of the token-wise offset network (paper: 19)" },
  ],
  resolve(overrides) {
    return resolveConfig(ADEPT.defaults, overrides);
  },
  adapter: {
    peftType: "PROMPT_TUNING_LORAX",
    tensorNames: {
      prompt: "prompt_embeddings",
      A: "prompt_encoder.lora_embedding_A",
      a: "prompt_encoder.lora_embedding_a",
      Bw: "prompt_encoder.lora_embedding_B",
      b: "prompt_encoder.lora_embedding_b",
    },
    promptCopies: 1,
    configFields: (c, m) => loraForkFields(c.rank, m.sourceLength ?? 256, m.dModel),
    settingsFrom: (j, where) => promptSettingsFrom(j, where, { r: "rank" }),
  },
  shapes,
  async create(model: FrozenT5, config: AdeptConfig, init: MethodInit) {
    const m = new AdeptMethod(model, config);
    await m.initialize(init);
    return m;
  },
};
