/**
 * Greedy generation for T5 with a key/value cache in the decoder: the encoder runs once, each
 * layer's cross-attention keys and values are computed once, and every step runs the decoder on
 * one new position against the cached self-attention keys and values. The argmax, the EOS
 * bookkeeping and the feedback of the chosen token all stay on the GPU; the host reads a
 * finished flag every few steps and the tokens once at the end.
 *
 * Shape legend: B batch, S source length, N max new tokens, C d_model, H heads, D d_kv,
 * HD = H·D, F d_ff, V vocab.
 *
 * @module
 */

import type { Arena } from "../gpu/device.ts";
import { arenaBytes } from "../gpu/device.ts";
import { ShapeError } from "../gpu/errors.ts";
import { buildOp, type Op } from "../gpu/op.ts";
import type { Tensor, TensorSpec } from "../gpu/tensor.ts";
import { residualAdd } from "../layers/elementwise.ts";
import { checkIds, embeddingForward } from "../layers/embedding.ts";
import { matmul, matmulStrided } from "../layers/matmul.ts";
import { rmsNorm } from "../layers/rms_norm.ts";
import { bucketTable, positionBias } from "./position_bias.ts";
import { Builder, checkBindings, sessionSpecs, type T5Model } from "./t5.ts";

/** Options of {@link T5Generator}. */
export interface T5GeneratorShape {
  /** Rows per batch (B). */
  batch: number;
  /** Encoder input length S (a soft prompt counts towards it). */
  sourceLength: number;
  /** Most tokens generated per row, EOS included. @default {20} */
  maxNewTokens?: number;
}

/** Inputs of {@link T5Generator.generate}. */
export interface T5GenerateInput {
  /** Source ids (B, S). Give this or `inputsEmbeds`. */
  inputIds?: Int32Array;
  /** Encoder input embeddings (B, S, C). */
  inputsEmbeds?: Float32Array;
  /** 1 for real tokens, 0 for padding (B, S). */
  attentionMask: ArrayLike<number>;
}

/** Options of {@link T5Generator.generate}. */
export interface T5GenerateOptions {
  /** Read the finished flags every this many steps (each read costs a queue round trip). @default {4} */
  checkEvery?: number;
  /**
   * Skip the upload of inputs: the caller already wrote {@link T5Generator.inputsEmbeds} (for
   * example a prompt method's encoder input) and the mask. @default {false}
   */
  inputsOnGpu?: boolean;
}

function genSpecs(model: T5Model, shape: Required<T5GeneratorShape>): Record<string, TensorSpec> {
  const cfg = model.config;
  const { batch: B, sourceLength: S, maxNewTokens: N } = shape;
  const { dModel: C, numHeads: H, dKv: D, dFf: F, vocabSize: V } = cfg;
  const HD = H * D;
  // targetLength N sizes the shared scratch for (B, H, 1, N) self-attention scores too.
  const specs = sessionSpecs(cfg, { batch: B, sourceLength: S, targetLength: N }, {
    decoder: false,
    grads: false,
  });
  const put = (name: string, shape: number[], dtype: TensorSpec["dtype"] = "f32") =>
    specs[name] = { shape, dtype };
  put("gen.cur", [B, 1], "i32");
  put("gen.out", [B, N], "i32");
  put("gen.finished", [B], "u32");
  put("gen.h", [B, 1, C]);
  put("gen.r", [B, 1]);
  put("gen.q", [B, 1, HD]);
  put("gen.p", [B, H, 1, Math.max(N, S)]);
  put("gen.buckets", [2 * N + 1], "i32");
  put("gen.bias", [H, 1, N]);
  put("gen.logits", [B, 1, V]);
  for (const u of cfg.isGatedAct ? ["u0", "u1"] : ["u"]) put(`gen.${u}`, [B, 1, F]);
  for (let l = 0; l < cfg.numDecoderLayers; l++) {
    put(`gen.${l}.k`, [B, N, HD]);
    put(`gen.${l}.v`, [B, N, HD]);
    put(`gen.${l}.ck`, [B, S, HD]);
    put(`gen.${l}.cv`, [B, S, HD]);
  }
  return specs;
}

/**
 * Greedy decoding for one fixed (batch, source length, max new tokens): every buffer and op is
 * built once, so repeated calls (an evaluation loop) allocate nothing.
 *
 * @example
 * ```ts ignore
 * const gen = new T5Generator(model, { batch: 8, sourceLength: 256 });
 * const ids = await gen.generate({ inputIds, attentionMask }); // number[][], each ending at EOS
 * ```
 */
export class T5Generator {
  /** Activations, caches and outputs. */
  readonly buffers: Arena<string>;
  /** Encoder input embeddings (B, S, C). */
  readonly inputsEmbeds: Tensor;
  /** Encoder key mask (B, S) f32. */
  readonly attentionMask: Tensor;
  /** Generated ids (B, N) i32; pad after EOS. */
  readonly tokens: Tensor;
  readonly shape: Required<T5GeneratorShape>;
  readonly #embedOp: Op;
  readonly #prefill: Op[];
  readonly #step: Op[];
  /** Ops whose uniforms follow the step index, with the update for step t. */
  readonly #perStep: [Op, (t: number) => Record<string, number>][] = [];

  constructor(readonly model: T5Model, shape: T5GeneratorShape) {
    const gpu = model.gpu;
    const cfg = model.config;
    this.shape = { maxNewTokens: 20, ...shape };
    const { batch: B, sourceLength: S, maxNewTokens: N } = this.shape;
    if (!Number.isInteger(N) || N < 1) {
      throw new ShapeError(`T5 generator: maxNewTokens must be a positive integer, got ${N}`);
    }
    const specs = genSpecs(model, this.shape);
    checkBindings(gpu, specs, `T5 generator (batch ${B}, source length ${S})`);
    this.buffers = gpu.arena("t5_generate", specs);
    const b = this.buffers.tensors;
    this.inputsEmbeds = b["inputs_embeds"];
    this.attentionMask = b["attention_mask"];
    this.tokens = b["gen.out"];
    const nb = cfg.relativeAttentionNumBuckets;
    const md = cfg.relativeAttentionMaxDistance;
    gpu.write(b["enc_buckets"], bucketTable(S, true, nb, md));
    gpu.write(b["gen.buckets"], bucketTable(N, false, nb, md));
    const builder = new Builder(
      model,
      { batch: B, sourceLength: S, targetLength: 1 },
      this.buffers,
      b["dropout_state"],
      0,
    );
    this.#embedOp = embeddingForward(gpu, {
      table: model.w("shared.weight"),
      ids: b["input_ids"],
      out: this.inputsEmbeds,
      label: "embed(input_ids)",
    });
    // Prefill: the encoder, then every layer's cross-attention keys and values.
    this.#prefill = builder.encoder(false);
    for (let l = 0; l < cfg.numDecoderLayers; l++) {
      const w = `decoder.block.${l}.layer.1.EncDecAttention`;
      this.#prefill.push(
        builder.linear(b["enc.out"], model.w(`${w}.k.weight`), b[`gen.${l}.ck`], `gen.${l}.ck`),
      );
      this.#prefill.push(
        builder.linear(b["enc.out"], model.w(`${w}.v.weight`), b[`gen.${l}.cv`], `gen.${l}.cv`),
      );
    }
    this.#step = this.#buildStep(builder);
  }

  /** Bytes a generator of `shape` allocates. */
  static bytes(model: T5Model, shape: T5GeneratorShape): number {
    return arenaBytes(genSpecs(model, { maxNewTokens: 20, ...shape }));
  }

  #buildStep(builder: Builder): Op[] {
    const gpu = this.model.gpu;
    const cfg = this.model.config;
    const m = this.model;
    const b = this.buffers.tensors;
    const { batch: B, sourceLength: S, maxNewTokens: N } = this.shape;
    const { dModel: C, numHeads: H, dKv: D } = cfg;
    const HD = H * D;
    const eps = cfg.layerNormEpsilon;
    const ops: Op[] = [];
    const h = b["gen.h"];
    const n = builder.v("x.n", [B, 1, C]);
    const a = builder.v("x.a", [B, 1, C]);
    const ctx = builder.v("x.ctx", [B, 1, HD]);
    const q = b["gen.q"];
    const norm = (name: string) =>
      rmsNorm(gpu, { x: h, weight: m.w(name), out: n, rstd: b["gen.r"], eps, label: name });
    const residual = (label: string) => residualAdd(gpu, { x: h, y: a, label });
    ops.push(
      embeddingForward(gpu, {
        table: m.w("shared.weight"),
        ids: b["gen.cur"],
        out: h,
        label: "gen.embed",
      }),
    );
    const bias = positionBias(gpu, {
      weight: m.w("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
      buckets: b["gen.buckets"],
      out: b["gen.bias"],
    });
    ops.push(bias);
    this.#perStep.push([bias, (t) => ({ q_offset: t })]);
    for (let l = 0; l < cfg.numDecoderLayers; l++) {
      const w = `decoder.block.${l}.layer`;
      const kc = b[`gen.${l}.k`], vc = b[`gen.${l}.v`];
      // self-attention: append this position's key and value to the cache, attend to 0..t
      ops.push(norm(`${w}.0.layer_norm.weight`));
      ops.push(builder.linear(n, m.w(`${w}.0.SelfAttention.q.weight`), q, `gen.${l}.q`));
      for (const [x, cache] of [["k", kc], ["v", vc]] as const) {
        const op = matmulStrided(gpu, {
          m: B,
          n: HD,
          k: C,
          transB: true,
          a: { tensor: n, ld: C },
          b: { tensor: m.w(`${w}.0.SelfAttention.${x}.weight`), ld: C },
          out: { tensor: cache, ld: N * HD },
          label: `gen.${l}.${x}_cache`,
        });
        ops.push(op);
        this.#perStep.push([op, (t) => ({ c_offset: t * HD })]);
      }
      const sm = builder.attention(ops, false, {
        q,
        k: kc,
        v: vc,
        P: builder.v("gen.p", [B, H, 1, N]),
        ctx,
        lq: 1,
        lk: N,
        bias: b["gen.bias"],
        causal: true,
        stream: 0,
        label: `gen.${l}.self_attention`,
      });
      this.#perStep.push([sm, (t) => ({ causal_offset: t })]);
      ops.push(builder.linear(ctx, m.w(`${w}.0.SelfAttention.o.weight`), a, `gen.${l}.o`));
      ops.push(residual(`gen.${l}.residual0`));
      // cross-attention against the cached encoder keys and values
      ops.push(norm(`${w}.1.layer_norm.weight`));
      ops.push(builder.linear(n, m.w(`${w}.1.EncDecAttention.q.weight`), q, `gen.${l}.cq`));
      builder.attention(ops, false, {
        q,
        k: b[`gen.${l}.ck`],
        v: b[`gen.${l}.cv`],
        P: builder.v("gen.p", [B, H, 1, S]),
        ctx,
        lq: 1,
        lk: S,
        mask: b["attention_mask"],
        stream: 0,
        label: `gen.${l}.cross_attention`,
      });
      ops.push(builder.linear(ctx, m.w(`${w}.1.EncDecAttention.o.weight`), a, `gen.${l}.co`));
      ops.push(residual(`gen.${l}.residual1`));
      ops.push(norm(`${w}.2.layer_norm.weight`));
      builder.ffn(ops, false, `${w}.2.DenseReluDense`, "gen", n, a, 1, 0);
      ops.push(residual(`gen.${l}.residual2`));
    }
    ops.push(norm("decoder.final_layer_norm.weight"));
    ops.push(matmul(gpu, {
      a: n,
      b: builder.lmHead(),
      out: b["gen.logits"],
      transB: true,
      alpha: builder.logitScale(),
      label: "gen.lm_head",
    }));
    const next = buildOp(gpu, {
      kernel: "greedy_next",
      label: `greedy_next(logits=${b["gen.logits"].describe()})`,
      bindings: {
        logits: b["gen.logits"],
        cur: b["gen.cur"],
        out: b["gen.out"],
        finished: b["gen.finished"],
      },
      params: {
        rows: B,
        v: cfg.vocabSize,
        max_new: N,
        t: 0,
        pad: cfg.padTokenId,
        eos: cfg.eosTokenId,
      },
      workgroups: B,
    });
    ops.push(next);
    this.#perStep.push([next, (t) => ({ t })]);
    return ops;
  }

  /** Frees the generator's buffers and ops; the model stays loaded. */
  destroy(): void {
    for (const op of [this.#embedOp, ...this.#prefill, ...this.#step]) op.destroy();
    this.model.gpu.freeArena(this.buffers);
  }

  /**
   * Greedy decoding: for each row, the generated ids after the start token, up to and including
   * EOS (or `maxNewTokens` ids when no EOS came), as transformers' `generate` with
   * `num_beams=1, do_sample=False` gives them.
   */
  async generate(input: T5GenerateInput, options: T5GenerateOptions = {}): Promise<number[][]> {
    const gpu = this.model.gpu;
    const cfg = this.model.config;
    const { batch: B, sourceLength: S, maxNewTokens: N } = this.shape;
    const b = this.buffers.tensors;
    let useIds = false;
    if (!options.inputsOnGpu) {
      if (input.attentionMask.length !== B * S) {
        throw new ShapeError(
          `T5 generate: attentionMask has ${input.attentionMask.length} elements, expected ${
            B * S
          }`,
        );
      }
      if (input.inputIds) {
        if (input.inputIds.length !== B * S) {
          throw new ShapeError(
            `T5 generate: inputIds has ${input.inputIds.length} elements, expected ${B * S}`,
          );
        }
        checkIds(input.inputIds, cfg.vocabSize, "inputIds");
        gpu.write(b["input_ids"], input.inputIds);
        useIds = true;
      } else if (input.inputsEmbeds) {
        gpu.write(this.inputsEmbeds, input.inputsEmbeds);
      } else {
        throw new ShapeError("T5 generate: give inputIds or inputsEmbeds (or set inputsOnGpu)");
      }
      gpu.write(this.attentionMask, Float32Array.from(input.attentionMask, Number));
    }
    gpu.write(b["gen.cur"], new Int32Array(B).fill(cfg.decoderStartTokenId));
    gpu.write(b["gen.out"], new Int32Array(B * N).fill(cfg.padTokenId));
    gpu.write(b["gen.finished"], new Uint32Array(B));
    await gpu.run(
      useIds ? [this.#embedOp, ...this.#prefill] : this.#prefill,
      "t5.generate.prefill",
    );
    const every = Math.max(1, options.checkEvery ?? 4);
    for (let t = 0; t < N; t++) {
      for (const [op, params] of this.#perStep) op.setParams(params(t));
      await gpu.run(this.#step, `t5.generate.step${t}`);
      if ((t + 1) % every === 0 && t + 1 < N) {
        const done = await gpu.read(b["gen.finished"]) as Uint32Array;
        if (done.every((x) => x !== 0)) break;
      }
    }
    const ids = await gpu.read(this.tokens) as Int32Array;
    const rows: number[][] = [];
    for (let r = 0; r < B; r++) {
      const row: number[] = [];
      for (let t = 0; t < N; t++) {
        const id = ids[r * N + t];
        if (id < 0) {
          throw new Error(
            `T5 generate: row ${r}, step ${t}: the logits hold NaN (or no finite value); ` +
              "check the inputs embeddings and the weights for NaN or overflow",
          );
        }
        row.push(id);
        if (id === cfg.eosTokenId) break;
      }
      rows.push(row);
    }
    return rows;
  }
}
