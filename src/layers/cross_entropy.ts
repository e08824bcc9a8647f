/**
 * Softmax cross-entropy over a vocabulary with an ignore index, computed entirely on the GPU:
 * `loss = mean over valid rows of (logsumexp(logits[r]) − logits[r, label_r])` lands in a
 * 1-element tensor (no readback), with the per-row log-sum-exp and the valid-row count kept for
 * the backward `dlogits = (softmax − onehot) · dloss / nValid`. Plus float64 CPU references.
 *
 * Shape legend: N rows (e.g. B·T target tokens), V vocab.
 *
 * Conventions:
 * - A row is valid when its label lies in [0, V). Label {@link IGNORE_INDEX} (−100) marks a
 *   row to ignore (padding). Any other label outside [0, V) is a bug upstream: the kernels treat
 *   it like −100 (they never read out of bounds), and {@link checkLabels} catches it on the host.
 * - With no valid row, the loss is 0 and every gradient is 0 (PyTorch would return NaN); the
 *   valid count is 0, which tells the two cases apart.
 * - Stable for large logits: maxima are subtracted before `exp`, and the saved per-row
 *   log-sum-exp is kept as the pair (max, log Σ exp(x − max)) so that the backward's
 *   `exp((x − max) − log_sum)` does not lose digits to a rounded `lse` near 1e4.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { fmtShape, ShapeError } from "../gpu/errors.ts";
import { buildOps, type Op, workgroupsFor } from "../gpu/op.ts";
import { numel, type Tensor } from "../gpu/tensor.ts";
import { IGNORE_INDEX } from "../io/seq2seq.ts";

/** Options of {@link crossEntropyForward}. */
export interface CrossEntropyForwardOptions {
  /** Logits: (..., V) f32; the leading dims are the N rows. */
  logits: Tensor;
  /** Labels: (...) i32, the leading dims of `logits`; −100 ignores a row. */
  labels: Tensor;
  /** The mean loss: (1) f32. */
  loss: Tensor;
  /**
   * Saved for the backward: (N, 2) f32, per row (max, log Σ exp(x − max)).
   * @default {allocated here}
   */
  lse?: Tensor;
  /** Saved for the backward: (1) u32, the number of valid rows. @default {allocated here} */
  nValid?: Tensor;
  /** Name in error messages. @default {"cross_entropy"} */
  label?: string;
}

/** What {@link crossEntropyForward} returns: the op, plus the tensors the backward needs. */
export type CrossEntropyForwardOp = Op & {
  /** (N, 2) f32: per row (max, log Σ exp(x − max)); lse = their sum. */
  readonly lse: Tensor;
  /** (1) u32: the number of valid rows. */
  readonly nValid: Tensor;
  /** (N) f32 scratch: each row's loss (0 on ignored rows). */
  readonly rowLoss: Tensor;
};

/** Options of {@link crossEntropyBackward}. */
export interface CrossEntropyBackwardOptions {
  /** Gradient of the logits: (..., V) f32, the shape of `logits`. */
  dlogits: Tensor;
  /** Logits of the forward pass: (..., V) f32. */
  logits: Tensor;
  /** Labels of the forward pass: (...) i32. */
  labels: Tensor;
  /** (N, 2) f32 saved by the forward (`op.lse`). */
  lse: Tensor;
  /** (1) u32 saved by the forward (`op.nValid`). */
  nValid: Tensor;
  /**
   * Upstream gradient of the loss: a constant, or a (1) f32 tensor read on the GPU.
   * @default {1}
   */
  dloss?: number | Tensor;
  /** Add into `dlogits` instead of overwriting it. @default {false} */
  accumulate?: boolean;
  /** Name in error messages. @default {"cross_entropy_backward"} */
  label?: string;
}

/**
 * Throws a `RangeError` naming the first label that is neither in `[0, vocab)` nor
 * {@link IGNORE_INDEX}, and its position. The kernels ignore such rows silently; call this on
 * the host labels of each batch to catch them.
 *
 * @example
 * ```ts
 * import { checkLabels } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * checkLabels(Int32Array.of(3, -100, 0), 10); // fine: -100 marks padding
 * assert.throws(
 *   () => checkLabels(Int32Array.of(3, -1), 10),
 *   /labels\[1\] = -1 is neither in \[0, 10\) nor the ignore index -100/,
 * );
 * ```
 */
export function checkLabels(labels: ArrayLike<number>, vocab: number, label = "labels"): void {
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (l === IGNORE_INDEX) continue;
    if (!(Number.isInteger(l) && l >= 0 && l < vocab)) {
      throw new RangeError(
        `${label}[${i}] = ${l} is neither in [0, ${vocab}) nor the ignore index ${IGNORE_INDEX}`,
      );
    }
  }
}

function geometry(
  label: string,
  logits: Tensor,
  labels: Tensor,
  others: [string, Tensor | undefined, readonly number[]][],
): { n: number; v: number } {
  const desc = () =>
    [
      `logits ${fmtShape(logits.shape)}`,
      `labels ${fmtShape(labels.shape)}`,
      ...others.filter(([, t]) => t).map(([name, t]) => `${name} ${fmtShape(t!.shape)}`),
    ].join(", ");
  if (logits.shape.length < 1) {
    throw new ShapeError(`${label}: logits need at least 1 dim (V): ${desc()}`);
  }
  const v = logits.shape[logits.shape.length - 1];
  const rows = logits.shape.slice(0, -1);
  if (fmtShape(labels.shape) !== fmtShape(rows)) {
    throw new ShapeError(
      `${label}: labels must have the leading dims of logits, ${fmtShape(rows)}: ${desc()}`,
    );
  }
  const n = labels.size;
  if (v < 1 && n > 0) throw new ShapeError(`${label}: V must be at least 1: ${desc()}`);
  for (const [name, t, want] of others) {
    if (t && fmtShape(t.shape) !== fmtShape(want)) {
      throw new ShapeError(`${label}: ${name} must be ${fmtShape(want)}: ${desc()}`);
    }
  }
  return { n, v };
}

function checkDtype(label: string, t: Tensor | undefined, dtype: string): void {
  if (t && t.dtype !== dtype) throw new ShapeError(`${label}: ${t.describe()} must be ${dtype}`);
}

/**
 * Mean softmax cross-entropy of `logits` against `labels` into `loss` (1), without readback.
 * Two dispatches: one workgroup per row computes the log-sum-exp and the row's loss, then one
 * workgroup averages the valid rows in a fixed order (deterministic). Scratch tensors (`lse`,
 * `nValid` unless given, and the per-row losses) are allocated once, here, and returned on the
 * op for the backward.
 *
 * @example
 * ```ts
 * import { crossEntropyForward, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * // two target tokens over a vocabulary of 3; the second one is padding (-100)
 * const logits = gpu.upload("logits", Float32Array.of(0, 0, 0, 5, 1, 2), [2, 3]);
 * const labels = gpu.upload("labels", Int32Array.of(1, -100));
 * const loss = gpu.tensor("loss", [1]);
 * const ce = crossEntropyForward(gpu, { logits, labels, loss });
 * await gpu.run(ce); // the loss stays on the GPU until read
 * assert.ok(Math.abs((await gpu.read(loss))[0] - Math.log(3)) < 1e-6);
 * assert.deepEqual(await gpu.read(ce.nValid), Uint32Array.of(1));
 * gpu.destroy();
 * ```
 */
export function crossEntropyForward(
  gpu: Gpu,
  o: CrossEntropyForwardOptions,
): CrossEntropyForwardOp {
  const label = o.label ?? "cross_entropy";
  const rowsShape = o.logits.shape.slice(0, -1);
  const { n, v } = geometry(label, o.logits, o.labels, [
    ["loss", o.loss, [1]],
    ["lse", o.lse, [numel(rowsShape), 2]],
    ["nValid", o.nValid, [1]],
  ]);
  checkDtype(label, o.logits, "f32");
  checkDtype(label, o.labels, "i32");
  checkDtype(label, o.loss, "f32");
  checkDtype(label, o.lse, "f32");
  checkDtype(label, o.nValid, "u32");
  const lse = o.lse ?? gpu.tensor(`${label}.lse`, [n, 2]);
  const nValid = o.nValid ?? gpu.tensor(`${label}.nValid`, [1], "u32");
  const rowLoss = gpu.tensor(`${label}.rowLoss`, [n]);
  const desc = `${label}(logits=${o.logits.describe()}, labels=${o.labels.describe()})`;
  const specs = n === 0 ? [] : [{
    kernel: "cross_entropy_forward" as const,
    label: `${desc}.rows`,
    bindings: { logits: o.logits, labels: o.labels, lse, row_loss: rowLoss },
    params: { n, v },
    workgroups: n,
  }];
  const op = buildOps(gpu, desc, [...specs, {
    kernel: "cross_entropy_loss",
    label: `${desc}.mean`,
    bindings: { labels: o.labels, row_loss: rowLoss, loss: o.loss, n_valid: nValid },
    params: { n, v },
    workgroups: 1,
  }], [rowLoss, ...(o.lse ? [] : [lse]), ...(o.nValid ? [] : [nValid])]);
  return Object.assign(op, { lse, nValid, rowLoss });
}

/**
 * `dlogits (+)= (softmax(logits) − onehot(label)) · dloss / nValid` on valid rows, 0 on ignored
 * rows (and everywhere when `nValid` is 0). One thread per logit.
 *
 * @example
 * ```ts
 * import {
 *   crossEntropyBackward,
 *   crossEntropyBackwardCpu,
 *   crossEntropyForward,
 *   requestGpu,
 * } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const values = [0, 0, 0, 5, 1, 2];
 * const logits = gpu.upload("logits", Float32Array.from(values), [2, 3]);
 * const labels = gpu.upload("labels", Int32Array.of(1, -100));
 * const dlogits = gpu.tensor("dlogits", [2, 3]);
 * const ce = crossEntropyForward(gpu, { logits, labels, loss: gpu.tensor("loss", [1]) });
 * const { lse, nValid } = ce; // saved by the forward for the backward
 * await gpu.run([ce, crossEntropyBackward(gpu, { dlogits, logits, labels, lse, nValid })]);
 * const want = crossEntropyBackwardCpu(values, 3, [1, -100]);
 * (await gpu.read(dlogits)).forEach((d, i) => assert.ok(Math.abs(d - want[i]) < 1e-6));
 * gpu.destroy();
 * ```
 */
export function crossEntropyBackward(gpu: Gpu, o: CrossEntropyBackwardOptions): Op {
  const label = o.label ?? "cross_entropy_backward";
  const dlossT = typeof o.dloss === "object" ? o.dloss : undefined;
  const rows = numel(o.logits.shape.slice(0, -1));
  const { n, v } = geometry(label, o.logits, o.labels, [
    ["dlogits", o.dlogits, o.logits.shape],
    ["lse", o.lse, [rows, 2]],
    ["nValid", o.nValid, [1]],
    ["dloss", dlossT, [1]],
  ]);
  for (const t of [o.dlogits, o.logits, o.lse, dlossT]) checkDtype(label, t, "f32");
  checkDtype(label, o.labels, "i32");
  checkDtype(label, o.nValid, "u32");
  const scale = typeof o.dloss === "number" ? o.dloss : 1;
  if (!Number.isFinite(scale)) {
    throw new RangeError(`${label}: dloss must be a finite number, got ${scale}`);
  }
  const desc = `${label}(dlogits=${o.dlogits.describe()}, logits=${o.logits.describe()}, ` +
    `labels=${o.labels.describe()})`;
  if (n * v === 0) return buildOps(gpu, desc, []);
  return buildOps(gpu, desc, [{
    kernel: "cross_entropy_backward",
    label: desc,
    bindings: {
      logits: o.logits,
      labels: o.labels,
      lse: o.lse,
      n_valid: o.nValid,
      dloss: dlossT ?? gpu.placeholder, // unread without HAS_DLOSS
      dlogits: o.dlogits,
    },
    params: { n, v, scale },
    constants: { HAS_DLOSS: !!dlossT, ACCUMULATE: !!o.accumulate },
    workgroups: workgroupsFor(n * v),
  }]);
}

/** What {@link crossEntropyForwardCpu} returns. */
export interface CrossEntropyCpuResult {
  /** Mean loss over valid rows (0 when there is none). */
  loss: number;
  /** Per-row log-sum-exp (N). */
  lse: Float64Array;
  /** Number of valid rows. */
  nValid: number;
}

/**
 * Float64 CPU reference of {@link crossEntropyForward}: `logits` is (N, V) row-major.
 *
 * @example
 * ```ts
 * import { crossEntropyForwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const r = crossEntropyForwardCpu([0, 0, 5, 5], 2, [0, -100]); // (N 2, V 2), row 1 ignored
 * assert.equal(r.loss, Math.log(2));
 * assert.equal(r.nValid, 1);
 * ```
 */
export function crossEntropyForwardCpu(
  logits: ArrayLike<number>,
  v: number,
  labels: ArrayLike<number>,
): CrossEntropyCpuResult {
  const n = labels.length;
  const lse = new Float64Array(n);
  let sum = 0;
  let count = 0;
  for (let r = 0; r < n; r++) {
    let m = -Infinity;
    for (let k = 0; k < v; k++) m = Math.max(m, logits[r * v + k]);
    let s = 0;
    for (let k = 0; k < v; k++) s += Math.exp(logits[r * v + k] - m);
    lse[r] = m + Math.log(s);
    const l = labels[r];
    if (l >= 0 && l < v) {
      sum += (m - logits[r * v + l]) + Math.log(s);
      count++;
    }
  }
  return { loss: count > 0 ? sum / count : 0, lse, nValid: count };
}

/**
 * Float64 CPU reference of {@link crossEntropyBackward}: the gradient of `dloss · loss` with
 * respect to `logits` (N, V).
 *
 * @example
 * ```ts
 * import { crossEntropyBackwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // softmax([0, 0]) − onehot(1)
 * assert.deepEqual(crossEntropyBackwardCpu([0, 0], 2, [1]), Float64Array.of(0.5, -0.5));
 * ```
 */
export function crossEntropyBackwardCpu(
  logits: ArrayLike<number>,
  v: number,
  labels: ArrayLike<number>,
  dloss = 1,
): Float64Array {
  const n = labels.length;
  const { lse, nValid } = crossEntropyForwardCpu(logits, v, labels);
  const d = new Float64Array(n * v);
  if (nValid === 0) return d;
  for (let r = 0; r < n; r++) {
    const l = labels[r];
    if (!(l >= 0 && l < v)) continue;
    for (let k = 0; k < v; k++) {
      const p = Math.exp(logits[r * v + k] - lse[r]);
      d[r * v + k] = (p - (k === l ? 1 : 0)) * dloss / nValid;
    }
  }
  return d;
}
