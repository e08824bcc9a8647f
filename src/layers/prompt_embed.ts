/**
 * The encoder input of a prompt method and its gradients, plus float64 CPU references:
 *
 * ```
 * out[b, :M]  = prompt                              (B, M, C)  the soft prompt, broadcast over B
 * out[b, M:]  = tokens[b] + offset                  (B, S, C)  the source tokens' rows
 * offset      = 0                                   prompt tuning
 *             | pos[s]                              DePT: one row per source position (S, C)
 *             | relu(hidden[b, s]) · up + bias      ADePT: token-wise, hidden (B, S, R)
 * ```
 *
 * Backward: the prompt's and a per-position offset's gradients are sums over the batch of rows
 * of the encoder input's gradient ({@link sumBatch}); the low-rank offset's up-projection and
 * bias gradients are {@link lowRankUpBackward}; everything else reuses matmul, ReLU and dropout.
 *
 * Shape legend: B batch, M prompt length, S source length, C d_model, R rank.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { fmtShape, ShapeError } from "../gpu/errors.ts";
import { buildOp, buildOps, type Op, workgroupsFor } from "../gpu/op.ts";
import { checkF32, type Tensor } from "../gpu/tensor.ts";

/** A per-position offset (DePT): (S, C), broadcast over the batch. */
export interface PositionOffset {
  kind: "position";
  /** (S, C). */
  pos: Tensor;
}

/** A token-wise low-rank offset (ADePT): `relu(hidden) · up + bias`. */
export interface LowRankOffset {
  kind: "lowrank";
  /** (B, S, R): the pre-activation (after dropout in training). */
  hidden: Tensor;
  /** (R, C): the up-projection. */
  up: Tensor;
  /** (C). */
  bias: Tensor;
}

/** Options of {@link promptEmbed}. */
export interface PromptEmbedOptions {
  /** The soft prompt (M, C); M may be 0 (then give any (0, C) tensor). */
  prompt: Tensor;
  /** The source tokens' embedding rows (B, S, C). */
  tokens: Tensor;
  /** The encoder input (B, M + S, C), written. */
  out: Tensor;
  /** The offset added to the token rows; none by default. */
  offset?: PositionOffset | LowRankOffset;
  /** Name in error messages. @default {"prompt_embed"} */
  label?: string;
}

const MODE = { none: 0, position: 1, lowrank: 2 } as const;

function same(label: string, role: string, t: Tensor, shape: readonly number[]): void {
  if (fmtShape(t.shape) !== fmtShape(shape)) {
    throw new ShapeError(`${label}: ${role} = ${t.describe()} must be ${fmtShape(shape)}`);
  }
}

/**
 * `out = [prompt; tokens + offset]` per batch row, in one dispatch.
 *
 * @example A soft prompt and DePT's per-position offset
 * ```ts
 * import { promptEmbed, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const prompt = gpu.upload("prompt", Float32Array.of(9, 8), [1, 2]); // (M, C)
 * const tokens = gpu.upload("tokens", Float32Array.of(1, 2, 3, 4), [1, 2, 2]); // (B, S, C)
 * const pos = gpu.upload("pos", Float32Array.of(10, 20, 30, 40), [2, 2]); // (S, C)
 * const inputsEmbeds = gpu.tensor("inputs_embeds", [1, 3, 2]); // (B, M + S, C)
 * await gpu.run(promptEmbed(gpu, {
 *   prompt,
 *   tokens,
 *   out: inputsEmbeds,
 *   offset: { kind: "position", pos },
 * }));
 * assert.deepEqual(await gpu.read(inputsEmbeds), Float32Array.of(9, 8, 11, 22, 33, 44));
 * gpu.destroy();
 * ```
 */
export function promptEmbed(gpu: Gpu, o: PromptEmbedOptions): Op {
  const label = o.label ?? "prompt_embed";
  const off = o.offset;
  checkF32(label, {
    prompt: o.prompt,
    tokens: o.tokens,
    out: o.out,
    ...(off?.kind === "position" ? { pos: off.pos } : {}),
    ...(off?.kind === "lowrank" ? { hidden: off.hidden, up: off.up, bias: off.bias } : {}),
  });
  if (o.tokens.shape.length !== 3) {
    throw new ShapeError(`${label}: tokens = ${o.tokens.describe()} must be (B, S, C)`);
  }
  const [B, S, C] = o.tokens.shape;
  if (o.prompt.shape.length !== 2 || o.prompt.shape[1] !== C) {
    throw new ShapeError(`${label}: prompt = ${o.prompt.describe()} must be (M, ${C})`);
  }
  const M = o.prompt.shape[0];
  same(label, "out", o.out, [B, M + S, C]);
  let r = 0;
  if (off?.kind === "position") same(label, "pos", off.pos, [S, C]);
  if (off?.kind === "lowrank") {
    if (off.hidden.shape.length !== 3 || off.hidden.shape[0] !== B || off.hidden.shape[1] !== S) {
      throw new ShapeError(`${label}: hidden = ${off.hidden.describe()} must be (${B}, ${S}, R)`);
    }
    r = off.hidden.shape[2];
    same(label, "up", off.up, [r, C]);
    same(label, "bias", off.bias, [C]);
  }
  const mode = MODE[off?.kind ?? "none"];
  const n = B * (M + S) * C;
  const ph = gpu.placeholder;
  return buildOp(gpu, {
    kernel: "prompt_embed",
    label: `${label}(prompt=${o.prompt.describe()}, tokens=${o.tokens.describe()}${
      off ? `, ${off.kind} offset` : ""
    } -> ${o.out.describe()})`,
    bindings: {
      prompt: M > 0 ? o.prompt : ph,
      tokens: o.tokens,
      pos: off?.kind === "position" ? off.pos : ph,
      hidden: off?.kind === "lowrank" ? off.hidden : ph,
      up: off?.kind === "lowrank" ? off.up : ph,
      bias: off?.kind === "lowrank" ? off.bias : ph,
      out: o.out,
    },
    params: { batch: B, m: M, s: S, c: C, r },
    constants: { MODE: mode },
    workgroups: n === 0 ? 0 : workgroupsFor(n),
  });
}

/** Options of {@link sumBatch}. */
export interface SumBatchOptions {
  /** (B, L, C). */
  x: Tensor;
  /** First row summed. */
  row0: number;
  /** (N, C) with `row0 + N <= L`: `out[i] = Σ_b x[b, row0 + i]`. */
  out: Tensor;
  /** Name in error messages. @default {"sum_batch"} */
  label?: string;
}

/**
 * `out[i, c] = Σ_b x[b, row0 + i, c]`, deterministic (batch order): the gradient of a row
 * broadcast over the batch (a soft prompt: `row0` 0; a per-position offset: `row0` M).
 *
 * @example
 * ```ts
 * import { requestGpu, sumBatch } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * // the gradient of the encoder input (B 2, M + S 3, C 2); the prompt is row 0 (M 1)
 * const dInputs = gpu.tensor("d_inputs", [2, 3, 2]);
 * gpu.write(dInputs, Float32Array.of(1, 2, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0));
 * const dPrompt = gpu.tensor("d_prompt", [1, 2]); // (M, C)
 * await gpu.run(sumBatch(gpu, { x: dInputs, row0: 0, out: dPrompt }));
 * assert.deepEqual(await gpu.read(dPrompt), Float32Array.of(4, 6));
 * gpu.destroy();
 * ```
 */
export function sumBatch(gpu: Gpu, o: SumBatchOptions): Op {
  const label = o.label ?? "sum_batch";
  checkF32(label, { x: o.x, out: o.out });
  if (o.x.shape.length !== 3) {
    throw new ShapeError(`${label}: x = ${o.x.describe()} must be (B, L, C)`);
  }
  const [B, L, C] = o.x.shape;
  if (o.out.shape.length !== 2 || o.out.shape[1] !== C) {
    throw new ShapeError(`${label}: out = ${o.out.describe()} must be (N, ${C})`);
  }
  const N = o.out.shape[0];
  if (!Number.isInteger(o.row0) || o.row0 < 0 || o.row0 + N > L) {
    throw new ShapeError(
      `${label}: rows ${o.row0}..${o.row0 + N} of x = ${o.x.describe()} do not exist`,
    );
  }
  const desc = `${label}(x=${o.x.describe()}, rows ${o.row0}..${
    o.row0 + N
  } -> ${o.out.describe()})`;
  if (N * C === 0) return buildOps(gpu, desc, []);
  return buildOp(gpu, {
    kernel: "sum_batch",
    label: desc,
    bindings: { x: o.x, out: o.out },
    params: { batch: B, len: L, row0: o.row0, n: N, c: C },
    workgroups: workgroupsFor(N * C),
  });
}

/** Options of {@link lowRankUpBackward}. */
export interface LowRankUpBackwardOptions {
  /** The forward's `hidden` (B, S, R) (after dropout in training). */
  hidden: Tensor;
  /** Gradient of the encoder input (B, M + S, C). */
  dout: Tensor;
  /** Gradient of `up` (R, C), written. */
  dup: Tensor;
  /** Gradient of `bias` (C), written. */
  dbias: Tensor;
  /** Name in error messages. @default {"lowrank_up_backward"} */
  label?: string;
}

/**
 * `dup = relu(hidden)ᵀ · dout[:, M:]` and `dbias = Σ_{b, s} dout[b, M + s]`, in one dispatch
 * (deterministic, no atomics).
 *
 * @example
 * ```ts
 * import { lowRankUpBackward, lowRankUpBackwardCpu, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const shape = { batch: 1, promptLength: 1, sourceLength: 2, dModel: 2 };
 * const [h, g] = [[2, -1, 0.5, 3], [7, 7, 1, 2, 3, 4]]; // hidden (B, S, R 2), dout (B, M + S, C)
 * const hidden = gpu.upload("hidden", Float32Array.from(h), [1, 2, 2]);
 * const dout = gpu.upload("d_inputs", Float32Array.from(g), [1, 3, 2]);
 * const [dup, dbias] = [gpu.tensor("d_up", [2, 2]), gpu.tensor("d_bias", [2])];
 * await gpu.run(lowRankUpBackward(gpu, { hidden, dout, dup, dbias }));
 * const want = lowRankUpBackwardCpu(h, g, shape, 2);
 * assert.deepEqual(await gpu.read(dup), Float32Array.from(want.dup));
 * assert.deepEqual(await gpu.read(dbias), Float32Array.of(4, 6)); // the source rows summed
 * gpu.destroy();
 * ```
 */
export function lowRankUpBackward(gpu: Gpu, o: LowRankUpBackwardOptions): Op {
  const label = o.label ?? "lowrank_up_backward";
  checkF32(label, { hidden: o.hidden, dout: o.dout, dup: o.dup, dbias: o.dbias });
  if (o.hidden.shape.length !== 3 || o.dout.shape.length !== 3) {
    throw new ShapeError(
      `${label}: hidden = ${o.hidden.describe()} must be (B, S, R) and dout = ` +
        `${o.dout.describe()} (B, M + S, C)`,
    );
  }
  const [B, S, R] = o.hidden.shape;
  const [B2, L, C] = o.dout.shape;
  if (B2 !== B || L < S) {
    throw new ShapeError(
      `${label}: dout = ${o.dout.describe()} must be (${B}, M + ${S}, C) for hidden = ` +
        o.hidden.describe(),
    );
  }
  same(label, "dup", o.dup, [R, C]);
  same(label, "dbias", o.dbias, [C]);
  const desc = `${label}(hidden=${o.hidden.describe()}, dout=${o.dout.describe()})`;
  if (C === 0) return buildOps(gpu, desc, []);
  return buildOp(gpu, {
    kernel: "lowrank_up_backward",
    label: desc,
    bindings: { hidden: o.hidden, dout: o.dout, dup: o.dup, dbias: o.dbias },
    params: { batch: B, m: L - S, s: S, c: C, r: R },
    workgroups: [Math.ceil(C / 64), R + 1, 1],
  });
}

// ---------------------------------------------------------------------------------------------
// Float64 CPU references

/** Sizes of the CPU references. */
export interface PromptEmbedCpuShape {
  /** B. */
  batch: number;
  /** M. */
  promptLength: number;
  /** S. */
  sourceLength: number;
  /** C. */
  dModel: number;
}

/** The offset of {@link promptEmbedCpu}, with host arrays. */
export type PromptEmbedCpuOffset =
  | { kind: "position"; pos: ArrayLike<number> }
  | {
    kind: "lowrank";
    hidden: ArrayLike<number>;
    up: ArrayLike<number>;
    bias: ArrayLike<number>;
    rank: number;
  };

/**
 * Float64 CPU reference of {@link promptEmbed}: (B, M + S, C).
 *
 * @example
 * ```ts
 * import { promptEmbedCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const shape = { batch: 1, promptLength: 1, sourceLength: 1, dModel: 2 };
 * const out = promptEmbedCpu([9, 8], [1, 2], shape, { kind: "position", pos: [10, 20] });
 * assert.deepEqual(out, Float64Array.of(9, 8, 11, 22));
 * ```
 */
export function promptEmbedCpu(
  prompt: ArrayLike<number>,
  tokens: ArrayLike<number>,
  shape: PromptEmbedCpuShape,
  offset?: PromptEmbedCpuOffset,
): Float64Array {
  const { batch: B, promptLength: M, sourceLength: S, dModel: C } = shape;
  const out = new Float64Array(B * (M + S) * C);
  for (let b = 0; b < B; b++) {
    for (let m = 0; m < M; m++) {
      for (let c = 0; c < C; c++) out[(b * (M + S) + m) * C + c] = prompt[m * C + c];
    }
    for (let s = 0; s < S; s++) {
      const tok = b * S + s;
      for (let c = 0; c < C; c++) {
        let v = tokens[tok * C + c];
        if (offset?.kind === "position") v += offset.pos[s * C + c];
        if (offset?.kind === "lowrank") {
          let acc = offset.bias[c];
          for (let k = 0; k < offset.rank; k++) {
            acc += Math.max(offset.hidden[tok * offset.rank + k], 0) * offset.up[k * C + c];
          }
          v += acc;
        }
        out[(b * (M + S) + M + s) * C + c] = v;
      }
    }
  }
  return out;
}

/**
 * Float64 CPU reference of {@link sumBatch}.
 *
 * @example
 * ```ts
 * import { sumBatchCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // x (2, 2, 1): row 0 of both batch entries summed
 * assert.deepEqual(sumBatchCpu([1, 2, 3, 4], [2, 2, 1], 0, 1), Float64Array.of(4));
 * ```
 */
export function sumBatchCpu(
  x: ArrayLike<number>,
  shape: readonly [number, number, number],
  row0: number,
  rows: number,
): Float64Array {
  const [B, L, C] = shape;
  const out = new Float64Array(rows * C);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < rows * C; i++) out[i] += x[b * L * C + row0 * C + i];
  }
  return out;
}

/**
 * Float64 CPU reference of {@link lowRankUpBackward}: `dup` (R, C) and `dbias` (C).
 *
 * @example
 * ```ts
 * import { lowRankUpBackwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // B 1, M 1, S 1, C 1, R 1: dout = [prompt row, token row]
 * const shape = { batch: 1, promptLength: 1, sourceLength: 1, dModel: 1 };
 * const { dup, dbias } = lowRankUpBackwardCpu([2], [7, 3], shape, 1);
 * assert.deepEqual(dup, Float64Array.of(6)); // relu(2) · 3
 * assert.deepEqual(dbias, Float64Array.of(3));
 * ```
 */
export function lowRankUpBackwardCpu(
  hidden: ArrayLike<number>,
  dout: ArrayLike<number>,
  shape: PromptEmbedCpuShape,
  rank: number,
): { dup: Float64Array; dbias: Float64Array } {
  const { batch: B, promptLength: M, sourceLength: S, dModel: C } = shape;
  const dup = new Float64Array(rank * C);
  const dbias = new Float64Array(C);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const tok = b * S + s;
      for (let c = 0; c < C; c++) {
        const g = dout[(b * (M + S) + M + s) * C + c];
        dbias[c] += g;
        for (let k = 0; k < rank; k++) dup[k * C + c] += Math.max(hidden[tok * rank + k], 0) * g;
      }
    }
  }
  return { dup, dbias };
}
