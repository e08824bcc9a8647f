/**
 * The buffers of a T5 session and of a T5 generator, as typed tables with the shape of every
 * buffer beside it (the legend of llm.c's `ActivationTensors`). Everything is sized once for a
 * (batch, source length, target length) and allocated as one arena.
 *
 * Shape legend: B batch, S source length (a soft prompt included), T target length, L = max(S,
 * T), C d_model, H heads, D d_kv, HD = H·D, F d_ff, V vocab, N most new tokens,
 * P = B·H·max(S², T², T·S) (the largest attention score matrix).
 *
 * @module
 */

import type { SpecTree } from "../gpu/arena_tree.ts";
import { ShapeError } from "../gpu/errors.ts";
import type { Tensor, TensorSpec } from "../gpu/tensor.ts";
import type { T5Config } from "./t5_config.ts";

/** Sizes a session is built for; every buffer is allocated once for them. */
export interface T5Shape {
  /** Rows per batch (B). */
  batch: number;
  /** Encoder input length S (a soft prompt counts towards it). */
  sourceLength: number;
  /** Decoder / label length T. */
  targetLength: number;
}

/** The encoder's inputs and its relative position bias. */
export interface EncoderInputs {
  /** (B, S) i32: source token ids, embedded into `inputsEmbeds` when a batch gives ids. */
  inputIds: Tensor;
  /** (B, S, C): the encoder's input; a prompt method writes it. */
  inputsEmbeds: Tensor;
  /** (B, S): 1 attends, 0 is padding. */
  attentionMask: Tensor;
  /** (2) u32: (seed, step) of every dropout mask of the model. */
  dropoutState: Tensor;
  /** (2S + 1) i32: relative position bucket of key − query + S. */
  buckets: Tensor;
  /** (H, S, S): the relative position bias shared by the encoder's layers. */
  positionBias: Tensor;
}

/** What a self-attention sublayer keeps for the backward pass. */
export interface SelfAttentionSaved {
  /** (B, L, 3·HD) q, k and v side by side (one product of the fused weights). */
  qkv: Tensor;
  /** (B, H, L, L) probabilities, before dropout. */
  probs: Tensor;
}

/** What a cross-attention sublayer keeps (its keys and values: `DecoderStack.crossKV`). */
export interface CrossAttentionSaved {
  /** (B, T, HD) queries. */
  q: Tensor;
  /** (B, H, T, S) probabilities, before dropout. */
  probs: Tensor;
}

/** What a feed-forward sublayer keeps: the input projections before the activation. */
export interface FfnSaved {
  /**
   * (B, Lq, F): with ReLU the activation after its dropout (the `wi` product's epilogue), what
   * `wo` reads; with GELU the `wi` output; gated, the `wi_0` output (the gate).
   */
  pre: Tensor;
  /** (B, Lq, F) `wi_1` output (gated FFN only: the linear branch). */
  up?: Tensor;
}

/** One encoder block. */
export interface EncoderLayer {
  /** (B, S, C) residual stream entering the block (unused in layer 0 without input dropout). */
  input: Tensor;
  /** (B, S, C) residual stream after self-attention. */
  mid: Tensor;
  /** (B, S) rstd of the self-attention's layer norm. */
  attnRstd: Tensor;
  /** (B, S) rstd of the feed-forward's layer norm. */
  ffnRstd: Tensor;
  /** qkv (B, S, 3·HD); probs (B, H, S, S). */
  attn: SelfAttentionSaved;
  /** (B, S, F). */
  ffn: FfnSaved;
}

/** The encoder stack's activations. */
export interface EncoderStack {
  /** The blocks. */
  layers: EncoderLayer[];
  /** (B, S, C) residual stream after the last block. */
  last: Tensor;
  /** (B, S) rstd of the final layer norm. */
  finalRstd: Tensor;
  /** (B, S, C) the encoder's output (after the final norm and dropout). */
  output: Tensor;
}

/** Forward scratch shared by both stacks (sized for L rows): free between sublayers. */
export interface ForwardScratch {
  /** (B·L·C) the layer norm's output, the sublayer core's input. */
  normed: Tensor;
  /** (B·L·HD) attention context. */
  context: Tensor;
  /** (B·L·C) the sublayer core's output, before the residual. */
  branch: Tensor;
  /** (B·L·F) the feed-forward activation (its dropout included). */
  ffnAct: Tensor;
}

/** One decoder block. */
export interface DecoderLayer {
  /** (B, T, C) residual stream entering the block. */
  input: Tensor;
  /** (B, T, C) stream after self-attention. */
  afterSelf: Tensor;
  /** (B, T, C) stream after cross-attention. */
  afterCross: Tensor;
  /** (B, T) rstd of the self-attention's layer norm. */
  selfRstd: Tensor;
  /** (B, T) rstd of the cross-attention's layer norm. */
  crossRstd: Tensor;
  /** (B, T) rstd of the feed-forward's layer norm. */
  ffnRstd: Tensor;
  /** qkv (B, T, 3·HD); probs (B, H, T, T). */
  self: SelfAttentionSaved;
  /** q (B, T, HD); probs (B, H, T, S). */
  cross: CrossAttentionSaved;
  /** (B, T, F). */
  ffn: FfnSaved;
}

/** The decoder stack (teacher forcing), the LM head and the loss. */
export interface DecoderStack {
  /** (B, T) i32: labels shifted right. */
  decoderInputIds: Tensor;
  /** (B, T) i32: targets, −100 on padding. */
  labels: Tensor;
  /** (2T + 1) i32: causal relative position buckets. */
  buckets: Tensor;
  /** (H, T, T): the decoder's relative position bias. */
  positionBias: Tensor;
  /** (B, T, C) embedded decoder inputs before dropout (training). */
  embedded: Tensor;
  /**
   * (B, S, 2·Ld·HD) the cross-attention keys and values of every decoder layer, side by side
   * (k0, v0, k1, v1, ...): one product of the encoder output.
   */
  crossKV: Tensor;
  /** The blocks. */
  layers: DecoderLayer[];
  /** (B, T, C) stream after the last block. */
  last: Tensor;
  /** (B, T) rstd of the final layer norm. */
  finalRstd: Tensor;
  /** (B, T, C) the decoder's output. */
  output: Tensor;
  /** (B, T, V) logits. */
  logits: Tensor;
  /** (1) mean token cross-entropy. */
  loss: Tensor;
  /** (B·T, 2) per-row (max, log Σ exp) of the logits. */
  lse: Tensor;
  /** (1) u32 number of labels that count. */
  nValid: Tensor;
}

/** Gradients of the backward pass; the per-sublayer ones are scratch shared by both stacks. */
export interface T5Grads {
  /** (B, T, V). */
  logits: Tensor;
  /** (B, T, C) of the decoder's output. */
  decoderOutput: Tensor;
  /** (B, T, C) of the decoder's residual stream. */
  decoderStream: Tensor;
  /** (B, S, C) of the encoder's output (every cross-attention adds its share). */
  encoderOutput: Tensor;
  /** (B, S, C) of the encoder's residual stream (training with input dropout). */
  encoderStream: Tensor;
  /** (B·L·C) of a layer norm's output. */
  normed: Tensor;
  /** (B·L·C) of a sublayer core's output (through the residual dropout). */
  branch: Tensor;
  /** (B·L·HD) of an attention context. */
  context: Tensor;
  /** (B·L·3·HD) of a self-attention's q, k and v (a cross-attention's q: the first B·T·HD). */
  qkv: Tensor;
  /** (B·S·2·HD) of a cross-attention's keys and values. */
  kv: Tensor;
  /** (P) of the attention scores. */
  scores: Tensor;
  /** (B·L·F) of the activation. */
  ffnAct: Tensor;
  /** (B·L·F) of `FfnSaved.pre`. */
  ffnPre: Tensor;
  /** (B·L·F) of `FfnSaved.up` (gated FFN only). */
  ffnUp?: Tensor;
  /** (B, S, C) of the encoder's input embeddings: what a prompt method trains on. */
  inputsEmbeds: Tensor;
}

/** The encoder side shared by sessions and generators. */
export interface EncoderBuffers {
  inputs: EncoderInputs;
  encoder: EncoderStack;
  scratch: ForwardScratch;
}

/** Every buffer of a training / evaluation session. */
export interface T5SessionBuffers extends EncoderBuffers {
  decoder: DecoderStack;
  grads: T5Grads;
}

/** Cached-decoding buffers of one decoder block. */
export interface GeneratorLayer {
  /** (B, N, HD) self-attention keys of the positions decoded so far. */
  k: Tensor;
  /** (B, N, HD) self-attention values. */
  v: Tensor;
  /** (B, S, HD) cross-attention keys of the encoder output (computed once). */
  crossK: Tensor;
  /** (B, S, HD) cross-attention values. */
  crossV: Tensor;
}

/** The decoding state of a generator. */
export interface GeneratorState {
  /** (B, 1) i32: the token fed at the current step. */
  current: Tensor;
  /** (B, N) i32: generated ids, pad after EOS. */
  tokens: Tensor;
  /** (B) u32: 1 once a row produced EOS. */
  finished: Tensor;
  /** (B, 1, C) the current position's residual stream. */
  stream: Tensor;
  /** (B, 1) rstd of the last layer norm. */
  rstd: Tensor;
  /** (B, 1, HD) queries of the current position. */
  q: Tensor;
  /** (B, H, 1, max(N, S)) probabilities of the current position. */
  probs: Tensor;
  /** (2N + 1) i32 causal buckets. */
  buckets: Tensor;
  /** (H, 1, N) the current position's relative position bias. */
  positionBias: Tensor;
  /** (B, 1, V) logits of the current position. */
  logits: Tensor;
  /** (B, 1, F). */
  ffn: FfnSaved;
  /** Per decoder block. */
  layers: GeneratorLayer[];
}

/** Every buffer of a generator. */
export interface T5GeneratorBuffers extends EncoderBuffers {
  gen: GeneratorState;
}

function checkShape(what: string, s: Record<string, number>): void {
  for (const [k, v] of Object.entries(s)) {
    if (!Number.isInteger(v) || v < 1) {
      throw new ShapeError(`${what}: ${k} must be a positive integer, got ${v}`);
    }
  }
}

const f32 = (...shape: number[]): TensorSpec => ({ shape, dtype: "f32" });
const i32 = (...shape: number[]): TensorSpec => ({ shape, dtype: "i32" });
const u32 = (...shape: number[]): TensorSpec => ({ shape, dtype: "u32" });

function ffnSpecs(cfg: T5Config, rows: number, len: number): SpecTree<FfnSaved> {
  const F = cfg.dFf;
  return cfg.isGatedAct ? { pre: f32(rows, len, F), up: f32(rows, len, F) } : {
    pre: f32(rows, len, F),
  };
}

/** The encoder side of a session or generator; `T` sizes the shared scratch. */
function encoderSpecs(cfg: T5Config, s: T5Shape): SpecTree<EncoderBuffers> {
  const { batch: B, sourceLength: S, targetLength: T } = s;
  const { dModel: C, numHeads: H, dKv: D, dFf: F } = cfg;
  const HD = H * D, L = Math.max(S, T);
  return {
    inputs: {
      inputIds: i32(B, S),
      inputsEmbeds: f32(B, S, C),
      attentionMask: f32(B, S),
      dropoutState: u32(2),
      buckets: i32(2 * S + 1),
      positionBias: f32(H, S, S),
    },
    encoder: {
      layers: Array.from({ length: cfg.numLayers }, () => ({
        input: f32(B, S, C),
        mid: f32(B, S, C),
        attnRstd: f32(B, S),
        ffnRstd: f32(B, S),
        attn: { qkv: f32(B, S, 3 * HD), probs: f32(B, H, S, S) },
        ffn: ffnSpecs(cfg, B, S),
      })),
      last: f32(B, S, C),
      finalRstd: f32(B, S),
      output: f32(B, S, C),
    },
    scratch: {
      normed: f32(B * L * C),
      context: f32(B * L * HD),
      branch: f32(B * L * C),
      ffnAct: f32(B * L * F),
    },
  };
}

/** The specs of every buffer of a session of `shape`. */
export function sessionSpecs(cfg: T5Config, shape: T5Shape): SpecTree<T5SessionBuffers> {
  checkShape("T5 session", { ...shape });
  const { batch: B, sourceLength: S, targetLength: T } = shape;
  const { dModel: C, numHeads: H, dKv: D, dFf: F, vocabSize: V } = cfg;
  const HD = H * D, L = Math.max(S, T);
  const P = B * H * Math.max(S * S, T * T, T * S);
  return {
    ...encoderSpecs(cfg, shape),
    decoder: {
      decoderInputIds: i32(B, T),
      labels: i32(B, T),
      buckets: i32(2 * T + 1),
      positionBias: f32(H, T, T),
      embedded: f32(B, T, C),
      crossKV: f32(B, S, 2 * cfg.numDecoderLayers * HD),
      layers: Array.from({ length: cfg.numDecoderLayers }, () => ({
        input: f32(B, T, C),
        afterSelf: f32(B, T, C),
        afterCross: f32(B, T, C),
        selfRstd: f32(B, T),
        crossRstd: f32(B, T),
        ffnRstd: f32(B, T),
        self: { qkv: f32(B, T, 3 * HD), probs: f32(B, H, T, T) },
        cross: { q: f32(B, T, HD), probs: f32(B, H, T, S) },
        ffn: ffnSpecs(cfg, B, T),
      })),
      last: f32(B, T, C),
      finalRstd: f32(B, T),
      output: f32(B, T, C),
      logits: f32(B, T, V),
      loss: f32(1),
      lse: f32(B * T, 2),
      nValid: u32(1),
    },
    grads: {
      logits: f32(B, T, V),
      decoderOutput: f32(B, T, C),
      decoderStream: f32(B, T, C),
      encoderOutput: f32(B, S, C),
      encoderStream: f32(B, S, C),
      normed: f32(B * L * C),
      branch: f32(B * L * C),
      context: f32(B * L * HD),
      qkv: f32(B * L * 3 * HD),
      kv: f32(B * S * 2 * HD),
      scores: f32(P),
      ffnAct: f32(B * L * F),
      ffnPre: f32(B * L * F),
      ffnUp: cfg.isGatedAct ? f32(B * L * F) : undefined,
      inputsEmbeds: f32(B, S, C),
    },
  };
}

/** Sizes of a generator. */
export interface T5GeneratorShape {
  /** Rows per batch (B). */
  batch: number;
  /** Encoder input length S (a soft prompt counts towards it). */
  sourceLength: number;
  /** Most tokens generated per row, EOS included (N). @default {20} */
  maxNewTokens?: number;
}

/** The specs of every buffer of a generator of `shape`. */
export function generatorSpecs(
  cfg: T5Config,
  shape: Required<T5GeneratorShape>,
): SpecTree<T5GeneratorBuffers> {
  const { batch: B, sourceLength: S, maxNewTokens: N } = shape;
  checkShape("T5 generator", { batch: B, sourceLength: S, maxNewTokens: N });
  const { dModel: C, numHeads: H, dKv: D, vocabSize: V } = cfg;
  const HD = H * D;
  return {
    // a target length of N sizes the shared scratch for the (B, H, 1, N) self-attention too
    ...encoderSpecs(cfg, { batch: B, sourceLength: S, targetLength: N }),
    gen: {
      current: i32(B, 1),
      tokens: i32(B, N),
      finished: u32(B),
      stream: f32(B, 1, C),
      rstd: f32(B, 1),
      q: f32(B, 1, HD),
      probs: f32(B, H, 1, Math.max(N, S)),
      buckets: i32(2 * N + 1),
      positionBias: f32(H, 1, N),
      logits: f32(B, 1, V),
      ffn: ffnSpecs(cfg, B, 1),
      layers: Array.from({ length: cfg.numDecoderLayers }, () => ({
        k: f32(B, N, HD),
        v: f32(B, N, HD),
        crossK: f32(B, S, HD),
        crossV: f32(B, S, HD),
      })),
    },
  };
}
