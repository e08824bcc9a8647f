/**
 * Attention softmax over the last axis of scores laid out (B, H, Sq, Sk), with T5's additive
 * relative position bias, a key padding mask and a causal mask; forward and backward, plus a
 * float64 CPU reference.
 *
 * `y = softmax(scale·x + bias + mask)`. A masked key's logit is set to f32 lowest
 * ({@link MASKED_LOGIT}), which is what Hugging Face's T5 gets by adding `torch.finfo.min`: rows
 * with any unmasked key put exactly 0 on the masked keys, and a fully masked row becomes
 * uniform (1 / Sk), exactly as in Hugging Face.
 *
 * Gradients: {@link softmaxBackward} gives the gradient with respect to the pre-scale scores x,
 * `dx = scale·y ⊙ (dy − Σ dy ⊙ y)`, and optionally the gradient with respect to the bias summed
 * over the batch, `dbias = Σ_b y ⊙ (dy − Σ dy ⊙ y)`. Both follow the formula also on fully masked
 * rows (as PyTorch's autograd does, since it sees the mask as an addition).
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { fmtShape, ShapeError } from "../gpu/errors.ts";
import { buildOp, buildOps, type Op, type OpSpec } from "../gpu/op.ts";
import { checkF32, type Tensor } from "../gpu/tensor.ts";

/**
 * The logit of a masked key: f32 lowest, `-3.4028234663852886e38` (Hugging Face adds
 * `torch.finfo(torch.float32).min`).
 */
export const MASKED_LOGIT = -3.4028234663852886e38;

/** Options of {@link softmax}. */
export interface SoftmaxOptions {
  /** Scores (B, H, Sq, Sk). */
  x: Tensor;
  /** Probabilities (B, H, Sq, Sk). May be `x` itself. */
  out: Tensor;
  /** Factor applied to x before the bias (T5 uses 1: no 1/√d scaling). @default {1} */
  scale?: number;
  /** Additive bias (H, Sq, Sk) broadcast over B: T5's relative position bias. */
  bias?: Tensor;
  /** Key mask (B, Sk): 1 keeps a key, 0 masks it (values below 0.5 mask). */
  mask?: Tensor;
  /** Mask key k for query q when `k > q + causalOffset` (decoder self-attention). @default {false} */
  causal?: boolean;
  /**
   * Key index of query 0: with `causal`, key k is masked for query q when `k > q + causalOffset`
   * (cached decoding passes the number of past keys). @default {0}
   */
  causalOffset?: number;
  /** Name in error messages. @default {"softmax"} */
  label?: string;
}

function dims4(label: string, role: string, t: Tensor): [number, number, number, number] {
  if (t.shape.length !== 4) {
    throw new ShapeError(`${label}: ${role} = ${t.describe()} must be (B, H, Sq, Sk)`);
  }
  return t.shape as unknown as [number, number, number, number];
}

function expectShape(label: string, role: string, t: Tensor, want: readonly number[], ref: string) {
  if (fmtShape(t.shape) !== fmtShape(want)) {
    throw new ShapeError(
      `${label}: ${role} = ${t.describe()} must be ${fmtShape(want)} for ${ref}`,
    );
  }
}

/**
 * `out = softmax(scale·x + bias + mask)` over the last axis.
 *
 * @example Decoder self-attention: position bias and causal mask
 * ```ts
 * import { requestGpu, softmax, softmaxCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const [xs, bs] = [[0.5, 1, 2, -1], [0, 0.1, 0.2, 0.3]];
 * const scores = gpu.upload("scores", Float32Array.from(xs), [1, 1, 2, 2]); // (B, H, Sq, Sk)
 * const posBias = gpu.upload("pos_bias", Float32Array.from(bs), [1, 2, 2]); // (H, Sq, Sk)
 * const probs = gpu.tensor("probs", [1, 1, 2, 2]);
 * await gpu.run(softmax(gpu, { x: scores, out: probs, bias: posBias, causal: true }));
 * const got = await gpu.read(probs);
 * assert.deepEqual([got[0], got[1]], [1, 0]); // query 0 sees key 0 only
 * const want = softmaxCpu(xs, [1, 1, 2, 2], { bias: bs, causal: true });
 * got.forEach((p, i) => assert.ok(Math.abs(p - want[i]) < 1e-6));
 * gpu.destroy();
 * ```
 */
export function softmax(gpu: Gpu, o: SoftmaxOptions): Op {
  const label = o.label ?? "softmax";
  checkF32(label, { x: o.x, out: o.out, bias: o.bias, mask: o.mask });
  const [b, h, sq, sk] = dims4(label, "x", o.x);
  const xs = `x = ${o.x.describe()}`;
  expectShape(label, "out", o.out, o.x.shape, xs);
  if (o.bias) expectShape(label, "bias", o.bias, [h, sq, sk], xs);
  if (o.mask) expectShape(label, "mask", o.mask, [b, sk], xs);
  const scale = o.scale ?? 1;
  const offset = o.causalOffset ?? 0;
  if (!Number.isFinite(scale)) {
    throw new ShapeError(`${label}: scale must be a finite number, got ${scale}`);
  }
  if (!Number.isInteger(offset) || Math.abs(offset) > 2 ** 30) {
    throw new ShapeError(`${label}: causalOffset must be an integer, got ${offset}`);
  }
  const rows = b * h * sq;
  const flags = [o.bias && "bias", o.mask && "mask", o.causal && "causal"].filter(Boolean);
  return buildOp(gpu, {
    kernel: "softmax",
    label: `${label}(${xs}${flags.length ? ` +${flags.join("+")}` : ""} -> ${o.out.describe()})`,
    bindings: {
      x: o.x,
      bias: o.bias ?? gpu.placeholder,
      mask: o.mask ?? gpu.placeholder,
      y: o.out,
    },
    params: { rows, h, sq, sk, scale, causal_offset: offset },
    constants: { HAS_BIAS: !!o.bias, HAS_MASK: !!o.mask, CAUSAL: !!o.causal },
    workgroups: sk === 0 ? 0 : rows,
  });
}

/** Options of {@link softmaxBackward}. */
export interface SoftmaxBackwardOptions {
  /** Gradient of the probabilities (B, H, Sq, Sk). */
  dout: Tensor;
  /** Probabilities of the forward pass (B, H, Sq, Sk). */
  y: Tensor;
  /**
   * Gradient with respect to the pre-scale scores x (B, H, Sq, Sk). Without `accumulate` it may
   * be `dout` itself.
   */
  dx: Tensor;
  /** The forward pass's scale. @default {1} */
  scale?: number;
  /** Gradient with respect to the bias (H, Sq, Sk), summed over B, if wanted. */
  dbias?: Tensor;
  /** Add into `dx` instead of overwriting it. @default {false} */
  accumulate?: boolean;
  /** Add into `dbias` instead of overwriting it (a bias shared by layers). @default {false} */
  accumulateBias?: boolean;
  /** Name in error messages. @default {"softmax_backward"} */
  label?: string;
}

/**
 * Backward of {@link softmax}: `dx (+)= scale·y ⊙ (dout − Σ_k dout ⊙ y)` per row (gradient with
 * respect to the pre-scale scores), and optionally `dbias (+)= Σ_b y ⊙ (dout − Σ_k dout ⊙ y)`,
 * summed over the batch in a fixed order (deterministic). The mask has no gradient.
 *
 * @example
 * ```ts
 * import { requestGpu, softmaxBackward, softmaxBackwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const [ys, gs] = [[0.25, 0.75, 0.5, 0.5], [1, 0, 0.5, 2]];
 * const probs = gpu.upload("probs", Float32Array.from(ys), [1, 1, 2, 2]); // the forward's output
 * const dprobs = gpu.upload("dprobs", Float32Array.from(gs), [1, 1, 2, 2]);
 * // in place: the probabilities' gradient becomes the scores' gradient
 * await gpu.run(softmaxBackward(gpu, { dout: dprobs, y: probs, dx: dprobs }));
 * const { dx } = softmaxBackwardCpu(gs, ys, [1, 1, 2, 2]);
 * (await gpu.read(dprobs)).forEach((g, i) => assert.ok(Math.abs(g - dx[i]) < 1e-6));
 * gpu.destroy();
 * ```
 */
export function softmaxBackward(gpu: Gpu, o: SoftmaxBackwardOptions): Op {
  const label = o.label ?? "softmax_backward";
  checkF32(label, { dout: o.dout, y: o.y, dx: o.dx, dbias: o.dbias });
  const [b, h, sq, sk] = dims4(label, "y", o.y);
  const ys = `y = ${o.y.describe()}`;
  expectShape(label, "dout", o.dout, o.y.shape, ys);
  expectShape(label, "dx", o.dx, o.y.shape, ys);
  if (o.dbias) expectShape(label, "dbias", o.dbias, [h, sq, sk], ys);
  const scale = o.scale ?? 1;
  if (!Number.isFinite(scale)) {
    throw new ShapeError(`${label}: scale must be a finite number, got ${scale}`);
  }
  const rows = b * h * sq;
  const specs: OpSpec[] = [{
    kernel: "softmax_backward",
    label: `${label}.dx(dout=${o.dout.describe()}, ${ys} -> ${o.dx.describe()})`,
    bindings: { dout: o.dout, y: o.y, dx: o.dx },
    params: { rows, sk, scale },
    constants: { ACCUMULATE: !!o.accumulate },
    workgroups: sk === 0 ? 0 : rows,
  }];
  if (o.dbias) {
    specs.push({
      kernel: "softmax_bias_backward",
      label: `${label}.dbias(dout=${o.dout.describe()}, ${ys} -> ${o.dbias.describe()})`,
      bindings: { dout: o.dout, y: o.y, dbias: o.dbias },
      params: { batch: b, hsq: h * sq, sk },
      constants: { ACCUMULATE: !!o.accumulateBias },
      workgroups: sk === 0 ? 0 : h * sq,
    });
  }
  const desc = `${label}(dout=${o.dout.describe()}, ${ys})`;
  return specs.length === 1
    ? buildOp(gpu, { ...specs[0], label: desc })
    : buildOps(gpu, desc, specs);
}

// ---------------------------------------------------------------------------------------------
// Float64 CPU references

/** Options of {@link softmaxCpu}: as {@link SoftmaxOptions}, with host arrays. */
export interface SoftmaxCpuOptions {
  /** @default {1} */
  scale?: number;
  /** (H, Sq, Sk). */
  bias?: ArrayLike<number>;
  /** (B, Sk), 1 keep / 0 masked. */
  mask?: ArrayLike<number>;
  /** @default {false} */
  causal?: boolean;
  /** @default {0} */
  causalOffset?: number;
}

function cpuShape(label: string, n: number, shape: readonly number[]): void {
  if (shape.length !== 4 || shape.reduce((a, d) => a * d, 1) !== n) {
    throw new ShapeError(`${label}: ${n} elements do not fit the shape ${fmtShape(shape)}`);
  }
}

/**
 * Float64 CPU reference of {@link softmax}; masked logits take the value {@link MASKED_LOGIT}.
 *
 * @example
 * ```ts
 * import { softmaxCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // one row of two keys, the second masked
 * assert.deepEqual(softmaxCpu([1, 5], [1, 1, 1, 2], { mask: [1, 0] }), Float64Array.of(1, 0));
 * ```
 */
export function softmaxCpu(
  x: ArrayLike<number>,
  shape: readonly number[],
  opts: SoftmaxCpuOptions = {},
): Float64Array {
  cpuShape("softmaxCpu", x.length, shape);
  const [, h, sq, sk] = shape;
  const scale = opts.scale ?? 1;
  const offset = opts.causalOffset ?? 0;
  const y = new Float64Array(x.length);
  const logits = new Float64Array(sk);
  for (let row = 0; row < x.length / Math.max(sk, 1); row++) {
    const q = row % sq;
    const hh = Math.floor(row / sq) % h;
    const b = Math.floor(row / (sq * h));
    let max = -Infinity;
    for (let k = 0; k < sk; k++) {
      let v = scale * x[row * sk + k] + (opts.bias ? opts.bias[(hh * sq + q) * sk + k] : 0);
      const masked = (opts.mask !== undefined && opts.mask[b * sk + k] < 0.5) ||
        (!!opts.causal && k > q + offset);
      if (masked) v = MASKED_LOGIT;
      logits[k] = v;
      max = Math.max(max, v);
    }
    let sum = 0;
    for (let k = 0; k < sk; k++) sum += logits[k] = Math.exp(logits[k] - max);
    for (let k = 0; k < sk; k++) y[row * sk + k] = logits[k] / sum;
  }
  return y;
}

/**
 * Float64 CPU reference of {@link softmaxBackward}: `dx` (with respect to the pre-scale scores)
 * and `dbias` (H, Sq, Sk), summed over the batch.
 *
 * @example
 * ```ts
 * import { softmaxBackwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const { dx, dbias } = softmaxBackwardCpu([1, 0], [0.5, 0.5], [1, 1, 1, 2]); // dout, y, shape
 * assert.deepEqual(dx, Float64Array.of(0.25, -0.25)); // y ⊙ (dout − Σ dout ⊙ y)
 * assert.deepEqual(dbias, dx); // one batch entry, scale 1
 * ```
 */
export function softmaxBackwardCpu(
  dout: ArrayLike<number>,
  y: ArrayLike<number>,
  shape: readonly number[],
  opts: { scale?: number } = {},
): { dx: Float64Array; dbias: Float64Array } {
  cpuShape("softmaxBackwardCpu", y.length, shape);
  if (dout.length !== y.length) {
    throw new ShapeError(`softmaxBackwardCpu: lengths differ (${dout.length} vs ${y.length})`);
  }
  const [, h, sq, sk] = shape;
  const scale = opts.scale ?? 1;
  const dx = new Float64Array(y.length);
  const dbias = new Float64Array(h * sq * sk);
  const biasSize = h * sq * sk;
  for (let row = 0; row < y.length / Math.max(sk, 1); row++) {
    let dot = 0;
    for (let k = 0; k < sk; k++) dot += dout[row * sk + k] * y[row * sk + k];
    const bo = (row * sk) % biasSize;
    for (let k = 0; k < sk; k++) {
      const i = row * sk + k;
      const g = y[i] * (dout[i] - dot);
      dx[i] = scale * g;
      dbias[bo + k] += g;
    }
  }
  return { dx, dbias };
}
