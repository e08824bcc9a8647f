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

import { allocTree, treeBytes } from "../gpu/arena_tree.ts";
import type { Arena } from "../gpu/device.ts";
import { ShapeError } from "../gpu/errors.ts";
import { buildOp, type Op } from "../gpu/op.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { residualAdd } from "../layers/elementwise.ts";
import { checkIds, embeddingForward } from "../layers/embedding.ts";
import { matmul, matmulStrided } from "../layers/matmul.ts";
import { rmsNorm } from "../layers/rms_norm.ts";
import { bucketTable, positionBias } from "./position_bias.ts";
import { generatorSpecs, type T5GeneratorBuffers, type T5GeneratorShape } from "./t5_buffers.ts";
import { embeddingTable, type FrozenT5, T5Graph } from "./t5_graph.ts";
import { checkBindings } from "./t5_session.ts";

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

/**
 * Greedy decoding for one fixed (batch, source length, max new tokens): every buffer and op is
 * built once, so repeated calls (an evaluation loop) allocate nothing.
 *
 * @example
 * ```ts
 * import { loadT5, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const model = await loadT5(gpu, "tests/fixtures/t5/tiny-t5-v1_1");
 * const gen = model.generator({ batch: 2, sourceLength: 4, maxNewTokens: 6 }); // built once
 * const inputIds = Int32Array.of(13, 8, 1, 0, 37, 1, 0, 0); // (B, S)
 * const attentionMask = [1, 1, 1, 0, 1, 1, 0, 0];
 * const rows = await gen.generate({ inputIds, attentionMask }); // the ids after the start token
 * assert.equal(rows.length, 2);
 * for (const row of rows) assert.ok(row.at(-1) === model.config.eosTokenId || row.length === 6);
 * assert.deepEqual(await gen.generate({ inputIds, attentionMask }), rows); // greedy: deterministic
 * gen.destroy();
 * model.destroy();
 * gpu.destroy();
 * ```
 */
export class T5Generator {
  /** Activations, caches and outputs, typed (see `t5_buffers.ts` for the shapes). */
  readonly buffers: T5GeneratorBuffers;
  /** The arena holding {@link T5Generator.buffers}. */
  readonly arena: Arena<string>;
  /** The sizes, with `maxNewTokens` filled in. */
  readonly shape: Required<T5GeneratorShape>;
  readonly #embedOp: Op;
  readonly #prefill: Op[];
  readonly #step: Op[];
  /** Ops whose uniforms follow the step index, with the update for step t. */
  readonly #perStep: [Op, (t: number) => Record<string, number>][] = [];

  constructor(readonly model: FrozenT5, shape: T5GeneratorShape) {
    const gpu = model.gpu;
    const cfg = model.config;
    this.shape = { maxNewTokens: 20, ...shape };
    const { batch: B, sourceLength: S, maxNewTokens: N } = this.shape;
    const specs = generatorSpecs(cfg, this.shape);
    checkBindings(gpu, specs, `T5 generator (batch ${B}, source length ${S})`);
    const { arena, tensors } = allocTree<T5GeneratorBuffers>(gpu, "t5_generate", specs);
    this.arena = arena;
    this.buffers = tensors;
    const { inputs, encoder, gen } = tensors;
    const nb = cfg.relativeAttentionNumBuckets;
    const md = cfg.relativeAttentionMaxDistance;
    gpu.write(inputs.buckets, bucketTable(S, true, nb, md));
    gpu.write(gen.buckets, bucketTable(N, false, nb, md));
    const graph = new T5Graph(model, { batch: B, sourceLength: S, targetLength: 1 }, tensors, 0);
    this.#embedOp = graph.embed();
    // Prefill: the encoder, then every layer's cross-attention keys and values.
    this.#prefill = graph.encoder(false);
    gen.layers.forEach((layer, l) => {
      const w = `decoder.block.${l}.layer.1.EncDecAttention`;
      this.#prefill.push(
        graph.linear(encoder.output, model.w(`${w}.k.weight`), layer.crossK, `gen.${l}.cross_k`),
        graph.linear(encoder.output, model.w(`${w}.v.weight`), layer.crossV, `gen.${l}.cross_v`),
      );
    });
    this.#step = this.#buildStep(graph);
  }

  /** Encoder input embeddings (B, S, C). */
  get inputsEmbeds(): Tensor {
    return this.buffers.inputs.inputsEmbeds;
  }

  /** Encoder key mask (B, S) f32. */
  get attentionMask(): Tensor {
    return this.buffers.inputs.attentionMask;
  }

  /** Generated ids (B, N) i32; pad after EOS. */
  get tokens(): Tensor {
    return this.buffers.gen.tokens;
  }

  /** Bytes a generator of `shape` allocates. */
  static bytes(model: FrozenT5, shape: T5GeneratorShape): number {
    return treeBytes(generatorSpecs(model.config, { maxNewTokens: 20, ...shape }));
  }

  /** One decoding step: the decoder on the current token against the caches, then argmax. */
  #buildStep(graph: T5Graph): Op[] {
    const gpu = this.model.gpu;
    const cfg = this.model.config;
    const m = this.model;
    const { inputs, scratch, gen } = this.buffers;
    const { batch: B, sourceLength: S, maxNewTokens: N } = this.shape;
    const { dModel: C, numHeads: H, dKv: D } = cfg;
    const HD = H * D;
    const eps = cfg.layerNormEpsilon;
    const ops: Op[] = [];
    const h = gen.stream;
    const n = graph.view(scratch.normed, [B, 1, C]);
    const a = graph.view(scratch.branch, [B, 1, C]);
    const ctx = graph.view(scratch.context, [B, 1, HD]);
    const norm = (name: string) =>
      rmsNorm(gpu, { x: h, weight: m.w(name), out: n, rstd: gen.rstd, eps, label: name });
    const residual = (label: string) => residualAdd(gpu, { x: h, y: a, label });
    ops.push(embeddingForward(gpu, {
      table: embeddingTable(m, "decoder"),
      ids: gen.current,
      out: h,
      label: "gen.embed",
    }));
    const bias = positionBias(gpu, {
      weight: m.w("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
      buckets: gen.buckets,
      out: gen.positionBias,
    });
    ops.push(bias);
    this.#perStep.push([bias, (t) => ({ q_offset: t })]);
    gen.layers.forEach((layer, l) => {
      const w = `decoder.block.${l}.layer`;
      // self-attention: append this position's key and value to the cache, attend to 0..t
      ops.push(norm(`${w}.0.layer_norm.weight`));
      ops.push(graph.linear(n, m.w(`${w}.0.SelfAttention.q.weight`), gen.q, `gen.${l}.q`));
      for (const [x, cache] of [["k", layer.k], ["v", layer.v]] as const) {
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
      const self = graph.attention(false, {
        q: gen.q,
        k: layer.k,
        v: layer.v,
        probs: graph.view(gen.probs, [B, H, 1, N]),
        ctx,
        bias: gen.positionBias,
        causal: true,
        stream: 0,
        label: `gen.${l}.self_attention`,
      });
      ops.push(...self.ops);
      this.#perStep.push([self.offsetOp, (t) => ({ causal_offset: t })]);
      ops.push(graph.linear(ctx, m.w(`${w}.0.SelfAttention.o.weight`), a, `gen.${l}.o`));
      ops.push(residual(`gen.${l}.residual0`));
      // cross-attention against the cached encoder keys and values
      ops.push(norm(`${w}.1.layer_norm.weight`));
      ops.push(graph.linear(n, m.w(`${w}.1.EncDecAttention.q.weight`), gen.q, `gen.${l}.cq`));
      const cross = graph.attention(false, {
        q: gen.q,
        k: layer.crossK,
        v: layer.crossV,
        probs: graph.view(gen.probs, [B, H, 1, S]),
        ctx,
        mask: inputs.attentionMask,
        stream: 0,
        label: `gen.${l}.cross_attention`,
      });
      ops.push(...cross.ops);
      ops.push(graph.linear(ctx, m.w(`${w}.1.EncDecAttention.o.weight`), a, `gen.${l}.co`));
      ops.push(residual(`gen.${l}.residual1`));
      ops.push(norm(`${w}.2.layer_norm.weight`));
      ops.push(...graph.ffn(false, `${w}.2.DenseReluDense`, gen.ffn, n, a, 0));
      ops.push(residual(`gen.${l}.residual2`));
    });
    ops.push(norm("decoder.final_layer_norm.weight"));
    ops.push(matmul(gpu, {
      a: n,
      b: graph.lmHead(),
      out: gen.logits,
      transB: true,
      alpha: graph.logitScale(),
      label: "gen.lm_head",
    }));
    const next = buildOp(gpu, {
      kernel: "greedy_next",
      label: `greedy_next(logits=${gen.logits.describe()})`,
      bindings: {
        logits: gen.logits,
        cur: gen.current,
        out: gen.tokens,
        finished: gen.finished,
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
    this.model.gpu.freeArena(this.arena);
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
    const { inputs, gen } = this.buffers;
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
        gpu.write(inputs.inputIds, input.inputIds);
        useIds = true;
      } else if (input.inputsEmbeds) {
        gpu.write(this.inputsEmbeds, input.inputsEmbeds);
      } else {
        throw new ShapeError("T5 generate: give inputIds or inputsEmbeds (or set inputsOnGpu)");
      }
      gpu.write(this.attentionMask, Float32Array.from(input.attentionMask, Number));
    }
    gpu.write(gen.current, new Int32Array(B).fill(cfg.decoderStartTokenId));
    gpu.write(gen.tokens, new Int32Array(B * N).fill(cfg.padTokenId));
    gpu.write(gen.finished, new Uint32Array(B));
    await gpu.run(
      useIds ? [this.#embedOp, ...this.#prefill] : this.#prefill,
      "t5.generate.prefill",
    );
    const every = Math.max(1, options.checkEvery ?? 4);
    for (let t = 0; t < N; t++) {
      for (const [op, params] of this.#perStep) op.setParams(params(t));
      await gpu.run(this.#step, `t5.generate.step${t}`);
      if ((t + 1) % every === 0 && t + 1 < N) {
        const done = await gpu.read(gen.finished) as Uint32Array;
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
