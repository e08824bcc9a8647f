/**
 * Multi-head scaled dot-product attention over per-head strided views, forward and backward,
 * plus float64 CPU references:
 *
 * ```
 * probs = softmax(scale · q·kᵀ + bias + mask)      (B, H, Lq, Lk), kept for the backward pass
 * ctx   = dropout(probs) · v                       (B, Lq, H·D)
 * ```
 *
 * q, k and v are stored (B, L, H·D), as the projections write them; each head reads its D
 * columns in place (no transpose). T5 uses `scale` 1 (no 1/√D). Dropout on the probabilities
 * uses the counter-based masks of `dropout.ts`, regenerated in the backward pass.
 *
 * Two implementations give the same results: fused kernels (scores, bias, mask, softmax,
 * dropout and context per query row in one dispatch; two for the backward; a row of up to
 * {@link CACHED_MAX_KEYS} keys is kept in registers, a longer one is recomputed in a second
 * pass), the default, reading a head's columns 4 floats at a time where the head size and the
 * operands' row widths and offsets are multiples of 4 (scalar loads otherwise, or with `loads:
 * "scalar"`); and strided matmuls around the softmax and dropout kernels (`fused: false`).
 *
 * Shape legend: B batch, H heads, D head size, Lq query length, Lk key length.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { fmtShape, ShapeError } from "../gpu/errors.ts";
import { buildOp, type Op, workgroupsFor } from "../gpu/op.ts";
import { checkF32, Tensor, viewOf } from "../gpu/tensor.ts";
import {
  dropoutBackward,
  dropoutForward,
  dropoutMaskCpu,
  type DropoutSite,
  dropoutThreshold,
  dropoutUniforms,
} from "./dropout.ts";
import { matmulStrided, type StridedOperand } from "./matmul.ts";
import { type Loads, loadWidth } from "./loads.ts";
import { softmax, softmaxBackward, softmaxBackwardCpu, softmaxCpu } from "./softmax.ts";

/** The longest key row the fused kernels keep in a private array (longer rows are recomputed). */
export const CACHED_MAX_KEYS = 128;

/**
 * Head sizes up to which the fused kernels keep a row of D values in private arrays (the query
 * row forward, the context gradient's row and the keys' and values' sums backward, where each
 * dropout bit is then drawn once); larger heads read them from memory each time.
 */
export const CACHED_MAX_HEAD_DIM = 128;

/** Dropout on the attention probabilities: the step state, the site's stream and the rate. */
export type AttentionDropout = DropoutSite;

/**
 * q, k or v (or a gradient of one): a (B, L, H·D) tensor, or the H·D head columns starting at
 * column `offset` of a wider (B, L, W) tensor (fused projections keep q, k and v side by side).
 */
export type HeadsOperand = Tensor | { tensor: Tensor; offset: number };

/** An operand resolved: its tensor, the head block's first column, the row width and rows. */
interface Cols {
  t: Tensor;
  off: number;
  w: number;
  rows: number;
}

function cols(label: string, role: string, x: HeadsOperand, B: number, HD: number): Cols {
  const t = x instanceof Tensor ? x : x.tensor;
  const off = x instanceof Tensor ? 0 : x.offset;
  checkF32(label, { [role]: t });
  if (
    t.shape.length !== 3 || t.shape[0] !== B || !Number.isInteger(off) || off < 0 ||
    off + HD > t.shape[2]
  ) {
    throw new ShapeError(
      `${label}: ${role} = ${t.describe()}${off ? ` from column ${off}` : ""} must hold (B, L, ` +
        `H·D) = (${B}, L, ${HD}) head columns`,
    );
  }
  return { t, off, w: t.shape[2], rows: t.shape[1] };
}

/**
 * Whether two operands are one tensor (one binding range), so a kernel reads or writes both
 * through one binding: WebGPU forbids overlapping bindings when one of them is writable.
 */
function oneBinding(a: Cols, b: Cols): boolean {
  return a.t.buffer === b.t.buffer && a.t.offset === b.t.offset &&
    a.t.bindingSize === b.t.bindingSize;
}

/** Options of {@link attention}. */
export interface AttentionOptions {
  /** Queries (B, Lq, H·D). */
  q: HeadsOperand;
  /** Keys (B, L, H·D) with L >= Lk: rows past Lk (the probabilities' last dim) are not read. */
  k: HeadsOperand;
  /** Values, as `k`. */
  v: HeadsOperand;
  /** Number of heads H (H·D is the last dim of q). */
  heads: number;
  /** Probabilities (B, H, Lq, Lk), written and kept for {@link attentionBackward}. */
  probs: Tensor;
  /** Context (B, Lq, H·D), written. */
  ctx: Tensor;
  /**
   * The matmul path's scratch (`fused: false`): at least B·H·Lq·Lk elements, apart from every
   * other binding; it holds the scores, then the dropped probabilities.
   */
  scratch?: Tensor;
  /** Factor on q·kᵀ. @default {1} */
  scale?: number;
  /** Additive bias (H, Lq, Lk), broadcast over B (T5's relative position bias). */
  bias?: Tensor;
  /** Key mask (B, Lk): 1 attends, 0 masks. */
  mask?: Tensor;
  /** Mask key j for query i when `j > i + causalOffset`. @default {false} */
  causal?: boolean;
  /** See `causal`; cached decoding moves it with `softmax.setParams({causal_offset})`. @default {0} */
  causalOffset?: number;
  /** Dropout on the probabilities (training). */
  dropout?: AttentionDropout;
  /** The fused kernels (true) or the matmul path (false). @default {true} */
  fused?: boolean;
  /**
   * The fused kernels' loads: vec4 (4 floats of a head row per load) or scalar. vec4 needs the
   * head size and every operand's row width and head column offset to be multiples of 4.
   * @default {vec4 where the operands allow it, else scalar}
   */
  loads?: Loads;
  /**
   * Rows per thread of the fused kernels (1 to {@link MAX_ROWS_PER_THREAD}): each key and value
   * row a thread loads serves that many of its query rows (the backward's too). Applies where
   * the rows are cached (at most {@link CACHED_MAX_KEYS} keys) and a head is at most 8 loads
   * (32 floats with vec4 loads, 8 with scalar ones), capped at the rows there are (Lq, or Lk for
   * the keys' gradients); elsewhere 1. The results agree to f32 rounding (compilers may fuse
   * multiply-adds differently).
   * @default {4 on a software adapter, where loads cost the most, else 1}
   */
  rowsPerThread?: number;
  /** Name in error messages. @default {"attention"} */
  label?: string;
}

/** The ops of an attention forward pass; record `ops` in order. */
export interface AttentionOps {
  /** The fused kernel, or scores, softmax, dropout (if any), context. */
  ops: Op[];
  /** The op whose `causal_offset` uniform cached decoding advances per step. */
  offsetOp: Op;
}

/** Sizes of an attention call, read off its tensors and checked. */
interface Dims {
  B: number;
  H: number;
  D: number;
  lq: number;
  lk: number;
  q: Cols;
  k: Cols;
  v: Cols;
}

/**
 * Checks q, k, v and the probabilities against `plain`, the (B, Lq, H·D) context (or its
 * gradient), which gives B, Lq and H·D.
 */
function dims(
  label: string,
  o: { q: HeadsOperand; k: HeadsOperand; v: HeadsOperand; heads: number; probs: Tensor },
  plain: Tensor,
  role: string,
): Dims {
  checkF32(label, { probs: o.probs, [role]: plain });
  if (plain.shape.length !== 3) {
    throw new ShapeError(`${label}: ${role} = ${plain.describe()} must be (B, Lq, H·D)`);
  }
  const [B, lq, HD] = plain.shape;
  const heads = o.heads;
  if (!Number.isInteger(heads) || heads < 1 || HD % heads !== 0) {
    throw new ShapeError(
      `${label}: heads must be a positive divisor of H·D = ${HD} (${role} = ${plain.describe()}), ` +
        `got ${heads}`,
    );
  }
  const q = cols(label, "q", o.q, B, HD);
  if (q.rows !== lq) {
    throw new ShapeError(
      `${label}: ${role} = ${plain.describe()} must be (B, Lq, H·D) with Lq = ${q.rows}, the ` +
        `rows of q = ${q.t.describe()}`,
    );
  }
  const probs = o.probs;
  if (
    probs.shape.length !== 4 || probs.shape[0] !== B || probs.shape[1] !== heads ||
    probs.shape[2] !== lq
  ) {
    throw new ShapeError(
      `${label}: probs = ${probs.describe()} must be (B, H, Lq, Lk) = (${B}, ${heads}, ${lq}, Lk)`,
    );
  }
  const lk = probs.shape[3];
  const k = cols(label, "k", o.k, B, HD), v = cols(label, "v", o.v, B, HD);
  for (const [r, c] of [["k", k], ["v", v]] as const) {
    if (c.rows < lk) {
      throw new ShapeError(
        `${label}: ${r} = ${c.t.describe()} must be (B, L, H·D) = (${B}, L >= ${lk}, ${HD}) ` +
          `for probs ${fmtShape(probs.shape)}`,
      );
    }
  }
  if (k.rows !== v.rows) {
    throw new ShapeError(
      `${label}: k = ${k.t.describe()} and v = ${v.t.describe()} differ in rows`,
    );
  }
  return { B, H: heads, D: HD / heads, lq, lk, q, k, v };
}

function expect(label: string, role: string, t: Tensor, shape: readonly number[]): void {
  if (fmtShape(t.shape) !== fmtShape(shape)) {
    throw new ShapeError(`${label}: ${role} = ${t.describe()} must be ${fmtShape(shape)}`);
  }
}

function scratchView(label: string, role: string, t: Tensor, shape: readonly number[]): Tensor {
  const need = shape.reduce((a, d) => a * d, 1);
  if (t.dtype !== "f32" || t.size < need) {
    throw new ShapeError(
      `${label}: ${role} = ${t.describe()} must be f32 with at least ${need} elements`,
    );
  }
  return viewOf(t, shape, `${t.name}${fmtShape(shape)}`);
}

/** Per-head operand of a (B, L, H·D) tensor: head h of row b starts at b·L·HD + h·D. */
function heads(x: Cols | Tensor, d: Dims): StridedOperand {
  const c = x instanceof Tensor ? { t: x, off: 0, w: x.shape[2], rows: x.shape[1] } : x;
  return { tensor: c.t, offset: c.off, ld: c.w, batchStrides: [c.rows * c.w, d.D] };
}

/** Per-head operand of (B, H, Lq, Lk) probabilities. */
function probsOperand(t: Tensor, d: Dims): StridedOperand {
  return { tensor: t, ld: d.lk, batchStrides: [d.H * d.lq * d.lk, d.lq * d.lk] };
}

/**
 * Attention forward: `probs = softmax(scale·q·kᵀ + bias + mask)`, `ctx = dropout(probs)·v`.
 *
 * @example
 * ```ts
 * import { attention, attentionCpu, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * // B 1, L 3 positions, H 2 heads of D 2: q, k, v are (B, L, H·D), as the projections write them
 * const o = { batch: 1, heads: 2, headDim: 2, lq: 3, lk: 3, mask: [1, 1, 0] }; // 3rd key: padding
 * const [q, k, v] = [0, 1, 2].map((s) => Array.from({ length: 12 }, (_, i) => Math.sin(i + s)));
 * const [tq, tk, tv] = [q, k, v].map((x) => gpu.upload("qkv", Float32Array.from(x), [1, 3, 4]));
 * const probs = gpu.tensor("probs", [1, 2, 3, 3]); // (B, H, Lq, Lk), kept for the backward pass
 * const ctx = gpu.tensor("ctx", [1, 3, 4]);
 * const scratch = gpu.tensor("scratch", [18]);
 * const mask = gpu.upload("mask", Float32Array.from(o.mask), [1, 3]);
 * const { ops } = attention(gpu, { q: tq, k: tk, v: tv, heads: 2, probs, ctx, scratch, mask });
 * await gpu.run(ops);
 * const want = attentionCpu(q, k, v, o);
 * (await gpu.read(ctx)).forEach((x, i) => assert.ok(Math.abs(x - want.ctx[i]) < 1e-5));
 * gpu.destroy();
 * ```
 */
export function attention(gpu: Gpu, o: AttentionOptions): AttentionOps {
  const label = o.label ?? "attention";
  const d = dims(label, o, o.ctx, "ctx");
  if (useFused(o.fused, d)) {
    if (o.bias) expect(label, "bias", o.bias, [d.H, d.lq, d.lk]);
    if (o.mask) expect(label, "mask", o.mask, [d.B, d.lk]);
    const offset = o.causalOffset ?? 0;
    const flags = [o.bias && "bias", o.mask && "mask", o.causal && "causal", o.dropout && "dropout"]
      .filter(Boolean);
    const kInQ = oneBinding(d.q, d.k);
    const vInK = oneBinding(d.k, d.v);
    const ctxCols = { t: o.ctx, off: 0, w: o.ctx.shape[2], rows: d.lq };
    const w = vectorWidth(label, o.loads, d, [d.q, d.k, d.v, ctxCols]);
    const head = headConstants(d.D, w);
    const cached = d.lk <= CACHED_MAX_KEYS;
    const rows = rowsPerThread(
      gpu,
      label,
      o.rowsPerThread,
      cached && head.ROW_CACHED && head.DV <= ROWS_MAX_HEAD_LOADS,
      d.lq,
    );
    const op = buildOp(gpu, {
      kernel: w === 4 ? "attention_vec4" : "attention_small",
      label: `${label}(q=${d.q.t.describe()}, k=${d.k.t.describe()}${
        flags.length ? ` +${flags.join("+")}` : ""
      } -> ${o.ctx.describe()})`,
      bindings: {
        q: d.q.t,
        k: kInQ ? gpu.placeholder : d.k.t,
        v: vInK ? gpu.placeholder : d.v.t,
        bias: o.bias ?? gpu.placeholder,
        mask: o.mask ?? gpu.placeholder,
        state: o.dropout?.state ?? gpu.placeholder,
        probs: o.probs,
        ctx: o.ctx,
      },
      params: {
        rows: d.B * d.H * d.lq,
        h: d.H,
        lq: d.lq,
        lk: d.lk,
        d: d.D / w,
        lkv: d.k.rows,
        q_w: d.q.w / w,
        q_off: d.q.off / w,
        k_w: d.k.w / w,
        k_off: d.k.off / w,
        v_w: d.v.w / w,
        v_off: d.v.off / w,
        scale: o.scale ?? 1,
        causal_offset: offset,
        ...dropoutUniforms(o.dropout),
      },
      constants: {
        HAS_BIAS: !!o.bias,
        HAS_MASK: !!o.mask,
        CAUSAL: !!o.causal,
        DROPOUT: !!o.dropout && o.dropout.p > 0,
        CACHED: cached,
        K_IN_Q: kInQ,
        V_IN_K: vInK,
        Q_CACHED: head.ROW_CACHED,
        DV: head.DV,
        ROWS: rows,
      },
      workgroups: workgroupsFor(d.B * d.H * Math.ceil(d.lq / rows), 64),
    });
    return { ops: [op], offsetOp: op };
  }
  const pShape = o.probs.shape;
  if (!o.scratch) throw new ShapeError(`${label}: the matmul path (fused: false) needs scratch`);
  const scores = scratchView(label, "scratch", o.scratch, pShape);
  const batch: [number, number] = [d.B, d.H];
  const ops: Op[] = [];
  ops.push(matmulStrided(gpu, {
    m: d.lq,
    n: d.lk,
    k: d.D,
    batch,
    transB: true,
    a: heads(d.q, d),
    b: heads(d.k, d),
    out: probsOperand(scores, d),
    label: `${label}.scores`,
  }));
  const sm = softmax(gpu, {
    x: scores,
    out: o.probs,
    scale: o.scale,
    bias: o.bias,
    mask: o.mask,
    causal: o.causal,
    causalOffset: o.causalOffset,
    label: `${label}.softmax`,
  });
  ops.push(sm);
  let used = o.probs;
  if (o.dropout && o.dropout.p > 0) {
    used = scores; // the scores are dead once the softmax ran
    ops.push(dropoutForward(gpu, {
      x: o.probs,
      out: used,
      state: o.dropout.state,
      p: o.dropout.p,
      stream: o.dropout.stream,
      label: `${label}.dropout`,
    }));
  }
  ops.push(matmulStrided(gpu, {
    m: d.lq,
    n: d.D,
    k: d.lk,
    batch,
    a: probsOperand(used, d),
    b: heads(d.v, d),
    out: heads(o.ctx, d),
    label: `${label}.context`,
  }));
  return { ops, offsetOp: sm };
}

/** Whether to use the fused kernels (the default); they need at least one key and query. */
function useFused(fused: boolean | undefined, d: Dims): boolean {
  return (fused ?? true) && d.lk > 0 && d.lq > 0 && d.D > 0;
}

/**
 * The fused kernels' vector width: 4 (the `_vec4` kernels) when the head size and every
 * operand's row width and head offset are multiples of 4 and `loads` allows it, else 1; a
 * requested "vec4" that the operands do not allow is refused, naming the operand.
 */
function vectorWidth(label: string, loads: Loads | undefined, d: Dims, ops: Cols[]): 1 | 4 {
  const bad = ops.find((c) => c.w % 4 !== 0 || c.off % 4 !== 0);
  const misaligned = d.D % 4 !== 0
    ? `head size ${d.D}`
    : bad && `${bad.t.describe()}${bad.off ? ` from column ${bad.off}` : ""}`;
  return loadWidth(
    label,
    loads,
    "the head size, row widths and head offsets to be multiples of 4",
    misaligned,
  );
}

/** Override constants of the fused kernels for head size D read `w` floats at a time. */
function headConstants(D: number, w: number): { DV: number; ROW_CACHED: boolean } {
  const cached = D <= CACHED_MAX_HEAD_DIM;
  return { DV: cached ? D / w : 0, ROW_CACHED: cached };
}

/** The most rows per thread of the fused attention kernels ({@link AttentionOptions}). */
export const MAX_ROWS_PER_THREAD = 4;

/**
 * Several rows per thread need a head of at most this many loads (`DQ_MAX` of the kernels):
 * a thread keeps its rows' sums in registers, which CPU adapters compile slowly past it.
 */
const ROWS_MAX_HEAD_LOADS = 8;

/**
 * Rows per thread for a fused kernel over rows of length `length` (Lq or Lk): the option
 * (checked) or the adapter's default where `eligible` (rows cached, a head of at most
 * {@link ROWS_MAX_HEAD_LOADS} loads), at most `length` (no repeated rows), else 1.
 */
function rowsPerThread(
  gpu: Gpu,
  label: string,
  asked: number | undefined,
  eligible: boolean,
  length: number,
): number {
  if (
    asked !== undefined &&
    !(Number.isInteger(asked) && asked >= 1 && asked <= MAX_ROWS_PER_THREAD)
  ) {
    throw new ShapeError(
      `${label}: rowsPerThread must be an integer from 1 to ${MAX_ROWS_PER_THREAD}, got ${asked}`,
    );
  }
  if (!eligible) return 1;
  return Math.min(asked ?? (gpu.adapter.software ? MAX_ROWS_PER_THREAD : 1), length);
}

/** Options of {@link attentionBackward}. */
export interface AttentionBackwardOptions {
  /** The forward's queries (B, Lq, H·D). */
  q: HeadsOperand;
  /** The forward's keys (B, Lk, H·D). */
  k: HeadsOperand;
  /** The forward's values (B, Lk, H·D). */
  v: HeadsOperand;
  /** Number of heads H. */
  heads: number;
  /** The forward's probabilities (B, H, Lq, Lk). */
  probs: Tensor;
  /** Gradient of the context (B, Lq, H·D). */
  dctx: Tensor;
  /** Gradient of q (B, Lq, H·D), written (only its head columns). */
  dq: HeadsOperand;
  /** Gradient of k (B, Lk, H·D), written (only its head columns). */
  dk: HeadsOperand;
  /** Gradient of v (B, Lk, H·D), written (only its head columns). */
  dv: HeadsOperand;
  /**
   * Scratch of at least B·H·Lq·Lk elements each, apart from each other and from every other
   * binding: one (the scores' gradient) for the fused kernels, two (the probabilities' too)
   * for the matmul path.
   */
  scratch: readonly [Tensor, Tensor?];
  /**
   * With dropout: a third scratch of B·H·Lq·Lk elements for the recomputed dropped
   * probabilities (may be the forward's `scratch`).
   */
  droppedScratch?: Tensor;
  /** The forward's scale. @default {1} */
  scale?: number;
  /** The forward's dropout (same state, stream and p). */
  dropout?: AttentionDropout;
  /** As the forward's {@link AttentionOptions.fused}. @default {auto} */
  fused?: boolean;
  /** As the forward's {@link AttentionOptions.loads} (dq, dk, dv and dctx count too). */
  loads?: Loads;
  /** As the forward's {@link AttentionOptions.rowsPerThread}. */
  rowsPerThread?: number;
  /** Name in error messages. @default {"attention_backward"} */
  label?: string;
}

/**
 * Attention backward, from `dctx` to `dq`, `dk`, `dv` (the mask and the bias get no gradient):
 * `dv = dropout(P)ᵀ·dctx`, `dP = dropout'(dctx·vᵀ)`, `dS = scale·softmax'(dP)`, `dq = dS·k`,
 * `dk = dSᵀ·q`.
 *
 * @example
 * ```ts
 * import { attention, attentionBackward, attentionBackwardCpu, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const o = { batch: 1, heads: 2, headDim: 2, lq: 3, lk: 3 };
 * const [q, k, v, dctx] = [0, 1, 2, 3].map((s) =>
 *   Array.from({ length: 12 }, (_, i) => Math.sin(i + 5 * s))
 * );
 * const [tq, tk, tv, tdctx] = [q, k, v, dctx].map((x, i) =>
 *   gpu.upload(`in${i}`, Float32Array.from(x), [1, 3, 4])
 * );
 * const [ctx, dq, dk, dv] = ["ctx", "dq", "dk", "dv"].map((n) => gpu.tensor(n, [1, 3, 4]));
 * const probs = gpu.tensor("probs", [1, 2, 3, 3]);
 * const scratch = [gpu.tensor("s0", [18]), gpu.tensor("s1", [18])] as const;
 * const qkv = { q: tq, k: tk, v: tv, heads: 2, probs };
 * const forward = attention(gpu, { ...qkv, ctx, scratch: gpu.tensor("s", [18]) }).ops;
 * const backward = attentionBackward(gpu, { ...qkv, dctx: tdctx, dq, dk, dv, scratch });
 * await gpu.run([...forward, ...backward]); // the backward reads the forward's probabilities
 * const want = attentionBackwardCpu(q, k, v, dctx, o);
 * (await gpu.read(dq)).forEach((x, i) => assert.ok(Math.abs(x - want.dq[i]) < 1e-5));
 * (await gpu.read(dk)).forEach((x, i) => assert.ok(Math.abs(x - want.dk[i]) < 1e-5));
 * (await gpu.read(dv)).forEach((x, i) => assert.ok(Math.abs(x - want.dv[i]) < 1e-5));
 * gpu.destroy();
 * ```
 */
export function attentionBackward(gpu: Gpu, o: AttentionBackwardOptions): Op[] {
  const label = o.label ?? "attention_backward";
  const d = dims(label, o, o.dctx, "dctx");
  const HD = d.H * d.D;
  const dq = cols(label, "dq", o.dq, d.B, HD);
  const dk = cols(label, "dk", o.dk, d.B, HD), dv = cols(label, "dv", o.dv, d.B, HD);
  for (const [r, c, n] of [["dq", dq, d.lq], ["dk", dk, d.lk], ["dv", dv, d.lk]] as const) {
    if (c.rows !== n) {
      throw new ShapeError(`${label}: ${r} = ${c.t.describe()} must have ${n} rows`);
    }
  }
  const pShape = o.probs.shape;
  if (d.k.rows === d.lk && useFused(o.fused, d)) {
    const ds = scratchView(label, "scratch[0]", o.scratch[0], pShape);
    const drop = dropoutUniforms(o.dropout);
    const dropout = !!o.dropout && o.dropout.p > 0;
    const state = o.dropout?.state ?? gpu.placeholder;
    const vInK = oneBinding(d.k, d.v), dvInDk = oneBinding(dk, dv);
    const dctxCols = { t: o.dctx, off: 0, w: HD, rows: d.lq };
    const w = vectorWidth(label, o.loads, d, [d.q, d.k, d.v, dq, dk, dv, dctxCols]);
    const head = headConstants(d.D, w);
    const common = { h: d.H, lq: d.lq, lk: d.lk, d: d.D / w };
    const cached = d.lk <= CACHED_MAX_KEYS;
    const fits = head.ROW_CACHED && head.DV <= ROWS_MAX_HEAD_LOADS;
    const rowsQ = rowsPerThread(gpu, label, o.rowsPerThread, cached && fits, d.lq);
    const rowsKv = rowsPerThread(gpu, label, o.rowsPerThread, fits, d.lk);
    return [
      buildOp(gpu, {
        kernel: w === 4 ? "attention_vec4_backward_q" : "attention_small_backward_q",
        label: `${label}.dq(dctx=${o.dctx.describe()} -> ${dq.t.describe()})`,
        bindings: {
          k: d.k.t,
          v: vInK ? gpu.placeholder : d.v.t,
          probs: o.probs,
          dctx: o.dctx,
          state,
          ds,
          dq: dq.t,
        },
        params: {
          rows: d.B * d.H * d.lq,
          ...common,
          k_w: d.k.w / w,
          k_off: d.k.off / w,
          v_w: d.v.w / w,
          v_off: d.v.off / w,
          dq_w: dq.w / w,
          dq_off: dq.off / w,
          scale: o.scale ?? 1,
          ...drop,
        },
        constants: {
          DROPOUT: dropout,
          CACHED: cached,
          V_IN_K: vInK,
          ...head,
          ROWS: rowsQ,
        },
        workgroups: workgroupsFor(d.B * d.H * Math.ceil(d.lq / rowsQ), 64),
      }),
      buildOp(gpu, {
        kernel: w === 4 ? "attention_vec4_backward_kv" : "attention_small_backward_kv",
        label: `${label}.dkv(dctx=${o.dctx.describe()} -> ${dk.t.describe()}, ${dv.t.describe()})`,
        bindings: {
          q: d.q.t,
          probs: o.probs,
          ds,
          dctx: o.dctx,
          state,
          dk: dk.t,
          dv: dvInDk ? gpu.sink : dv.t,
        },
        params: {
          rows: d.B * d.H * d.lk,
          ...common,
          q_w: d.q.w / w,
          q_off: d.q.off / w,
          dk_w: dk.w / w,
          dk_off: dk.off / w,
          dv_w: dv.w / w,
          dv_off: dv.off / w,
          ...drop,
        },
        constants: { DROPOUT: dropout, DV_IN_DK: dvInDk, ...head, ROWS: rowsKv },
        workgroups: workgroupsFor(d.B * d.H * Math.ceil(d.lk / rowsKv), 64),
      }),
    ];
  }
  if (!o.scratch[1]) {
    throw new ShapeError(`${label}: the matmul path (fused: false) needs two scratch tensors`);
  }
  const dPd = scratchView(label, "scratch[0]", o.scratch[0], pShape);
  const dP = scratchView(label, "scratch[1]", o.scratch[1], pShape);
  const drop = o.dropout && o.dropout.p > 0 ? o.dropout : undefined;
  const batch: [number, number] = [d.B, d.H];
  const ops: Op[] = [];
  let used = o.probs;
  if (drop) {
    if (!o.droppedScratch) {
      throw new ShapeError(`${label}: with dropout, give droppedScratch for the dropped probs`);
    }
    used = scratchView(label, "droppedScratch", o.droppedScratch, pShape);
    ops.push(dropoutForward(gpu, {
      x: o.probs,
      out: used,
      state: drop.state,
      p: drop.p,
      stream: drop.stream,
      label: `${label}.dropout(recompute)`,
    }));
  }
  // dPd = dctx · vᵀ ; dv = dropout(P)ᵀ · dctx
  ops.push(matmulStrided(gpu, {
    m: d.lq,
    n: d.lk,
    k: d.D,
    batch,
    transB: true,
    a: heads(o.dctx, d),
    b: heads(d.v, d),
    out: probsOperand(dPd, d),
    label: `${label}.dprobs`,
  }));
  ops.push(matmulStrided(gpu, {
    m: d.lk,
    n: d.D,
    k: d.lq,
    batch,
    transA: true,
    a: probsOperand(used, d),
    b: heads(o.dctx, d),
    out: heads(dv, d),
    label: `${label}.dv`,
  }));
  // dP = dropout'(dPd); then the scores' gradient dS (written where dP is not)
  let dProbs = dPd, dS = dP;
  if (drop) {
    ops.push(dropoutBackward(gpu, {
      dout: dPd,
      dx: dP,
      state: drop.state,
      p: drop.p,
      stream: drop.stream,
      label: `${label}.dropout_backward`,
    }));
    [dProbs, dS] = [dP, dPd];
  }
  ops.push(softmaxBackward(gpu, {
    dout: dProbs,
    y: o.probs,
    dx: dS,
    scale: o.scale,
    label: `${label}.softmax_backward`,
  }));
  // dq = dS · k ; dk = dSᵀ · q (dS is the gradient of the raw products q·kᵀ: scale included)
  ops.push(matmulStrided(gpu, {
    m: d.lq,
    n: d.D,
    k: d.lk,
    batch,
    a: probsOperand(dS, d),
    b: heads(d.k, d),
    out: heads(dq, d),
    label: `${label}.dq`,
  }));
  ops.push(matmulStrided(gpu, {
    m: d.lk,
    n: d.D,
    k: d.lq,
    batch,
    transA: true,
    a: probsOperand(dS, d),
    b: heads(d.q, d),
    out: heads(dk, d),
    label: `${label}.dk`,
  }));
  return ops;
}

// ---------------------------------------------------------------------------------------------
// Float64 CPU references

/** Sizes and options of the CPU references; host arrays in the layouts of the launchers. */
export interface AttentionCpuOptions {
  /** Batch B. */
  batch: number;
  /** Heads H. */
  heads: number;
  /** Head size D. */
  headDim: number;
  /** Query length Lq. */
  lq: number;
  /** Key length Lk. */
  lk: number;
  /** @default {1} */
  scale?: number;
  /** (H, Lq, Lk). */
  bias?: ArrayLike<number>;
  /** (B, Lk). */
  mask?: ArrayLike<number>;
  /** @default {false} */
  causal?: boolean;
  /** Dropout on the probabilities with the mask of `dropout.ts` for `(seed, step, stream)`. */
  dropout?: { p: number; seed: number; step: number; stream: number };
}

/** The kept-and-scaled factors of the probabilities' dropout (ones without dropout). */
function dropFactors(o: AttentionCpuOptions, n: number): Float64Array {
  const f = new Float64Array(n).fill(1);
  if (!o.dropout || o.dropout.p === 0) return f;
  const keep = dropoutMaskCpu(n, o.dropout);
  const s = dropoutThreshold(o.dropout.p).scale;
  for (let i = 0; i < n; i++) f[i] = keep[i] ? s : 0;
  return f;
}

/**
 * Float64 CPU reference of {@link attention}: `probs` (B, H, Lq, Lk) and `ctx` (B, Lq, H·D)
 * from q (B, Lq, H·D), k and v (B, Lk, H·D).
 *
 * @example
 * ```ts
 * import { attentionCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // one query, two keys with equal scores: the context is the mean of the values
 * const o = { batch: 1, heads: 1, headDim: 1, lq: 1, lk: 2 };
 * const { probs, ctx } = attentionCpu([1], [0, 0], [2, 4], o);
 * assert.deepEqual(probs, Float64Array.of(0.5, 0.5));
 * assert.deepEqual(ctx, Float64Array.of(3));
 * ```
 */
export function attentionCpu(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  o: AttentionCpuOptions,
): { probs: Float64Array; ctx: Float64Array } {
  const { batch: B, heads: H, headDim: D, lq, lk } = o;
  const HD = H * D;
  const scores = new Float64Array(B * H * lq * lk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < lq; i++) {
        for (let j = 0; j < lk; j++) {
          let s = 0;
          for (let e = 0; e < D; e++) {
            s += q[(b * lq + i) * HD + h * D + e] * k[(b * lk + j) * HD + h * D + e];
          }
          scores[((b * H + h) * lq + i) * lk + j] = s;
        }
      }
    }
  }
  const probs = softmaxCpu(scores, [B, H, lq, lk], o);
  const f = dropFactors(o, probs.length);
  const ctx = new Float64Array(B * lq * HD);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < lq; i++) {
        for (let e = 0; e < D; e++) {
          let s = 0;
          for (let j = 0; j < lk; j++) {
            const pi = ((b * H + h) * lq + i) * lk + j;
            s += probs[pi] * f[pi] * v[(b * lk + j) * HD + h * D + e];
          }
          ctx[(b * lq + i) * HD + h * D + e] = s;
        }
      }
    }
  }
  return { probs, ctx };
}

/**
 * Float64 CPU reference of {@link attentionBackward}: dq, dk, dv from dctx, given the forward's
 * inputs and options.
 *
 * @example
 * ```ts
 * import { attentionBackwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const o = { batch: 1, heads: 1, headDim: 1, lq: 1, lk: 2 };
 * const { dv } = attentionBackwardCpu([1], [0, 0], [2, 4], [1], o); // q, k, v, dctx
 * assert.deepEqual(dv, Float64Array.of(0.5, 0.5)); // each value got half the attention
 * ```
 */
export function attentionBackwardCpu(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dctx: ArrayLike<number>,
  o: AttentionCpuOptions,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { batch: B, heads: H, headDim: D, lq, lk } = o;
  const HD = H * D;
  const scale = o.scale ?? 1;
  const { probs } = attentionCpu(q, k, v, o);
  const f = dropFactors(o, probs.length);
  const dq = new Float64Array(B * lq * HD);
  const dk = new Float64Array(B * lk * HD);
  const dv = new Float64Array(B * lk * HD);
  const dP = new Float64Array(probs.length);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < lq; i++) {
        for (let j = 0; j < lk; j++) {
          const pi = ((b * H + h) * lq + i) * lk + j;
          let s = 0;
          for (let e = 0; e < D; e++) {
            const g = dctx[(b * lq + i) * HD + h * D + e];
            s += g * v[(b * lk + j) * HD + h * D + e];
            dv[(b * lk + j) * HD + h * D + e] += probs[pi] * f[pi] * g;
          }
          dP[pi] = s * f[pi];
        }
      }
    }
  }
  const { dx: dS } = softmaxBackwardCpu(dP, probs, [B, H, lq, lk], { scale });
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < lq; i++) {
        for (let j = 0; j < lk; j++) {
          const g = dS[((b * H + h) * lq + i) * lk + j];
          for (let e = 0; e < D; e++) {
            dq[(b * lq + i) * HD + h * D + e] += g * k[(b * lk + j) * HD + h * D + e];
            dk[(b * lk + j) * HD + h * D + e] += g * q[(b * lq + i) * HD + h * D + e];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
