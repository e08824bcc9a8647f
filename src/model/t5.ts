/**
 * T5 on WebGPU: the encoder-decoder of Hugging Face transformers' `T5ForConditionalGeneration`
 * (v1.0 and v1.1 / flan-T5), frozen, with a forward pass from input embeddings, the loss, and
 * the backward pass to the encoder's input embeddings: the gradient every prompt method needs.
 *
 * Shape legend: B batch, S source length (prompt included), T target length, C d_model,
 * H heads, D d_kv, HD = H·D, F d_ff, V vocab.
 *
 * @example
 * ```ts ignore
 * const gpu = await requestGpu();
 * const model = await loadT5(gpu, "google-t5/t5-base");
 * const session = model.session({ batch: 8, sourceLength: 256, targetLength: 4 });
 * session.setBatch({ inputIds, attentionMask, labels });
 * await session.forward();
 * console.log(await session.readLoss());
 * await session.backward();
 * const grad = await session.readInputsEmbedsGrad(); // (B, S, C)
 * ```
 *
 * @module
 */

import type { Arena, Gpu } from "../gpu/device.ts";
import { arenaBytes } from "../gpu/device.ts";
import { GpuLimitError, ShapeError } from "../gpu/errors.ts";
import type { Op } from "../gpu/op.ts";
import { type Tensor, type TensorSpec, viewOf } from "../gpu/tensor.ts";
import {
  gatedGelu,
  gatedGeluBackward,
  gelu,
  geluBackward,
  relu,
  reluBackward,
} from "../layers/activation.ts";
import { checkLabels, crossEntropyBackward, crossEntropyForward } from "../layers/cross_entropy.ts";
import { shiftRight } from "../io/seq2seq.ts";
import { dropoutBackward, dropoutForward, setDropoutState } from "../layers/dropout.ts";
import { add } from "../layers/elementwise.ts";
import { checkIds, embeddingForward } from "../layers/embedding.ts";
import { matmul, matmulStrided } from "../layers/matmul.ts";
import { rmsNorm, rmsNormBackward } from "../layers/rms_norm.ts";
import { softmax, softmaxBackward } from "../layers/softmax.ts";
import { bucketTable, positionBias } from "./position_bias.ts";
import { loadT5Config, type T5Config } from "./t5_config.ts";
import { loadT5Weights } from "./t5_weights.ts";
import { hubDownload, type HubDownloadOptions } from "../io/hub.ts";

/** Options of {@link loadT5}: where to look on the Hub (see `hubDownload`). */
export type LoadT5Options = Omit<HubDownloadOptions, "files" | "patterns" | "repoType">;

/** Files of a T5 checkpoint folder that the model reads. */
const MODEL_FILES = ["config.json", "*.safetensors", "model.safetensors.index.json"];

/**
 * Loads a T5 by Hub id (`google-t5/t5-base`, downloaded into the Hugging Face cache; offline
 * mode honoured) or local folder: parses `config.json` (T5 v1.0 and v1.1 / flan-T5) and uploads
 * the safetensors weights.
 *
 * @example
 * ```ts ignore
 * const model = await loadT5(gpu, "tests/fixtures/t5/tiny-t5-v1_0");
 * ```
 */
export async function loadT5(
  gpu: Gpu,
  idOrPath: string,
  options: LoadT5Options = {},
): Promise<T5Model> {
  const snap = await hubDownload(idOrPath, { ...options, patterns: MODEL_FILES });
  const config = await loadT5Config(snap.path("config.json"));
  const weights = await loadT5Weights(gpu, snap.dir, config);
  return new T5Model(gpu, config, weights);
}

/** Sizes a session is built for; every buffer is allocated once for them. */
export interface T5Shape {
  /** Rows per batch (B). */
  batch: number;
  /** Encoder input length S (a soft prompt counts towards it). */
  sourceLength: number;
  /** Decoder / label length T. */
  targetLength: number;
}

/** Options of {@link T5Model.session}. */
export interface T5SessionOptions {
  /** Seed of the dropout masks (the step counter advances per {@link T5Session.backward}). @default {0} */
  seed?: number;
  /**
   * Dropout probability in training mode; 0 turns dropout off (deterministic gradients).
   * @default {config.dropoutRate}
   */
  dropoutRate?: number;
  /** Receives one line with the bytes the session allocates, before it allocates them. */
  log?: (line: string) => void;
}

/** One batch, as host arrays of the session's fixed shape. */
export interface T5Batch {
  /** Source token ids (B, S); embedded on the GPU. Give this or `inputsEmbeds`. */
  inputIds?: Int32Array;
  /** Encoder input embeddings (B, S, C), e.g. a soft prompt concatenated with token rows. */
  inputsEmbeds?: Float32Array;
  /** 1 for real tokens, 0 for padding (B, S). */
  attentionMask: ArrayLike<number>;
  /** Labels (B, T), −100 on padding. The decoder input is them shifted right. */
  labels: Int32Array;
}

/** A frozen T5 on the GPU: config, weights and the position-bucket tables. */
export class T5Model {
  constructor(
    readonly gpu: Gpu,
    /** Parsed `config.json`. */
    readonly config: T5Config,
    /** The frozen weights, by transformers' names. */
    readonly weights: Arena<string>,
  ) {}

  /** A frozen weight by transformers' name. */
  w(name: string): Tensor {
    const t = this.weights.tensors[name];
    if (!t) throw new Error(`T5 weight "${name}" is not loaded`);
    return t;
  }

  /** Frees the weights (sessions and generators of this model must be destroyed first). */
  destroy(): void {
    this.gpu.freeArena(this.weights);
  }

  /** Bytes of activations and gradients a session of `shape` allocates. */
  sessionBytes(shape: T5Shape): number {
    return arenaBytes(sessionSpecs(this.config, shape));
  }

  /**
   * Builds a session: sizes and allocates every activation once for `shape`, and builds the
   * forward and backward ops. Throws a {@link GpuLimitError} suggesting a smaller batch or
   * length when one activation exceeds what a binding may cover.
   */
  session(shape: T5Shape, options: T5SessionOptions = {}): T5Session {
    return new T5Session(this, shape, options);
  }
}

/** Stream ids of the dropout call sites: one block of 16 per layer and stack. */
const SITE = {
  input: 0,
  selfProbs: 1,
  selfOut: 2,
  crossProbs: 3,
  crossOut: 4,
  ffnAct: 5,
  ffnOut: 6,
  final: 7,
} as const;

function stream(stack: "encoder" | "decoder", layer: number, site: number): number {
  return (stack === "encoder" ? 0 : 1 << 12) + (layer + 1) * 16 + site;
}

/** Which parts of the model a set of buffers serves. */
interface Parts {
  /** The decoder, the LM head and the loss (a generator only needs the encoder). */
  decoder: boolean;
  /** Gradient buffers for the backward pass. */
  grads: boolean;
}

/** Every activation and gradient buffer of a session, by name. */
export function sessionSpecs(
  cfg: T5Config,
  s: T5Shape,
  parts: Parts = { decoder: true, grads: true },
): Record<string, TensorSpec> {
  const { batch: B, sourceLength: S, targetLength: T } = s;
  for (const [k, v] of Object.entries(s)) {
    if (!Number.isInteger(v) || v < 1) {
      throw new ShapeError(`T5 session: ${k} must be a positive integer, got ${v}`);
    }
  }
  const { dModel: C, numHeads: H, dKv: D, dFf: F, vocabSize: V } = cfg;
  const HD = H * D;
  const L = Math.max(S, T);
  const specs: Record<string, TensorSpec> = {};
  const put = (name: string, shape: number[], dtype: TensorSpec["dtype"] = "f32") =>
    specs[name] = { shape, dtype };
  // inputs
  put("input_ids", [B, S], "i32");
  put("inputs_embeds", [B, S, C]);
  put("attention_mask", [B, S]);
  put("dropout_state", [2], "u32");
  put("enc_buckets", [2 * S + 1], "i32");
  put("enc_bias", [H, S, S]);
  if (parts.decoder) {
    put("decoder_input_ids", [B, T], "i32");
    put("labels", [B, T], "i32");
    put("dec_buckets", [2 * T + 1], "i32");
    put("dec_bias", [H, T, T]);
  }
  // encoder activations kept for the backward pass
  const ffn = (p: string, len: number) => {
    for (const u of cfg.isGatedAct ? ["u0", "u1"] : ["u"]) put(`${p}.${u}`, [B, len, F]);
  };
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `enc.${l}`;
    put(`${p}.h`, [B, S, C]);
    put(`${p}.hm`, [B, S, C]);
    put(`${p}.r0`, [B, S]);
    put(`${p}.r1`, [B, S]);
    for (const x of ["q", "k", "v"]) put(`${p}.${x}`, [B, S, HD]);
    put(`${p}.p`, [B, H, S, S]);
    ffn(p, S);
  }
  put("enc.h_last", [B, S, C]);
  put("enc.rf", [B, S]);
  put("enc.pre", [B, S, C]);
  put("enc.out", [B, S, C]);
  const P = B * H * Math.max(S * S, T * T, T * S);
  put("x.n", [B * L * C]);
  put("x.ctx", [B * L * HD]);
  put("x.a", [B * L * C]);
  put("x.f", [B * L * F]);
  put("x.f2", [B * L * F]);
  put("x.pd", [P]);
  put("x.r", [B * L * C]);
  if (!parts.decoder) return specs;
  for (let l = 0; l < cfg.numDecoderLayers; l++) {
    const p = `dec.${l}`;
    put(`${p}.h`, [B, T, C]);
    put(`${p}.hm1`, [B, T, C]);
    put(`${p}.hm2`, [B, T, C]);
    for (const r of ["r0", "r1", "r2"]) put(`${p}.${r}`, [B, T]);
    for (const x of ["q", "k", "v", "cq"]) put(`${p}.${x}`, [B, T, HD]);
    for (const x of ["ck", "cv"]) put(`${p}.${x}`, [B, S, HD]);
    put(`${p}.p`, [B, H, T, T]);
    put(`${p}.cp`, [B, H, T, S]);
    ffn(p, T);
  }
  put("dec.h_last", [B, T, C]);
  put("dec.rf", [B, T]);
  put("dec.pre", [B, T, C]);
  put("dec.out", [B, T, C]);
  put("dec.emb", [B, T, C]);
  put("logits", [B, T, V]);
  put("loss", [1]);
  put("ce.lse", [B * T, 2]);
  put("ce.n_valid", [1], "u32");
  if (!parts.grads) return specs;
  // gradients; the scratch above ("x.*") is shared by both stacks, sized for the larger
  put("g.logits", [B, T, V]);
  put("g.dec_out", [B, T, C]);
  put("g.dec_h", [B, T, C]);
  put("g.enc_out", [B, S, C]);
  put("g.enc_h", [B, S, C]);
  put("g.n", [B * L * C]);
  put("g.a", [B * L * C]);
  put("g.ctx", [B * L * HD]);
  put("g.q", [B * L * HD]);
  put("g.k", [B * L * HD]);
  put("g.v", [B * L * HD]);
  put("g.p", [P]);
  put("g.p2", [P]);
  put("g.f", [B * L * F]);
  put("g.f2", [B * L * F]);
  put("g.u0", [B * L * F]);
  if (cfg.isGatedAct) put("g.u1", [B * L * F]);
  put("g.inputs_embeds", [B, S, C]);
  return specs;
}

/**
 * Buffers and ops of a T5 for one fixed (batch, source length, target length): a forward pass
 * in evaluation mode (dropout off), a forward pass in training mode (dropout on, counter-based
 * masks) and the backward pass to the encoder's input embeddings.
 */
export class T5Session {
  /** Activations and gradients, by name (see the source for the legend). */
  readonly buffers: Arena<string>;
  /** Encoder input embeddings (B, S, C): the forward reads them; prompt methods write them. */
  readonly inputsEmbeds: Tensor;
  /** Gradient of the loss with respect to {@link T5Session.inputsEmbeds} (B, S, C). */
  readonly inputsEmbedsGrad: Tensor;
  /** Encoder key mask (B, S) f32. */
  readonly attentionMask: Tensor;
  /** Logits (B, T, V). */
  readonly logits: Tensor;
  /** Mean token cross-entropy (1). */
  readonly loss: Tensor;
  /** Encoder output after the final norm (B, S, C). */
  readonly encoderOutput: Tensor;
  /** Embeds `input_ids` into {@link T5Session.inputsEmbeds} (used when a batch has ids). */
  readonly embedOp: Op;
  /** Forward ops, evaluation mode (no dropout). */
  readonly evalOps: Op[];
  /** Forward ops, training mode (dropout active). */
  readonly trainOps: Op[];
  /** Backward ops, to be recorded after {@link T5Session.trainOps} in the same step. */
  readonly backwardOps: Op[];
  readonly #state: Tensor;
  #step = 0;
  #useIds = false;
  readonly #seed: number;

  constructor(readonly model: T5Model, readonly shape: T5Shape, options: T5SessionOptions = {}) {
    const gpu = model.gpu;
    const cfg = model.config;
    const specs = sessionSpecs(cfg, shape);
    checkBindings(
      gpu,
      specs,
      `T5 session (batch ${shape.batch}, source length ${shape.sourceLength}, target length ` +
        `${shape.targetLength})`,
    );
    options.log?.(
      `[t5] session batch ${shape.batch} x source ${shape.sourceLength} x target ` +
        `${shape.targetLength}: ${(arenaBytes(specs) / 2 ** 20).toFixed(1)} MiB of activations ` +
        `and gradients (weights: ${(model.weights.byteLength / 2 ** 20).toFixed(1)} MiB)`,
    );
    this.buffers = gpu.arena("t5_session", specs);
    const b = this.buffers.tensors;
    this.inputsEmbeds = b["inputs_embeds"];
    this.inputsEmbedsGrad = b["g.inputs_embeds"];
    this.attentionMask = b["attention_mask"];
    this.logits = b["logits"];
    this.loss = b["loss"];
    this.encoderOutput = b["enc.out"];
    this.#state = b["dropout_state"];
    this.#seed = options.seed ?? 0;
    setDropoutState(gpu, this.#state, { seed: this.#seed, step: 0 });
    const { sourceLength: S, targetLength: T } = shape;
    gpu.write(
      b["enc_buckets"],
      bucketTable(S, true, cfg.relativeAttentionNumBuckets, cfg.relativeAttentionMaxDistance),
    );
    gpu.write(
      b["dec_buckets"],
      bucketTable(T, false, cfg.relativeAttentionNumBuckets, cfg.relativeAttentionMaxDistance),
    );
    this.embedOp = embeddingForward(gpu, {
      table: model.w("shared.weight"),
      ids: b["input_ids"],
      out: this.inputsEmbeds,
      label: "embed(input_ids)",
    });
    const rate = options.dropoutRate ?? cfg.dropoutRate;
    if (!(rate >= 0 && rate < 1)) {
      throw new RangeError(`T5 session: dropoutRate must be in [0, 1), got ${rate}`);
    }
    const builder = new Builder(model, shape, this.buffers, this.#state, rate);
    this.evalOps = builder.forward(false);
    this.trainOps = builder.forward(true);
    this.backwardOps = builder.backward();
  }

  /** Uploads one batch (fixed shape). Labels are shifted right into the decoder input. */
  setBatch(batch: T5Batch): void {
    const gpu = this.model.gpu;
    const cfg = this.model.config;
    const { batch: B, sourceLength: S, targetLength: T } = this.shape;
    const b = this.buffers.tensors;
    const want = (name: string, got: number, n: number) => {
      if (got !== n) {
        throw new ShapeError(
          `T5 batch: ${name} has ${got} elements, the session expects ${n} (${B}x...)`,
        );
      }
    };
    if (batch.inputIds) {
      want("inputIds", batch.inputIds.length, B * S);
      checkIds(batch.inputIds, cfg.vocabSize, "inputIds");
      gpu.write(b["input_ids"], batch.inputIds);
      this.#useIds = true;
    } else if (batch.inputsEmbeds) {
      want("inputsEmbeds", batch.inputsEmbeds.length, B * S * cfg.dModel);
      gpu.write(this.inputsEmbeds, batch.inputsEmbeds);
      this.#useIds = false;
    } else {
      this.#useIds = false; // the caller fills inputsEmbeds on the GPU (e.g. a prompt method)
    }
    want("attentionMask", batch.attentionMask.length, B * S);
    gpu.write(this.attentionMask, Float32Array.from(batch.attentionMask, Number));
    want("labels", batch.labels.length, B * T);
    const dec = shiftRight(batch.labels, B, T, cfg.decoderStartTokenId, cfg.padTokenId);
    checkLabels(batch.labels, cfg.vocabSize, "labels");
    gpu.write(b["labels"], batch.labels);
    gpu.write(b["decoder_input_ids"], dec);
  }

  /** Forward pass (evaluation mode by default): logits, loss and encoder output. */
  async forward(options: { train?: boolean } = {}): Promise<void> {
    const ops = options.train ? this.trainOps : this.evalOps;
    if (options.train) this.#nextStep();
    await this.model.gpu.run(this.#useIds ? [this.embedOp, ...ops] : ops, "t5.forward");
  }

  /**
   * Training-mode forward plus backward in one submit: fills {@link T5Session.loss} and
   * {@link T5Session.inputsEmbedsGrad}. Each call draws fresh dropout masks.
   */
  async backward(): Promise<void> {
    this.#nextStep();
    const ops = [...this.trainOps, ...this.backwardOps];
    await this.model.gpu.run(this.#useIds ? [this.embedOp, ...ops] : ops, "t5.backward");
  }

  /** Advances the dropout step counter (call once per training step when recording yourself). */
  #nextStep(): void {
    this.#step++;
    setDropoutState(this.model.gpu, this.#state, { seed: this.#seed, step: this.#step });
  }

  /** The mean loss of the last forward pass. */
  async readLoss(): Promise<number> {
    return (await this.model.gpu.read(this.loss))[0] as number;
  }

  /** Logits of the last forward pass (B, T, V). */
  readLogits(): Promise<Float32Array> {
    return this.model.gpu.read(this.logits) as Promise<Float32Array>;
  }

  /** Encoder output of the last forward pass (B, S, C). */
  readEncoderOutput(): Promise<Float32Array> {
    return this.model.gpu.read(this.encoderOutput) as Promise<Float32Array>;
  }

  /** Gradient with respect to the encoder's input embeddings (B, S, C). */
  readInputsEmbedsGrad(): Promise<Float32Array> {
    return this.model.gpu.read(this.inputsEmbedsGrad) as Promise<Float32Array>;
  }

  /** Frees the session's buffers and ops; the model stays loaded. */
  destroy(): void {
    for (const op of [this.embedOp, ...this.evalOps, ...this.trainOps, ...this.backwardOps]) {
      op.destroy();
    }
    this.model.gpu.freeArena(this.buffers);
  }
}

/** One pre-norm residual sublayer: `out = x + dropout(core(norm(x)))`. */
interface Sublayer {
  stack: "encoder" | "decoder";
  /** Layer index. */
  l: number;
  kind: "self" | "cross" | "ffn";
  /** Weight prefix, e.g. `decoder.block.3.layer.1`. */
  w: string;
  /** Activation prefix, e.g. `dec.3`. */
  p: string;
  /** Rows per batch entry of this stack (S or T). */
  len: number;
  /** Residual input (kept: the norm's backward reads it). */
  x: Tensor;
  /** Residual output. */
  out: Tensor;
  /** The norm's saved rstd. */
  rstd: Tensor;
  label: string;
}

/**
 * Throws a {@link GpuLimitError} suggesting a smaller batch or length when one buffer of
 * `specs` exceeds what one binding may cover; checked before anything is allocated.
 */
export function checkBindings(gpu: Gpu, specs: Record<string, TensorSpec>, what: string): void {
  const maxBinding = gpu.limits.maxStorageBufferBindingSize;
  for (const [name, s] of Object.entries(specs)) {
    const bytes = s.shape.reduce((a, b) => a * b, 1) * 4;
    if (bytes > maxBinding) {
      throw new GpuLimitError(
        `${what}: buffer "${name}" (${s.shape.join("x")}) needs ${bytes} bytes, more than this ` +
          `device's maxStorageBufferBindingSize of ${maxBinding}; use a smaller batch or ` +
          "sequence length",
      );
    }
  }
}

/** Builds the op lists of a session (and, internally, of a generator). */
export class Builder {
  readonly gpu: Gpu;
  readonly cfg: T5Config;
  readonly b: Record<string, Tensor>;
  readonly B: number;
  readonly S: number;
  readonly T: number;
  readonly C: number;
  readonly H: number;
  readonly D: number;
  readonly HD: number;
  readonly F: number;
  readonly p: number;
  readonly eps: number;

  constructor(
    readonly model: T5Model,
    shape: T5Shape,
    arena: Arena<string>,
    readonly state: Tensor,
    dropoutRate: number,
  ) {
    this.gpu = model.gpu;
    this.cfg = model.config;
    this.b = arena.tensors;
    this.B = shape.batch;
    this.S = shape.sourceLength;
    this.T = shape.targetLength;
    this.C = this.cfg.dModel;
    this.H = this.cfg.numHeads;
    this.D = this.cfg.dKv;
    this.HD = this.H * this.D;
    this.F = this.cfg.dFf;
    this.p = dropoutRate;
    this.eps = this.cfg.layerNormEpsilon;
  }

  w(name: string): Tensor {
    return this.model.w(name);
  }

  /** A view of scratch `name` with `shape`. */
  v(name: string, shape: number[]): Tensor {
    return viewOf(this.b[name], shape, `${name}${"(" + shape.join(",") + ")"}`);
  }

  /** y = x · Wᵀ (a Linear without bias). */
  linear(x: Tensor, w: Tensor, out: Tensor, label: string, accumulate = false): Op {
    return matmul(this.gpu, { a: x, b: w, out, transB: true, accumulate, label });
  }

  /** dx (+)= dy · W (the input gradient of a Linear). */
  linearBack(dy: Tensor, w: Tensor, dx: Tensor, label: string, accumulate = false): Op {
    return matmul(this.gpu, { a: dy, b: w, out: dx, accumulate, label });
  }

  drop(x: Tensor, out: Tensor, s: number, label: string, accumulate = false): Op {
    return dropoutForward(this.gpu, {
      x,
      out,
      state: this.state,
      p: this.p,
      stream: s,
      accumulate,
      label,
    });
  }

  dropBack(dout: Tensor, dx: Tensor, s: number, label: string, accumulate = false): Op {
    return dropoutBackward(this.gpu, {
      dout,
      dx,
      state: this.state,
      p: this.p,
      stream: s,
      accumulate,
      label,
    });
  }

  /** Per-head strided operands of (B, L, H·D) tensors and (B, H, Lq, Lk) probabilities. */
  heads(t: Tensor, len: number) {
    return { tensor: t, ld: this.HD, batchStrides: [len * this.HD, this.D] as const };
  }
  probs(t: Tensor, lq: number, lk: number) {
    return { tensor: t, ld: lk, batchStrides: [this.H * lq * lk, lq * lk] as const };
  }

  /**
   * Attention core: probs = softmax(q·kᵀ + bias + mask), ctx = dropout(probs) · v.
   * Writes `P` (kept for the backward pass) and `ctx`; returns the softmax op (whose causal
   * offset cached decoding moves each step).
   */
  attention(
    ops: Op[],
    train: boolean,
    o: {
      q: Tensor;
      k: Tensor;
      v: Tensor;
      P: Tensor;
      ctx: Tensor;
      lq: number;
      lk: number;
      bias?: Tensor;
      mask?: Tensor;
      causal?: boolean;
      causalOffset?: number;
      stream: number;
      label: string;
    },
  ): Op {
    const gpu = this.gpu;
    const batch: [number, number] = [this.B, this.H];
    const scores = this.v("x.pd", [...o.P.shape]); // free until the dropout below
    ops.push(matmulStrided(gpu, {
      m: o.lq,
      n: o.lk,
      k: this.D,
      batch,
      transB: true,
      a: this.heads(o.q, o.lq),
      b: this.heads(o.k, o.lk),
      out: this.probs(scores, o.lq, o.lk),
      label: `${o.label}.scores`,
    }));
    const sm = softmax(gpu, {
      x: scores,
      out: o.P,
      bias: o.bias,
      mask: o.mask,
      causal: o.causal,
      causalOffset: o.causalOffset,
      label: `${o.label}.softmax`,
    });
    ops.push(sm);
    let pd = o.P;
    if (train && this.p > 0) {
      pd = this.v("x.pd", [...o.P.shape]);
      ops.push(this.drop(o.P, pd, o.stream, `${o.label}.dropout`));
    }
    ops.push(matmulStrided(gpu, {
      m: o.lq,
      n: this.D,
      k: o.lk,
      batch,
      a: this.probs(pd, o.lq, o.lk),
      b: this.heads(o.v, o.lk),
      out: this.heads(o.ctx, o.lq),
      label: `${o.label}.context`,
    }));
    return sm;
  }

  /** Backward of {@link Builder.attention}: from dctx to dq, dk, dv. */
  attentionBackward(
    ops: Op[],
    o: {
      q: Tensor;
      k: Tensor;
      v: Tensor;
      P: Tensor;
      dctx: Tensor;
      dq: Tensor;
      dk: Tensor;
      dv: Tensor;
      lq: number;
      lk: number;
      stream: number;
      label: string;
    },
  ): void {
    const gpu = this.gpu;
    const batch: [number, number] = [this.B, this.H];
    const dPd = this.v("g.p", [...o.P.shape]);
    const dP = this.v("g.p2", [...o.P.shape]);
    let pd = o.P;
    if (this.p > 0) {
      pd = this.v("x.pd", [...o.P.shape]);
      ops.push(this.drop(o.P, pd, o.stream, `${o.label}.dropout(recompute)`));
    }
    // dPd = dctx · vᵀ ; dv = Pdᵀ · dctx
    ops.push(matmulStrided(gpu, {
      m: o.lq,
      n: o.lk,
      k: this.D,
      batch,
      transB: true,
      a: this.heads(o.dctx, o.lq),
      b: this.heads(o.v, o.lk),
      out: this.probs(dPd, o.lq, o.lk),
      label: `${o.label}.dprobs`,
    }));
    ops.push(matmulStrided(gpu, {
      m: o.lk,
      n: this.D,
      k: o.lq,
      batch,
      transA: true,
      a: this.probs(pd, o.lq, o.lk),
      b: this.heads(o.dctx, o.lq),
      out: this.heads(o.dv, o.lk),
      label: `${o.label}.dv`,
    }));
    // dP = dropout'(dPd) (or dPd itself), then the scores' gradient dS, written into dPd
    if (this.p > 0) ops.push(this.dropBack(dPd, dP, o.stream, `${o.label}.dropout_backward`));
    const dS = this.p > 0 ? dPd : dP;
    ops.push(softmaxBackward(gpu, {
      dout: this.p > 0 ? dP : dPd,
      y: o.P,
      dx: dS,
      label: `${o.label}.softmax_backward`,
    }));
    // dq = dS · k ; dk = dSᵀ · q
    ops.push(matmulStrided(gpu, {
      m: o.lq,
      n: this.D,
      k: o.lk,
      batch,
      a: this.probs(dS, o.lq, o.lk),
      b: this.heads(o.k, o.lk),
      out: this.heads(o.dq, o.lq),
      label: `${o.label}.dq`,
    }));
    ops.push(matmulStrided(gpu, {
      m: o.lk,
      n: this.D,
      k: o.lq,
      batch,
      transA: true,
      a: this.probs(dS, o.lq, o.lk),
      b: this.heads(o.q, o.lq),
      out: this.heads(o.dk, o.lk),
      label: `${o.label}.dk`,
    }));
  }

  /** Feed-forward block: out = wo · dropout(act(wi · n)), saving the pre-activations. */
  ffn(
    ops: Op[],
    train: boolean,
    prefix: string,
    saved: string,
    n: Tensor,
    out: Tensor,
    len: number,
    s: number,
  ) {
    const gpu = this.gpu;
    const f = this.v("x.f", [this.B, len, this.F]);
    if (this.cfg.isGatedAct) {
      const u0 = this.b[`${saved}.u0`], u1 = this.b[`${saved}.u1`];
      ops.push(this.linear(n, this.w(`${prefix}.wi_0.weight`), u0, `${prefix}.wi_0`));
      ops.push(this.linear(n, this.w(`${prefix}.wi_1.weight`), u1, `${prefix}.wi_1`));
      ops.push(gatedGelu(gpu, { gate: u0, up: u1, out: f, label: `${prefix}.gated_gelu` }));
    } else {
      const u = this.b[`${saved}.u`];
      ops.push(this.linear(n, this.w(`${prefix}.wi.weight`), u, `${prefix}.wi`));
      ops.push(
        this.cfg.denseActFn === "relu"
          ? relu(gpu, { x: u, out: f, label: `${prefix}.relu` })
          : gelu(gpu, { x: u, out: f, label: `${prefix}.gelu` }),
      );
    }
    let fd = f;
    if (train && this.p > 0) {
      fd = this.v("x.f2", [this.B, len, this.F]);
      ops.push(this.drop(f, fd, s, `${prefix}.dropout`));
    }
    ops.push(this.linear(fd, this.w(`${prefix}.wo.weight`), out, `${prefix}.wo`));
  }

  /** Backward of {@link Builder.ffn}: dn = d(input of wi) from dout (the wo output gradient). */
  ffnBackward(
    ops: Op[],
    prefix: string,
    saved: string,
    dout: Tensor,
    dn: Tensor,
    len: number,
    s: number,
  ) {
    const gpu = this.gpu;
    const dfd = this.v("g.f", [this.B, len, this.F]);
    ops.push(this.linearBack(dout, this.w(`${prefix}.wo.weight`), dfd, `${prefix}.wo.backward`));
    let df = dfd;
    if (this.p > 0) {
      df = this.v("g.f2", [this.B, len, this.F]);
      ops.push(this.dropBack(dfd, df, s, `${prefix}.dropout_backward`));
    }
    if (this.cfg.isGatedAct) {
      const du0 = this.v("g.u0", [this.B, len, this.F]);
      const du1 = this.v("g.u1", [this.B, len, this.F]);
      ops.push(gatedGeluBackward(gpu, {
        dout: df,
        gate: this.b[`${saved}.u0`],
        up: this.b[`${saved}.u1`],
        dgate: du0,
        dup: du1,
        label: `${prefix}.gated_gelu_backward`,
      }));
      ops.push(
        this.linearBack(du0, this.w(`${prefix}.wi_0.weight`), dn, `${prefix}.wi_0.backward`),
      );
      ops.push(
        this.linearBack(du1, this.w(`${prefix}.wi_1.weight`), dn, `${prefix}.wi_1.backward`, true),
      );
    } else {
      const du = this.v("g.u0", [this.B, len, this.F]);
      const u = this.b[`${saved}.u`];
      ops.push(
        this.cfg.denseActFn === "relu"
          ? reluBackward(gpu, { dout: df, x: u, dx: du, label: `${prefix}.relu_backward` })
          : geluBackward(gpu, { dout: df, x: u, dx: du, label: `${prefix}.gelu_backward` }),
      );
      ops.push(this.linearBack(du, this.w(`${prefix}.wi.weight`), dn, `${prefix}.wi.backward`));
    }
  }

  /**
   * The encoder's residual stream by layer: without input dropout, layer 0 reads the input
   * embeddings themselves (no copy).
   */
  encoderStream(drop: boolean): (l: number) => Tensor {
    const b = this.b;
    const L = this.cfg.numLayers;
    return (l) => l === 0 && !drop ? b["inputs_embeds"] : l < L ? b[`enc.${l}.h`] : b["enc.h_last"];
  }

  /** The forward ops, evaluation (`train` false) or training mode. */
  forward(train: boolean): Op[] {
    return [...this.encoder(train), ...this.decoder(train)];
  }

  /**
   * The sublayers of a stack in forward order: each is `out = x + dropout(core(norm(x)))` with a
   * self-attention, cross-attention or feed-forward core (transformers' T5LayerSelfAttention,
   * T5LayerCrossAttention and T5LayerFF).
   */
  sublayers(stack: "encoder" | "decoder", drop: boolean): Sublayer[] {
    const b = this.b;
    const enc = stack === "encoder";
    const layers = enc ? this.cfg.numLayers : this.cfg.numDecoderLayers;
    const len = enc ? this.S : this.T;
    const stream0 = enc ? this.encoderStream(drop) : this.decoderStream();
    const out: Sublayer[] = [];
    for (let l = 0; l < layers; l++) {
      const p = `${enc ? "enc" : "dec"}.${l}`;
      const w = `${stack}.block.${l}.layer`;
      const streams = enc ? [stream0(l), b[`${p}.hm`], stream0(l + 1)] : [
        stream0(l),
        b[`${p}.hm1`],
        b[`${p}.hm2`],
        stream0(l + 1),
      ];
      const common = { stack, l, p, len };
      out.push({
        ...common,
        kind: "self",
        w: `${w}.0`,
        x: streams[0],
        out: streams[1],
        rstd: b[`${p}.r0`],
        label: `${p}.self_attention`,
      });
      if (!enc) {
        out.push({
          ...common,
          kind: "cross",
          w: `${w}.1`,
          x: streams[1],
          out: streams[2],
          rstd: b[`${p}.r1`],
          label: `${p}.cross_attention`,
        });
      }
      out.push({
        ...common,
        kind: "ffn",
        w: `${w}.${enc ? 1 : 2}`,
        x: streams[enc ? 1 : 2],
        out: streams[enc ? 2 : 3],
        rstd: b[`${p}.r${enc ? 1 : 2}`],
        label: `${p}.ffn`,
      });
    }
    return out;
  }

  /** The decoder's residual stream by layer. */
  decoderStream(): (l: number) => Tensor {
    const b = this.b;
    const L = this.cfg.numDecoderLayers;
    return (l) => l < L ? b[`dec.${l}.h`] : b["dec.h_last"];
  }

  /** Forward of one sublayer (see {@link Builder.sublayers}). */
  sublayerForward(ops: Op[], train: boolean, s: Sublayer): void {
    const gpu = this.gpu;
    const b = this.b;
    const { B, HD } = this;
    const drop = train && this.p > 0;
    const n = this.v("x.n", [B, s.len, this.C]);
    const a = this.v("x.a", [B, s.len, this.C]);
    ops.push(rmsNorm(gpu, {
      x: s.x,
      weight: this.w(`${s.w}.layer_norm.weight`),
      out: n,
      rstd: s.rstd,
      eps: this.eps,
      label: `${s.label}.layer_norm`,
    }));
    if (s.kind === "ffn") {
      this.ffn(
        ops,
        train,
        `${s.w}.DenseReluDense`,
        s.p,
        n,
        a,
        s.len,
        stream(s.stack, s.l, SITE.ffnAct),
      );
      this.residual(
        ops,
        drop,
        s.x,
        a,
        s.out,
        stream(s.stack, s.l, SITE.ffnOut),
        `${s.label}.residual`,
      );
      return;
    }
    const self = s.kind === "self";
    const at = this.attentionTensors(s);
    const mod = `${s.w}.${self ? "SelfAttention" : "EncDecAttention"}`;
    const kvIn = self ? n : b["enc.out"];
    ops.push(this.linear(n, this.w(`${mod}.q.weight`), at.q, `${s.label}.q`));
    ops.push(this.linear(kvIn, this.w(`${mod}.k.weight`), at.k, `${s.label}.k`));
    ops.push(this.linear(kvIn, this.w(`${mod}.v.weight`), at.v, `${s.label}.v`));
    const ctx = this.v("x.ctx", [B, s.len, HD]);
    const enc = s.stack === "encoder";
    this.attention(ops, train, {
      ...at,
      ctx,
      lq: s.len,
      lk: self ? s.len : this.S,
      bias: self ? b[enc ? "enc_bias" : "dec_bias"] : undefined,
      mask: enc || !self ? b["attention_mask"] : undefined,
      causal: self && !enc,
      stream: stream(s.stack, s.l, self ? SITE.selfProbs : SITE.crossProbs),
      label: s.label,
    });
    ops.push(this.linear(ctx, this.w(`${mod}.o.weight`), a, `${s.label}.o`));
    const site = self ? SITE.selfOut : SITE.crossOut;
    this.residual(ops, drop, s.x, a, s.out, stream(s.stack, s.l, site), `${s.label}.residual`);
  }

  /** The saved q, k, v and probabilities of an attention sublayer. */
  attentionTensors(s: Sublayer): { q: Tensor; k: Tensor; v: Tensor; P: Tensor } {
    const b = this.b;
    const c = s.kind === "cross" ? "c" : "";
    return {
      q: b[`${s.p}.${c}q`],
      k: b[`${s.p}.${c}k`],
      v: b[`${s.p}.${c}v`],
      P: b[`${s.p}.${c}p`],
    };
  }

  /**
   * Backward of one sublayer: on entry `g.h` holds the gradient of `s.out`; on exit it holds the
   * gradient of `s.x` (the residual path plus, unless `skipNorm`, the branch through the norm).
   * Cross-attention adds its keys' and values' gradient into `gEnc` (overwriting it when
   * `firstCross`).
   */
  sublayerBackward(
    ops: Op[],
    s: Sublayer,
    g: { h: Tensor; enc?: Tensor; firstCross?: boolean; skipNorm?: boolean },
  ): void {
    const gpu = this.gpu;
    const { B, HD, C } = this;
    const drop = this.p > 0;
    const gn = this.v("g.n", [B, s.len, C]);
    let gy = g.h;
    if (drop) {
      gy = this.v("g.a", [B, s.len, C]);
      const site = s.kind === "ffn"
        ? SITE.ffnOut
        : s.kind === "self"
        ? SITE.selfOut
        : SITE.crossOut;
      ops.push(
        this.dropBack(g.h, gy, stream(s.stack, s.l, site), `${s.label}.residual.dropout.backward`),
      );
    }
    if (s.kind === "ffn") {
      this.ffnBackward(
        ops,
        `${s.w}.DenseReluDense`,
        s.p,
        gy,
        gn,
        s.len,
        stream(s.stack, s.l, SITE.ffnAct),
      );
    } else {
      const self = s.kind === "self";
      const mod = `${s.w}.${self ? "SelfAttention" : "EncDecAttention"}`;
      const lk = self ? s.len : this.S;
      const gctx = this.v("g.ctx", [B, s.len, HD]);
      ops.push(this.linearBack(gy, this.w(`${mod}.o.weight`), gctx, `${s.label}.o.backward`));
      const gq = this.v("g.q", [B, s.len, HD]);
      const gk = this.v("g.k", [B, lk, HD]);
      const gv = this.v("g.v", [B, lk, HD]);
      this.attentionBackward(ops, {
        ...this.attentionTensors(s),
        dctx: gctx,
        dq: gq,
        dk: gk,
        dv: gv,
        lq: s.len,
        lk,
        stream: stream(s.stack, s.l, self ? SITE.selfProbs : SITE.crossProbs),
        label: `${s.label}.backward`,
      });
      ops.push(this.linearBack(gq, this.w(`${mod}.q.weight`), gn, `${s.label}.q.backward`));
      // Self-attention: k and v came from the same normed input. Cross-attention: from the
      // encoder output, whose gradient collects every decoder layer's share.
      const kvOut = self ? gn : g.enc!;
      const kvAcc = self || !g.firstCross;
      ops.push(
        this.linearBack(gk, this.w(`${mod}.k.weight`), kvOut, `${s.label}.k.backward`, kvAcc),
      );
      ops.push(
        this.linearBack(gv, this.w(`${mod}.v.weight`), kvOut, `${s.label}.v.backward`, true),
      );
    }
    if (g.skipNorm) return;
    ops.push(rmsNormBackward(gpu, {
      dout: gn,
      x: s.x,
      weight: this.w(`${s.w}.layer_norm.weight`),
      rstd: s.rstd,
      dx: g.h,
      accumulate: true,
      label: `${s.label}.layer_norm.backward`,
    }));
  }

  /** The encoder's forward ops: position bias, layers, final norm into `enc.out`. */
  encoder(train: boolean): Op[] {
    const b = this.b;
    const ops: Op[] = [];
    const drop = train && this.p > 0;
    ops.push(positionBias(this.gpu, {
      weight: this.w("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
      buckets: b["enc_buckets"],
      out: b["enc_bias"],
    }));
    const enc = this.encoderStream(drop);
    if (drop) {
      ops.push(
        this.drop(b["inputs_embeds"], enc(0), stream("encoder", -1, SITE.input), "encoder.dropout"),
      );
    }
    for (const s of this.sublayers("encoder", drop)) this.sublayerForward(ops, train, s);
    this.finalNorm(
      ops,
      drop,
      "encoder",
      enc(this.cfg.numLayers),
      b["enc.pre"],
      b["enc.out"],
      b["enc.rf"],
    );
    return ops;
  }

  /** out = dropout(final_layer_norm(x)) (the stack's output). */
  finalNorm(
    ops: Op[],
    drop: boolean,
    stack: "encoder" | "decoder",
    x: Tensor,
    pre: Tensor,
    out: Tensor,
    rstd: Tensor,
  ): void {
    ops.push(rmsNorm(this.gpu, {
      x,
      weight: this.w(`${stack}.final_layer_norm.weight`),
      out: drop ? pre : out,
      rstd,
      eps: this.eps,
      label: `${stack}.final_layer_norm`,
    }));
    if (drop) {
      ops.push(this.drop(pre, out, stream(stack, -1, SITE.final), `${stack}.final_dropout`));
    }
  }

  /** The decoder's forward ops (teacher forcing), the LM head and the loss. */
  decoder(train: boolean): Op[] {
    const gpu = this.gpu;
    const b = this.b;
    const ops: Op[] = [];
    const drop = train && this.p > 0;
    ops.push(positionBias(gpu, {
      weight: this.w("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
      buckets: b["dec_buckets"],
      out: b["dec_bias"],
    }));
    const dec = this.decoderStream();
    ops.push(embeddingForward(gpu, {
      table: this.w("shared.weight"),
      ids: b["decoder_input_ids"],
      out: drop ? b["dec.emb"] : dec(0),
      label: "decoder.embed",
    }));
    if (drop) {
      ops.push(
        this.drop(b["dec.emb"], dec(0), stream("decoder", -1, SITE.input), "decoder.dropout"),
      );
    }
    for (const s of this.sublayers("decoder", drop)) this.sublayerForward(ops, train, s);
    const decOut = b["dec.out"];
    this.finalNorm(
      ops,
      drop,
      "decoder",
      dec(this.cfg.numDecoderLayers),
      b["dec.pre"],
      decOut,
      b["dec.rf"],
    );
    ops.push(matmul(gpu, {
      a: decOut,
      b: this.lmHead(),
      out: b["logits"],
      transB: true,
      alpha: this.logitScale(),
      label: "lm_head",
    }));
    ops.push(crossEntropyForward(gpu, {
      logits: b["logits"],
      labels: b["labels"],
      loss: b["loss"],
      lse: b["ce.lse"],
      nValid: b["ce.n_valid"],
      label: "loss",
    }));
    return ops;
  }

  /** The output projection: `lm_head.weight` when the checkpoint has its own, else the embedding. */
  lmHead(): Tensor {
    return this.model.weights.tensors["lm_head.weight"] ?? this.w("shared.weight");
  }

  /** transformers rescales the decoder output by d_model^-0.5 before a tied output projection. */
  logitScale(): number {
    return this.cfg.scaleDecoderOutputs ? this.C ** -0.5 : 1;
  }

  /** out = x + dropout(y) (through scratch: no binding aliases another). */
  residual(ops: Op[], drop: boolean, x: Tensor, y: Tensor, out: Tensor, s: number, label: string) {
    if (drop) {
      const yd = this.v("x.r", [...y.shape]);
      ops.push(this.drop(y, yd, s, `${label}.dropout`));
      ops.push(add(this.gpu, { a: x, b: yd, out, label }));
    } else {
      ops.push(add(this.gpu, { a: x, b: y, out, label }));
    }
  }

  /** The backward ops from the loss to the encoder's input embeddings (after the train forward). */
  backward(): Op[] {
    const gpu = this.gpu;
    const { B, S, T, C } = this;
    const b = this.b;
    const ops: Op[] = [];
    const drop = this.p > 0;
    ops.push(crossEntropyBackward(gpu, {
      dlogits: b["g.logits"],
      logits: b["logits"],
      labels: b["labels"],
      lse: b["ce.lse"],
      nValid: b["ce.n_valid"],
      label: "loss.backward",
    }));
    ops.push(matmul(gpu, {
      a: b["g.logits"],
      b: this.lmHead(),
      out: b["g.dec_out"],
      alpha: this.logitScale(),
      label: "lm_head.backward",
    }));
    // ---- decoder: its input embeddings are frozen and not a prompt, so the first sublayer's
    // norm gradient (towards them) is skipped.
    const gh = b["g.dec_h"];
    this.finalNormBackward(
      ops,
      drop,
      "decoder",
      this.decoderStream()(this.cfg.numDecoderLayers),
      b["g.dec_out"],
      gh,
      b["dec.rf"],
      [B, T, C],
    );
    const gEnc = b["g.enc_out"];
    const dec = this.sublayers("decoder", drop).reverse();
    let firstCross = true;
    dec.forEach((s, i) => {
      this.sublayerBackward(ops, s, {
        h: gh,
        enc: gEnc,
        firstCross,
        skipNorm: i === dec.length - 1,
      });
      if (s.kind === "cross") firstCross = false;
    });
    // ---- encoder. Without input dropout the stream's gradient is the input embeddings'.
    const gIn = b["g.inputs_embeds"];
    const eh = drop ? b["g.enc_h"] : gIn;
    const enc = this.encoderStream(drop);
    this.finalNormBackward(ops, drop, "encoder", enc(this.cfg.numLayers), gEnc, eh, b["enc.rf"], [
      B,
      S,
      C,
    ]);
    for (const s of this.sublayers("encoder", drop).reverse()) {
      this.sublayerBackward(ops, s, { h: eh });
    }
    if (drop) {
      ops.push(
        this.dropBack(eh, gIn, stream("encoder", -1, SITE.input), "encoder.dropout.backward"),
      );
    }
    return ops;
  }

  /** Backward of {@link Builder.finalNorm}: `dx` = the gradient of the stack's last stream. */
  finalNormBackward(
    ops: Op[],
    drop: boolean,
    stack: "encoder" | "decoder",
    x: Tensor,
    dout: Tensor,
    dx: Tensor,
    rstd: Tensor,
    shape: number[],
  ): void {
    let g = dout;
    if (drop) {
      g = this.v("g.a", shape);
      ops.push(
        this.dropBack(dout, g, stream(stack, -1, SITE.final), `${stack}.final_dropout.backward`),
      );
    }
    ops.push(rmsNormBackward(this.gpu, {
      dout: g,
      x,
      weight: this.w(`${stack}.final_layer_norm.weight`),
      rstd,
      dx,
      label: `${stack}.final_layer_norm.backward`,
    }));
  }
}
