/**
 * The T5 graph builder: turns a frozen {@link T5Model} and a typed buffer table into the op
 * lists of the encoder, the decoder (teacher forcing), the loss and the backward pass to the
 * encoder's input embeddings. Sessions and generators record what it builds.
 *
 * Every T5 block is a sequence of pre-norm residual sublayers, `out = x + dropout(core(norm(x)))`,
 * whose core is a self-attention, a cross-attention or a feed-forward network (transformers'
 * `T5LayerSelfAttention`, `T5LayerCrossAttention` and `T5LayerFF`); one abstraction serves both
 * stacks, forward and backward.
 *
 * Shape legend: B batch, S source length, T target length, C d_model, H heads, D d_kv,
 * HD = H·D, F d_ff, V vocab.
 *
 * @module
 */

import type { Arena, Gpu } from "../gpu/device.ts";
import type { Op } from "../gpu/op.ts";
import { Tensor, viewOf } from "../gpu/tensor.ts";
import {
  gatedGelu,
  gatedGeluBackward,
  gelu,
  geluBackward,
  reluBackward,
} from "../layers/activation.ts";
import {
  attention,
  attentionBackward,
  type AttentionOps,
  type HeadsOperand,
} from "../layers/attention.ts";
import { crossEntropyBackward, crossEntropyForward } from "../layers/cross_entropy.ts";
import type { DropoutSite } from "../layers/dropout.ts";
import { embeddingForward } from "../layers/embedding.ts";
import { matmul, matmulStrided } from "../layers/matmul.ts";
import { residualRmsNorm, rmsNormBackward } from "../layers/rms_norm.ts";
import { positionBias } from "./position_bias.ts";
import type {
  CrossAttentionSaved,
  DecoderStack,
  EncoderBuffers,
  FfnSaved,
  SelfAttentionSaved,
  T5Grads,
  T5Shape,
} from "./t5_buffers.ts";
import type { T5Config } from "./t5_config.ts";

/** What the graph, sessions and generators need of a frozen T5 (`T5Model` is one). */
export interface FrozenT5 {
  /** The device the weights live on. */
  readonly gpu: Gpu;
  /** Parsed `config.json`. */
  readonly config: T5Config;
  /** The frozen weights, by transformers' names. */
  readonly weights: Arena<string>;
  /** A frozen weight by transformers' name (throws when it is not loaded). */
  w(name: string): Tensor;
}

/**
 * The token embedding a stack reads: its own `<stack>.embed_tokens.weight` when the checkpoint
 * holds one different from the shared table (an exported ADePT's folded encoder table), else
 * `shared.weight`. The encoder's is what PEFT's methods take as the word embeddings.
 *
 * @example
 * ```ts
 * import { embeddingTable, loadT5, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const model = await loadT5(gpu, "tests/fixtures/t5/tiny-t5-v1_0");
 * assert.equal(embeddingTable(model, "encoder"), model.w("shared.weight")); // tied
 * const folded = await loadT5(gpu, "tests/fixtures/peft/deno_written/adept_folded/model");
 * assert.notEqual(embeddingTable(folded, "encoder"), folded.w("shared.weight"));
 * assert.equal(embeddingTable(folded, "decoder"), folded.w("shared.weight"));
 * gpu.destroy();
 * ```
 */
export function embeddingTable(model: FrozenT5, stack: "encoder" | "decoder"): Tensor {
  return model.weights.tensors[`${stack}.embed_tokens.weight`] ?? model.w("shared.weight");
}

/** Dropout call sites of a layer; each gets its own mask stream. */
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

type Stack = "encoder" | "decoder";

/** The mask stream of a dropout site: one block of 16 per layer and stack (layer −1: the stack). */
function stream(stack: Stack, layer: number, site: number): number {
  return (stack === "encoder" ? 0 : 1 << 12) + (layer + 1) * 16 + site;
}

/** One pre-norm residual sublayer: `out = x + dropout(core(norm(x)))`. */
interface Sublayer {
  stack: Stack;
  /** Block index. */
  layer: number;
  kind: "self" | "cross" | "ffn";
  /** Weight prefix, e.g. `decoder.block.3.layer.1`. */
  weights: string;
  /** Rows per batch entry of this stack (S or T). */
  len: number;
  /** Residual input (kept: the norm's backward reads it). */
  x: Tensor;
  /** Residual output. */
  out: Tensor;
  /** The norm's saved rstd. */
  rstd: Tensor;
  /** Saved attention tensors (attention sublayers). */
  /** Saved self-attention tensors (self-attention sublayers). */
  self?: SelfAttentionSaved;
  /** Saved cross-attention tensors (cross-attention sublayers). */
  cross?: CrossAttentionSaved;
  /** Saved feed-forward tensors (feed-forward sublayers). */
  ffn?: FfnSaved;
  label: string;
}

/** Builds the op lists of one T5 for one buffer table. */
export class T5Graph {
  readonly cfg: T5Config;
  readonly B: number;
  readonly S: number;
  readonly T: number;
  readonly C: number;
  readonly H: number;
  readonly HD: number;
  readonly F: number;
  readonly eps: number;

  /**
   * @param model The frozen model.
   * @param shape The sizes the buffers were made for.
   * @param bufs The encoder side (and scratch) of the buffer table.
   * @param dropoutRate Dropout in training mode (0: none).
   */
  constructor(
    readonly model: FrozenT5,
    shape: T5Shape,
    readonly bufs: EncoderBuffers,
    readonly dropoutRate: number,
    /**
     * Run the q, k, v projections of a self-attention (and the cross-attention k, v of every
     * decoder layer) as one product where their weights are contiguous. @default {true}
     */
    readonly fuseProjections = true,
  ) {
    this.cfg = model.config;
    this.B = shape.batch;
    this.S = shape.sourceLength;
    this.T = shape.targetLength;
    this.C = this.cfg.dModel;
    this.H = this.cfg.numHeads;
    this.HD = this.H * this.cfg.dKv;
    this.F = this.cfg.dFf;
    this.eps = this.cfg.layerNormEpsilon;
  }

  get #gpu() {
    return this.model.gpu;
  }

  /** A frozen weight by transformers' name. */
  w(name: string): Tensor {
    return this.model.w(name);
  }

  /** A view of shared scratch with `shape`. */
  view(t: Tensor, shape: readonly number[]): Tensor {
    return viewOf(t, shape, `${t.name}(${shape.join(",")})`);
  }

  /** y = x · Wᵀ (a Linear without bias). */
  linear(x: Tensor, w: Tensor, out: Tensor, label: string, accumulate = false): Op {
    return matmul(this.#gpu, { a: x, b: w, out, transB: true, accumulate, label });
  }

  /** dx (+)= dy · W (the input gradient of a Linear). */
  linearBack(dy: Tensor, w: Tensor, dx: Tensor, label: string, accumulate = false): Op {
    return matmul(this.#gpu, { a: dy, b: w, out: dx, accumulate, label });
  }

  /** The dropout of a site in training with a rate > 0, else none. */
  #site(drop: boolean, s: number): DropoutSite | undefined {
    return drop && this.dropoutRate > 0
      ? { state: this.bufs.inputs.dropoutState, p: this.dropoutRate, stream: s }
      : undefined;
  }

  /** The output projection: `lm_head.weight` when the checkpoint has its own, else the embedding. */
  lmHead(): Tensor {
    return this.model.weights.tensors["lm_head.weight"] ?? this.w("shared.weight");
  }

  /** transformers rescales the decoder output by d_model^-0.5 before a tied output projection. */
  logitScale(): number {
    return this.cfg.scaleDecoderOutputs ? this.C ** -0.5 : 1;
  }

  /**
   * The named weights (each (HD, C)) as one (n·HD, C) view when they lie side by side in one
   * buffer (the arena order of `t5WeightSpecs`), else undefined.
   */
  #rows(names: readonly string[]): Tensor | undefined {
    if (!this.fuseProjections) return undefined;
    const ts = names.map((n) => this.w(n));
    const first = ts[0];
    let end = first.offset;
    for (const t of ts) {
      if (t.buffer !== first.buffer || t.offset !== end || t.shape[1] !== first.shape[1]) return;
      end += t.byteLength;
    }
    const rows = ts.reduce((n, t) => n + t.shape[0], 0);
    return new Tensor(first.buffer, first.offset, [rows, first.shape[1]], first.dtype, names[0]);
  }

  /**
   * Projections `out[:, col + i·HD ..] = x · W_iᵀ` for the named weights into columns of a
   * (rows, W) output: one product when the weights are contiguous, else one each.
   */
  #project(
    x: Tensor,
    names: readonly string[],
    out: { tensor: Tensor; col: number },
    label: string,
  ): Op[] {
    const rows = x.size / this.C;
    const ld = out.tensor.shape[out.tensor.shape.length - 1];
    const mm = (w: Tensor, n: number, col: number, l: string) =>
      matmulStrided(this.#gpu, {
        m: rows,
        n,
        k: this.C,
        transB: true,
        a: { tensor: x, ld: this.C },
        b: { tensor: w, ld: this.C },
        out: { tensor: out.tensor, offset: out.col + col, ld },
        label: l,
      });
    const fused = this.#rows(names);
    if (fused) return [mm(fused, names.length * this.HD, 0, label)];
    return names.map((n, i) => mm(this.w(n), this.HD, i * this.HD, `${label}[${i}]`));
  }

  /**
   * Backward of {@link T5Graph.#project}: `dx (+)= Σ_i dy[:, col + i·HD ..] · W_i`, one product
   * when the weights are contiguous.
   */
  #projectBack(
    dy: { tensor: Tensor; col: number },
    names: readonly string[],
    dx: Tensor,
    label: string,
    accumulate = false,
  ): Op[] {
    const rows = dx.size / this.C;
    const ld = dy.tensor.shape[dy.tensor.shape.length - 1];
    const mm = (w: Tensor, k: number, col: number, acc: boolean, l: string) =>
      matmulStrided(this.#gpu, {
        m: rows,
        n: this.C,
        k,
        a: { tensor: dy.tensor, offset: dy.col + col, ld },
        b: { tensor: w, ld: this.C },
        out: { tensor: dx, ld: this.C },
        accumulate: acc,
        label: l,
      });
    const fused = this.#rows(names);
    if (fused) return [mm(fused, names.length * this.HD, 0, accumulate, label)];
    return names.map((n, i) =>
      mm(this.w(n), this.HD, i * this.HD, accumulate || i > 0, `${label}[${i}]`)
    );
  }

  /**
   * Attention with T5's conventions (no 1/√D scaling); probabilities saved in `saved.probs`.
   * `lk` limits the keys read (a cache longer than the positions decoded so far).
   */
  attention(
    train: boolean,
    o: {
      q: HeadsOperand;
      k: HeadsOperand;
      v: HeadsOperand;
      probs: Tensor;
      ctx: Tensor;
      bias?: Tensor;
      mask?: Tensor;
      causal?: boolean;
      stream: number;
      label: string;
    },
  ): AttentionOps {
    return attention(this.#gpu, {
      q: o.q,
      k: o.k,
      v: o.v,
      heads: this.H,
      probs: o.probs,
      ctx: o.ctx,
      bias: o.bias,
      mask: o.mask,
      causal: o.causal,
      dropout: this.#site(train, o.stream),
      label: o.label,
    });
  }

  /** Feed-forward core: out = wo · dropout(act(wi · n)), saving the pre-activations. */
  ffn(train: boolean, prefix: string, saved: FfnSaved, n: Tensor, out: Tensor, s: number): Op[] {
    const gpu = this.#gpu;
    const rows = n.shape.slice(0, -1);
    const f = this.view(this.bufs.scratch.ffnAct, [...rows, this.F]);
    const dropout = this.#site(train, s);
    const ops: Op[] = [];
    if (this.cfg.isGatedAct) {
      const up = saved.up!;
      ops.push(this.linear(n, this.w(`${prefix}.wi_0.weight`), saved.pre, `${prefix}.wi_0`));
      ops.push(this.linear(n, this.w(`${prefix}.wi_1.weight`), up, `${prefix}.wi_1`));
      ops.push(
        gatedGelu(gpu, { gate: saved.pre, up, out: f, dropout, label: `${prefix}.gated_gelu` }),
      );
    } else if (this.cfg.denseActFn === "relu") {
      // wi, ReLU and dropout in one kernel (the product's epilogue); the backward reads the
      // result: relu(x)·mask > 0 exactly where both the ReLU and the dropout pass a gradient
      ops.push(matmul(gpu, {
        a: n,
        b: this.w(`${prefix}.wi.weight`),
        out: saved.pre,
        transB: true,
        epilogue: { activation: "relu", dropout },
        label: `${prefix}.wi+relu`,
      }));
      ops.push(this.linear(saved.pre, this.w(`${prefix}.wo.weight`), out, `${prefix}.wo`));
      return ops;
    } else {
      ops.push(this.linear(n, this.w(`${prefix}.wi.weight`), saved.pre, `${prefix}.wi`));
      ops.push(gelu(gpu, { x: saved.pre, out: f, dropout, label: `${prefix}.gelu` }));
    }
    ops.push(this.linear(f, this.w(`${prefix}.wo.weight`), out, `${prefix}.wo`));
    return ops;
  }

  /** Backward of {@link T5Graph.ffn}: dn = d(input of wi) from dout (the wo output gradient). */
  #ffnBackward(
    ops: Op[],
    g: T5Grads,
    prefix: string,
    saved: FfnSaved,
    dout: Tensor,
    dn: Tensor,
    s: number,
  ) {
    const gpu = this.#gpu;
    const shape = [...dout.shape.slice(0, -1), this.F];
    const df = this.view(g.ffnAct, shape);
    ops.push(this.linearBack(dout, this.w(`${prefix}.wo.weight`), df, `${prefix}.wo.backward`));
    const dropout = this.#site(true, s);
    const dpre = this.view(g.ffnPre, shape);
    if (this.cfg.isGatedAct) {
      const dup = this.view(g.ffnUp!, shape);
      ops.push(gatedGeluBackward(gpu, {
        dout: df,
        gate: saved.pre,
        up: saved.up!,
        dgate: dpre,
        dup,
        dropout,
        label: `${prefix}.gated_gelu_backward`,
      }));
      ops.push(
        this.linearBack(dpre, this.w(`${prefix}.wi_0.weight`), dn, `${prefix}.wi_0.backward`),
      );
      ops.push(
        this.linearBack(dup, this.w(`${prefix}.wi_1.weight`), dn, `${prefix}.wi_1.backward`, true),
      );
    } else {
      const x = saved.pre;
      const back = this.cfg.denseActFn === "relu" ? reluBackward : geluBackward;
      ops.push(back(gpu, { dout: df, x, dx: dpre, dropout, label: `${prefix}.act_backward` }));
      ops.push(this.linearBack(dpre, this.w(`${prefix}.wi.weight`), dn, `${prefix}.wi.backward`));
    }
  }

  /**
   * The encoder's residual stream by block: without input dropout, block 0 reads the input
   * embeddings themselves (no copy).
   */
  #encoderStream(drop: boolean): (l: number) => Tensor {
    const { inputs, encoder } = this.bufs;
    const L = this.cfg.numLayers;
    return (l) =>
      l === 0 && !drop ? inputs.inputsEmbeds : l < L ? encoder.layers[l].input : encoder.last;
  }

  /** The decoder's residual stream by block. */
  #decoderStream(dec: DecoderStack): (l: number) => Tensor {
    const L = this.cfg.numDecoderLayers;
    return (l) => l < L ? dec.layers[l].input : dec.last;
  }

  /** The sublayers of a stack in forward order. */
  #sublayers(stack: Stack, drop: boolean, dec?: DecoderStack): Sublayer[] {
    const out: Sublayer[] = [];
    if (stack === "encoder") {
      const at = this.#encoderStream(drop);
      this.bufs.encoder.layers.forEach((b, l) => {
        const w = `encoder.block.${l}.layer`;
        const common = { stack, layer: l, len: this.S };
        out.push({
          ...common,
          kind: "self",
          weights: `${w}.0`,
          x: at(l),
          out: b.mid,
          rstd: b.attnRstd,
          self: b.attn,
          label: `encoder.${l}.self_attention`,
        });
        out.push({
          ...common,
          kind: "ffn",
          weights: `${w}.1`,
          x: b.mid,
          out: at(l + 1),
          rstd: b.ffnRstd,
          ffn: b.ffn,
          label: `encoder.${l}.ffn`,
        });
      });
      return out;
    }
    const at = this.#decoderStream(dec!);
    dec!.layers.forEach((b, l) => {
      const w = `decoder.block.${l}.layer`;
      const common = { stack, layer: l, len: this.T };
      out.push({
        ...common,
        kind: "self",
        weights: `${w}.0`,
        x: at(l),
        out: b.afterSelf,
        rstd: b.selfRstd,
        self: b.self,
        label: `decoder.${l}.self_attention`,
      });
      out.push({
        ...common,
        kind: "cross",
        weights: `${w}.1`,
        x: b.afterSelf,
        out: b.afterCross,
        rstd: b.crossRstd,
        cross: b.cross,
        label: `decoder.${l}.cross_attention`,
      });
      out.push({
        ...common,
        kind: "ffn",
        weights: `${w}.2`,
        x: b.afterCross,
        out: at(l + 1),
        rstd: b.ffnRstd,
        ffn: b.ffn,
        label: `decoder.${l}.ffn`,
      });
    });
    return out;
  }

  /** The residual dropout's stream of a sublayer. */
  #residualSite(s: Sublayer): number {
    const site = s.kind === "ffn" ? SITE.ffnOut : s.kind === "self" ? SITE.selfOut : SITE.crossOut;
    return stream(s.stack, s.layer, site);
  }

  /** The weight of a sublayer's layer norm. */
  #norm(s: Sublayer): Tensor {
    return this.w(`${s.weights}.layer_norm.weight`);
  }

  /** The core of one sublayer, from its normed input `n` to its branch output `a`. */
  #core(ops: Op[], train: boolean, s: Sublayer, n: Tensor, a: Tensor, dec?: DecoderStack): void {
    const { inputs, scratch } = this.bufs;
    if (s.kind === "ffn") {
      const prefix = `${s.weights}.DenseReluDense`;
      ops.push(...this.ffn(train, prefix, s.ffn!, n, a, stream(s.stack, s.layer, SITE.ffnAct)));
      return;
    }
    const self = s.kind === "self";
    const mod = `${s.weights}.${self ? "SelfAttention" : "EncDecAttention"}`;
    const ctx = this.view(scratch.context, [this.B, s.len, this.HD]);
    const enc = s.stack === "encoder";
    const HD = this.HD;
    let q: HeadsOperand, k: HeadsOperand, v: HeadsOperand;
    if (self) {
      const qkv = s.self!.qkv;
      const names = ["q", "k", "v"].map((x) => `${mod}.${x}.weight`);
      ops.push(...this.#project(n, names, { tensor: qkv, col: 0 }, `${s.label}.qkv`));
      [q, k, v] = [0, 1, 2].map((i) => ({ tensor: qkv, offset: i * HD }));
    } else {
      // the keys and values of every layer came from one product of the encoder output
      ops.push(
        ...this.#project(n, [`${mod}.q.weight`], { tensor: s.cross!.q, col: 0 }, `${s.label}.q`),
      );
      q = s.cross!.q;
      k = { tensor: dec!.crossKV, offset: 2 * s.layer * HD };
      v = { tensor: dec!.crossKV, offset: (2 * s.layer + 1) * HD };
    }
    ops.push(
      ...this.attention(train, {
        q,
        k,
        v,
        probs: self ? s.self!.probs : s.cross!.probs,
        ctx,
        bias: self ? (enc ? inputs.positionBias : dec!.positionBias) : undefined,
        mask: enc || !self ? inputs.attentionMask : undefined,
        causal: self && !enc,
        stream: stream(s.stack, s.layer, self ? SITE.selfProbs : SITE.crossProbs),
        label: s.label,
      }).ops,
    );
    ops.push(this.linear(ctx, this.w(`${mod}.o.weight`), a, `${s.label}.o`));
  }

  /**
   * A stack's sublayers forward. Where one sublayer's residual meets the next one's norm, one
   * fused kernel computes `h' = h + dropout(branch)` and `norm(h')`; the last one's feeds the
   * final norm and the final dropout into the stack's output.
   */
  #stack(
    ops: Op[],
    train: boolean,
    subs: Sublayer[],
    entry: { x?: Tensor; y?: Tensor; sum?: Tensor; dropoutY?: DropoutSite },
    out: { output: Tensor; finalRstd: Tensor },
    dec?: DecoderStack,
  ): void {
    const gpu = this.#gpu;
    const stack = subs[0].stack;
    const n = this.view(this.bufs.scratch.normed, [this.B, subs[0].len, this.C]);
    const a = this.view(this.bufs.scratch.branch, [this.B, subs[0].len, this.C]);
    ops.push(residualRmsNorm(gpu, {
      ...entry,
      weight: this.#norm(subs[0]),
      out: n,
      rstd: subs[0].rstd,
      eps: this.eps,
      label: `${subs[0].label}.layer_norm`,
    }));
    subs.forEach((s, i) => {
      this.#core(ops, train, s, n, a, dec);
      const next = subs[i + 1];
      const common = {
        x: s.x,
        y: a,
        sum: s.out,
        eps: this.eps,
        dropoutY: this.#site(train, this.#residualSite(s)),
      };
      ops.push(
        next
          ? residualRmsNorm(gpu, {
            ...common,
            weight: this.#norm(next),
            out: n,
            rstd: next.rstd,
            label: `${s.label}.residual+${next.label}.layer_norm`,
          })
          : residualRmsNorm(gpu, {
            ...common,
            weight: this.w(`${stack}.final_layer_norm.weight`),
            out: out.output,
            rstd: out.finalRstd,
            dropoutOut: this.#site(train, stream(stack, -1, SITE.final)),
            label: `${s.label}.residual+${stack}.final_layer_norm`,
          }),
      );
    });
  }

  /**
   * A stack's sublayers backward, from `gOut` (the gradient of the stack's output) to `gh` (the
   * gradient of its input stream). The residual dropouts' backward rides on the norms' backward
   * (`branch`); `entryBranch` receives the stack input dropout's backward (the encoder's input
   * embeddings). The decoder's first norm has no backward (its input is not trained).
   */
  #stackBackward(
    ops: Op[],
    subs: Sublayer[],
    g: T5Grads,
    gOut: Tensor,
    gh: Tensor,
    st: { finalRstd: Tensor },
    o: { entryBranch?: Tensor; skipFirstNorm?: boolean; dec?: DecoderStack },
  ): void {
    const gpu = this.#gpu;
    const stack = subs[0].stack;
    const drop = this.dropoutRate > 0;
    const gy = this.view(g.branch, [this.B, subs[0].len, this.C]);
    const gn = this.view(g.normed, [this.B, subs[0].len, this.C]);
    const branch = (s: Sublayer | undefined, out: Tensor | undefined) =>
      drop && out
        ? { out, ...this.#site(true, s ? this.#residualSite(s) : stream(stack, -1, SITE.input))! }
        : undefined;
    const last = subs[subs.length - 1];
    ops.push(rmsNormBackward(gpu, {
      dout: gOut,
      x: last.out,
      weight: this.w(`${stack}.final_layer_norm.weight`),
      rstd: st.finalRstd,
      dx: gh,
      doutDropout: this.#site(true, stream(stack, -1, SITE.final)),
      branch: branch(last, gy),
      label: `${stack}.final_layer_norm.backward`,
    }));
    let firstCross = true;
    for (let i = subs.length - 1; i >= 0; i--) {
      const s = subs[i];
      this.#coreBackward(ops, s, g, drop ? gy : gh, gn, firstCross, o.dec);
      if (s.kind === "cross") firstCross = false;
      if (i === 0 && o.skipFirstNorm) continue;
      const prev = subs[i - 1];
      ops.push(rmsNormBackward(gpu, {
        dout: gn,
        x: s.x,
        weight: this.#norm(s),
        rstd: s.rstd,
        dx: gh,
        accumulate: true,
        branch: prev ? branch(prev, gy) : branch(undefined, o.entryBranch),
        label: `${s.label}.layer_norm.backward`,
      }));
    }
  }

  /**
   * Backward of a sublayer's core: from `gy` (the gradient of its branch output) to `gn` (the
   * gradient of its normed input). Cross-attention adds its keys' and values' gradient into
   * `g.encoderOutput` (overwriting it when `firstCross`).
   */
  #coreBackward(
    ops: Op[],
    s: Sublayer,
    g: T5Grads,
    gy: Tensor,
    gn: Tensor,
    firstCross: boolean,
    dec?: DecoderStack,
  ): void {
    const gpu = this.#gpu;
    const { B, HD } = this;
    if (s.kind === "ffn") {
      const prefix = `${s.weights}.DenseReluDense`;
      const site = stream(s.stack, s.layer, SITE.ffnAct);
      this.#ffnBackward(ops, g, prefix, s.ffn!, gy, gn, site);
      return;
    }
    const self = s.kind === "self";
    const mod = `${s.weights}.${self ? "SelfAttention" : "EncDecAttention"}`;
    const lk = self ? s.len : this.S;
    const gctx = this.view(g.context, [B, s.len, HD]);
    ops.push(this.linearBack(gy, this.w(`${mod}.o.weight`), gctx, `${s.label}.o.backward`));
    const common = {
      heads: this.H,
      dctx: gctx,
      scratch: [g.scores] as [Tensor],
      dropout: this.#site(true, stream(s.stack, s.layer, self ? SITE.selfProbs : SITE.crossProbs)),
      label: `${s.label}.backward`,
    };
    if (self) {
      // q, k, v side by side, and their gradients likewise: one product back to the norm
      const qkv = s.self!.qkv;
      const dqkv = this.view(g.qkv, [B, s.len, 3 * HD]);
      const [q, k, v] = [0, 1, 2].map((i) => ({ tensor: qkv, offset: i * HD }));
      const [dq, dk, dv] = [0, 1, 2].map((i) => ({ tensor: dqkv, offset: i * HD }));
      ops.push(...attentionBackward(gpu, { ...common, q, k, v, probs: s.self!.probs, dq, dk, dv }));
      const names = ["q", "k", "v"].map((x) => `${mod}.${x}.weight`);
      ops.push(
        ...this.#projectBack({ tensor: dqkv, col: 0 }, names, gn, `${s.label}.qkv.backward`),
      );
      return;
    }
    // Cross-attention: q from this layer's norm; k and v from the encoder output, whose
    // gradient collects every decoder layer's share.
    const crossKV = dec!.crossKV;
    const dq = this.view(g.qkv, [B, s.len, HD]);
    const dkv = this.view(g.kv, [B, lk, 2 * HD]);
    ops.push(...attentionBackward(gpu, {
      ...common,
      q: s.cross!.q,
      k: { tensor: crossKV, offset: 2 * s.layer * HD },
      v: { tensor: crossKV, offset: (2 * s.layer + 1) * HD },
      probs: s.cross!.probs,
      dq,
      dk: { tensor: dkv, offset: 0 },
      dv: { tensor: dkv, offset: HD },
    }));
    ops.push(
      ...this.#projectBack(
        { tensor: dq, col: 0 },
        [`${mod}.q.weight`],
        gn,
        `${s.label}.q.backward`,
      ),
    );
    ops.push(
      ...this.#projectBack(
        { tensor: dkv, col: 0 },
        [`${mod}.k.weight`, `${mod}.v.weight`],
        g.encoderOutput,
        `${s.label}.kv.backward`,
        !firstCross,
      ),
    );
  }

  /** The embedding of `input_ids` into the encoder's input embeddings. */
  embed(): Op {
    return embeddingForward(this.#gpu, {
      table: embeddingTable(this.model, "encoder"),
      ids: this.bufs.inputs.inputIds,
      out: this.bufs.inputs.inputsEmbeds,
      label: "embed(input_ids)",
    });
  }

  /** The encoder's forward ops: position bias, blocks, final norm into `encoder.output`. */
  encoder(train: boolean): Op[] {
    const { inputs, encoder } = this.bufs;
    const ops: Op[] = [];
    const drop = train && this.dropoutRate > 0;
    ops.push(positionBias(this.#gpu, {
      weight: this.w("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
      buckets: inputs.buckets,
      out: inputs.positionBias,
    }));
    const subs = this.#sublayers("encoder", drop);
    // Without input dropout, block 0 reads the input embeddings themselves (no copy).
    const entry = drop
      ? {
        y: inputs.inputsEmbeds,
        sum: subs[0].x,
        dropoutY: this.#site(true, stream("encoder", -1, SITE.input)),
      }
      : { x: inputs.inputsEmbeds };
    this.#stack(ops, train, subs, entry, encoder);
    return ops;
  }

  /** The decoder's forward ops (teacher forcing), the LM head and the loss. */
  decoder(train: boolean, dec: DecoderStack): Op[] {
    const gpu = this.#gpu;
    const ops: Op[] = [];
    const drop = train && this.dropoutRate > 0;
    ops.push(positionBias(gpu, {
      weight: this.w("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
      buckets: dec.buckets,
      out: dec.positionBias,
    }));
    // the cross-attention keys and values of every layer: one product of the encoder output
    const kv = Array.from({ length: this.cfg.numDecoderLayers }, (_, l) => {
      const a = `decoder.block.${l}.layer.1.EncDecAttention`;
      return [`${a}.k.weight`, `${a}.v.weight`];
    }).flat();
    ops.push(
      ...this.#project(
        this.bufs.encoder.output,
        kv,
        { tensor: dec.crossKV, col: 0 },
        "decoder.cross_kv",
      ),
    );
    const stream0 = this.#decoderStream(dec)(0);
    ops.push(embeddingForward(gpu, {
      table: embeddingTable(this.model, "decoder"),
      ids: dec.decoderInputIds,
      out: drop ? dec.embedded : stream0,
      label: "decoder.embed",
    }));
    const entry = drop
      ? {
        y: dec.embedded,
        sum: stream0,
        dropoutY: this.#site(true, stream("decoder", -1, SITE.input)),
      }
      : { x: stream0 };
    this.#stack(ops, train, this.#sublayers("decoder", drop, dec), entry, dec, dec);
    ops.push(matmul(gpu, {
      a: dec.output,
      b: this.lmHead(),
      out: dec.logits,
      transB: true,
      alpha: this.logitScale(),
      label: "lm_head",
    }));
    ops.push(crossEntropyForward(gpu, {
      logits: dec.logits,
      labels: dec.labels,
      loss: dec.loss,
      lse: dec.lse,
      nValid: dec.nValid,
      label: "loss",
    }));
    return ops;
  }

  /**
   * The backward ops from the loss to the encoder's input embeddings, to be recorded right
   * after the training-mode forward (they read its saved activations and dropout state).
   */
  backward(dec: DecoderStack, g: T5Grads): Op[] {
    const gpu = this.#gpu;
    const ops: Op[] = [];
    const drop = this.dropoutRate > 0;
    ops.push(crossEntropyBackward(gpu, {
      dlogits: g.logits,
      logits: dec.logits,
      labels: dec.labels,
      lse: dec.lse,
      nValid: dec.nValid,
      label: "loss.backward",
    }));
    ops.push(matmul(gpu, {
      a: g.logits,
      b: this.lmHead(),
      out: g.decoderOutput,
      alpha: this.logitScale(),
      label: "lm_head.backward",
    }));
    // Decoder: its input embeddings are frozen and not a prompt, so the first sublayer's norm
    // gradient (towards them) is skipped.
    this.#stackBackward(
      ops,
      this.#sublayers("decoder", drop, dec),
      g,
      g.decoderOutput,
      g.decoderStream,
      dec,
      { skipFirstNorm: true, dec },
    );
    // Encoder. Without input dropout the stream's gradient is the input embeddings'.
    this.#stackBackward(
      ops,
      this.#sublayers("encoder", drop),
      g,
      g.encoderOutput,
      drop ? g.encoderStream : g.inputsEmbeds,
      this.bufs.encoder,
      { entryBranch: g.inputsEmbeds },
    );
    return ops;
  }
}
