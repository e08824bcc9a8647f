/**
 * Matrix products: `C = alpha · op(A) · op(B) (+ bias) (+ C)`, batched and strided, with the
 * backward products, plus a float64 CPU reference.
 *
 * Shape legend: M rows of C, N columns, K the contracted dimension; leading dims are batch.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { fmtShape, ShapeError } from "../gpu/errors.ts";
import { buildOp, buildOps, Op, type OpSpec } from "../gpu/op.ts";
import { checkF32, numel, type Tensor } from "../gpu/tensor.ts";
import type { KernelName } from "../gpu/kernel.ts";
import { type DropoutSite, dropoutUniforms } from "./dropout.ts";
import { fill } from "./fill.ts";
import {
  allowedSplits,
  checkMatmulConfig,
  MATMUL_TILES,
  type MatmulConfig,
  matmulConfig,
  matmulHeuristic,
  type MatmulShape,
  matmulShapeKey,
  matmulShapes,
  matmulWorkgroupBytes,
  matmulWorkgroups,
  setMatmulConfig,
} from "./matmul_plan.ts";

export * from "./matmul_plan.ts";

/**
 * What a product applies to each element of its result, after alpha, bias and accumulate:
 * `relu(...)`, then a dropout, so that a feed-forward's `wi -> ReLU -> dropout` is one kernel.
 * The dropout's mask bit of an element is the one `dropoutForward` (and `relu` with the same
 * site) draws for index `i` = the element's position from C's offset (`row · ld + col` plus
 * the batch strides): C's flat index when it is contiguous, so the forward matches the separate
 * kernels bit for bit and their backward (`reluBackward` with the same site) applies. For
 * ReLU, the result itself tells the backward where the input was positive (`out > 0` exactly
 * where the element was kept and positive): `reluBackward` may read it instead of a saved
 * pre-activation.
 */
export interface MatmulEpilogue {
  /** The activation. @default {none} */
  activation?: "relu";
  /** A dropout after the activation. @default {none} */
  dropout?: DropoutSite;
}

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** A: (..., M, K), or (..., K, M) with `transA`. */
  a: Tensor;
  /** B: (..., K, N) or (K, N) shared by every batch; (..., N, K) / (N, K) with `transB`. */
  b: Tensor;
  /** C: (..., M, N). */
  out: Tensor;
  /** Optional bias (N), added to every row. */
  bias?: Tensor;
  /** Use A transposed. @default {false} */
  transA?: boolean;
  /** Use B transposed. @default {false} */
  transB?: boolean;
  /** Scale of the product. @default {1} */
  alpha?: number;
  /** Add into `out` instead of overwriting it. @default {false} */
  accumulate?: boolean;
  /** Name in error messages. @default {"matmul"} */
  label?: string;
  /** The tiling, instead of the measured or heuristic one ({@link matmulConfig}). */
  config?: MatmulConfig;
  /** ReLU and dropout applied to the result ({@link MatmulEpilogue}). @default {none} */
  epilogue?: MatmulEpilogue;
}

/** One operand of {@link matmulStrided}: a tensor plus element offsets and strides. */
export interface StridedOperand {
  /** The tensor holding the operand. */
  tensor: Tensor;
  /** Element offset of entry (0, 0) of batch (0, 0). @default {0} */
  offset?: number;
  /** Row stride (leading dimension) in elements. */
  ld: number;
  /** Element strides between outer and inner batch entries. @default {[0, 0]} */
  batchStrides?: readonly [number, number];
}

/** Options of {@link matmulStrided}: explicit sizes, strides and a two-level batch. */
export interface MatmulStridedOptions {
  /** Rows of C. */
  m: number;
  /** Columns of C. */
  n: number;
  /** Contracted dimension. */
  k: number;
  /** Batch as (outer, inner) counts; entry z = zo * inner + zi. @default {[1, 1]} */
  batch?: readonly [number, number];
  /** A operand. */
  a: StridedOperand;
  /** B operand: f32, or f16 (frozen weights; needs `shader-f16`), widened to f32 as loaded. */
  b: StridedOperand;
  /** C operand. */
  out: StridedOperand;
  /** Optional bias (N). */
  bias?: Tensor;
  /** @default {false} */
  transA?: boolean;
  /** @default {false} */
  transB?: boolean;
  /** @default {1} */
  alpha?: number;
  /** @default {false} */
  accumulate?: boolean;
  /** @default {"matmul"} */
  label?: string;
  /** The tiling, instead of the measured or heuristic one ({@link matmulConfig}). */
  config?: MatmulConfig;
  /** ReLU and dropout applied to the result ({@link MatmulEpilogue}). @default {none} */
  epilogue?: MatmulEpilogue;
}

/** Largest element index (exclusive) an operand touches; checked against the tensor size. */
function extent(
  op: StridedOperand,
  rows: number,
  cols: number,
  batch: readonly [number, number],
): number {
  const [so, si] = op.batchStrides ?? [0, 0];
  if (rows === 0 || cols === 0) return 0;
  return (op.offset ?? 0) + (batch[0] - 1) * so + (batch[1] - 1) * si + (rows - 1) * op.ld + cols;
}

/**
 * The general launcher: sizes, strides, offsets and a two-level batch given explicitly, so that
 * per-head attention products read Q, K, V in place. Batches beyond the workgroup limit are
 * split into several dispatches.
 *
 * @example Per-head attention scores, reading Q and K in place
 * ```ts
 * import { matmulStrided, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const [B, S, H, D] = [1, 2, 2, 1];
 * const q = gpu.upload("q", Float32Array.of(1, 2, 3, 4), [B, S, H * D]); // (B, S, H·D)
 * const scores = gpu.tensor("scores", [B, H, S, S]);
 * // head h of batch entry b starts at b·S·H·D + h·D, rows H·D apart
 * const heads = { tensor: q, ld: H * D, batchStrides: [S * H * D, D] } as const;
 * await gpu.run(matmulStrided(gpu, {
 *   m: S,
 *   n: S,
 *   k: D,
 *   batch: [B, H],
 *   transB: true,
 *   a: heads,
 *   b: heads,
 *   out: { tensor: scores, ld: S, batchStrides: [H * S * S, S * S] },
 * })); // scores[b, h] = Q[b, :, h] · Q[b, :, h]ᵀ
 * assert.deepEqual(await gpu.read(scores), Float32Array.of(1, 3, 3, 9, 4, 8, 8, 16));
 * gpu.destroy();
 * ```
 */
export function matmulStrided(gpu: Gpu, o: MatmulStridedOptions): Op {
  const label = o.label ?? "matmul";
  const { m, n, k } = o;
  const batch = o.batch ?? [1, 1];
  for (
    const [name, v] of [["m", m], ["n", n], ["k", k], ["batch", batch[0]], ["batch", batch[1]]]
  ) {
    if (!Number.isInteger(v) || (v as number) < 0) {
      throw new ShapeError(`${label}: ${name} must be a non-negative integer, got ${v}`);
    }
  }
  checkF32(label, { a: o.a.tensor, out: o.out.tensor, bias: o.bias });
  const bDtype = o.b.tensor.dtype;
  if (bDtype !== "f32" && bDtype !== "f16") {
    throw new ShapeError(`${label}: b = ${o.b.tensor.describe()} must be f32 or f16`);
  }
  if (bDtype === "f16" && !gpu.hasF16) {
    throw new ShapeError(
      `${label}: b = ${o.b.tensor.describe()} is f16, which needs the adapter feature ` +
        `shader-f16 ("${gpu.adapter.description}" does not offer it); keep the weights in f32`,
    );
  }
  const checks: [string, StridedOperand, number, number][] = [
    ["A", o.a, o.transA ? k : m, o.transA ? m : k],
    ["B", o.b, o.transB ? n : k, o.transB ? k : n],
    ["C", o.out, m, n],
  ];
  for (const [name, op, rows, cols] of checks) {
    if (op.ld < cols) {
      throw new ShapeError(
        `${label}: ${name} row stride ${op.ld} is smaller than its ${cols} columns`,
      );
    }
    const need = extent(op, rows, cols, batch);
    if (need > op.tensor.size) {
      throw new ShapeError(
        `${label}: ${name} = ${op.tensor.describe()} is too small: (${rows} x ${cols}) with row ` +
          `stride ${op.ld}, batch ${batch.join("x")} needs ${need} elements`,
      );
    }
  }
  if (o.bias && o.bias.size !== n) {
    throw new ShapeError(`${label}: bias ${o.bias.describe()} must have N = ${n} elements`);
  }
  const ep = o.epilogue ?? {};
  if (ep.activation !== undefined && ep.activation !== "relu") {
    throw new ShapeError(`${label}: epilogue activation must be "relu", got "${ep.activation}"`);
  }
  const dropout = ep.dropout && ep.dropout.p > 0 ? ep.dropout : undefined;
  if (dropout && (dropout.state.dtype !== "u32" || dropout.state.size < 2)) {
    throw new ShapeError(
      `${label}: the dropout state ${dropout.state.describe()} must be (2) u32 (seed, step)`,
    );
  }
  const total = batch[0] * batch[1];
  const desc = `${label}(A=${o.a.tensor.describe()}${
    o.transA ? "ᵀ" : ""
  }, B=${o.b.tensor.describe()}${
    o.transB ? "ᵀ" : ""
  }, C=${o.out.tensor.describe()}, m=${m} n=${n} k=${k} batch=${batch.join("x")})`;
  if (total === 0 || m === 0 || n === 0) return buildOps(gpu, desc, []);
  const shape: MatmulShape = {
    m,
    n,
    k,
    batch: total,
    transA: !!o.transA,
    transB: !!o.transB,
    vec4: vec4Ready(o.a, o.transA ? m : k) && vec4Ready(o.b, o.transB ? k : n),
    bDtype,
  };
  const config = o.config ?? matmulConfig(gpu, shape);
  checkMatmulConfig(gpu, config, label);
  const { wgX, wgY } = MATMUL_TILES[config.tile];
  const [tileM, tileN] = [8 * wgY, 8 * wgX];
  // A split of K: chunks of a multiple of 16, none empty.
  let splits = Math.max(1, Math.min(config.splitK ?? 1, Math.ceil(k / 16)));
  const kChunk = Math.ceil(k / splits / 16) * 16;
  splits = Math.ceil(k / kChunk) || 1;
  const split = splits > 1;
  const direct = !!config.direct && shape.vec4 && bDtype === "f32";
  const kernel: KernelName = direct
    ? "matmul_direct"
    : shape.vec4
    ? (bDtype === "f16" ? "matmul_f16" : "matmul")
    : (bDtype === "f16" ? "matmul_scalar_f16" : "matmul_scalar");
  const params = {
    m,
    n,
    k,
    lda: o.a.ld,
    ldb: o.b.ld,
    ldc: o.out.ld,
    batch_inner: Math.max(1, batch[1]),
    z_offset: 0,
    a_offset: o.a.offset ?? 0,
    a_outer: o.a.batchStrides?.[0] ?? 0,
    a_inner: o.a.batchStrides?.[1] ?? 0,
    b_offset: o.b.offset ?? 0,
    b_outer: o.b.batchStrides?.[0] ?? 0,
    b_inner: o.b.batchStrides?.[1] ?? 0,
    c_offset: o.out.offset ?? 0,
    c_outer: o.out.batchStrides?.[0] ?? 0,
    c_inner: o.out.batchStrides?.[1] ?? 0,
    alpha: o.alpha ?? 1,
    splits,
    k_chunk: kChunk,
    entries: total,
    ...dropoutUniforms(dropout),
  };
  const epilogue = { ACT: ep.activation === "relu" ? 1 : 0, DROPOUT: !!dropout };
  const state = dropout?.state ?? gpu.placeholder;
  const scratch = split ? acquireScratch(gpu, splits * total * m * n) : undefined;
  const zTotal = total * splits;
  const maxZ = gpu.limits.maxComputeWorkgroupsPerDimension;
  const specs: OpSpec[] = [];
  for (let z0 = 0; z0 < zTotal; z0 += maxZ) {
    specs.push({
      kernel,
      label: `${label}[z ${z0}..]`,
      constants: {
        TRANS_A: !!o.transA,
        TRANS_B: !!o.transB,
        HAS_BIAS: !!o.bias && !split,
        ACCUMULATE: !!o.accumulate && !split,
        CHECK: m % tileM !== 0 || n % tileN !== 0 || k % 16 !== 0,
        WG_X: wgX,
        WG_Y: wgY,
        SPLIT: split,
        ...(direct ? {} : { PAD: config.pad ? 1 : 0, NBUF: config.doubleBuffer ? 2 : 1 }),
        ...(split ? {} : epilogue),
      },
      bindings: {
        a: o.a.tensor,
        b: o.b.tensor,
        bias: split ? gpu.placeholder : o.bias ?? gpu.placeholder,
        c: scratch ? scratch.tensor : o.out.tensor,
        state: split ? gpu.placeholder : state,
      },
      params: { ...params, z_offset: z0 },
      workgroups: [Math.ceil(n / tileN), Math.ceil(m / tileM), Math.min(maxZ, zTotal - z0)],
    });
  }
  if (scratch) {
    specs.push({
      kernel: "matmul_reduce",
      label: `${label}.reduce_k`,
      constants: { HAS_BIAS: !!o.bias, ACCUMULATE: !!o.accumulate, ...epilogue },
      bindings: {
        part: scratch.tensor,
        bias: o.bias ?? gpu.placeholder,
        c: o.out.tensor,
        state,
      },
      params,
      workgroups: Math.ceil((total * m * n) / 256),
    });
  }
  let op: Op;
  try {
    op = buildOps(gpu, desc, specs);
  } catch (e) {
    scratch?.release();
    throw e;
  }
  return scratch ? new ScratchOp(op, scratch.release) : op;
}

/** Whether an operand allows vec4 loads: offset, strides and contiguous size multiples of 4. */
function vec4Ready(op: StridedOperand, contiguous: number): boolean {
  const [so, si] = op.batchStrides ?? [0, 0];
  return [op.offset ?? 0, op.ld, so, si, contiguous].every((v) => v % 4 === 0);
}

/**
 * Split-K partial sums of one device: one scratch buffer shared by every split product built
 * while it is large enough (the dispatches of one product run back to back, so products never
 * interleave their use of it), freed when the last op using it is destroyed.
 */
const SCRATCH = new WeakMap<Gpu, { tensor: Tensor; users: number }[]>();

function acquireScratch(gpu: Gpu, elements: number): { tensor: Tensor; release: () => void } {
  const pool = SCRATCH.get(gpu) ?? [];
  SCRATCH.set(gpu, pool);
  let entry = pool.find((s) => s.tensor.size >= elements);
  if (!entry) {
    // Powers of two (at least 256 KiB), so that products of similar sizes share one buffer.
    const size = Math.max(2 ** 16, 2 ** Math.ceil(Math.log2(elements)));
    entry = { tensor: gpu.tensor("matmul.split_k_scratch", [size]), users: 0 };
    pool.push(entry);
    pool.sort((x, y) => x.tensor.size - y.tensor.size);
  }
  const e = entry;
  e.users++;
  let released = false;
  return {
    tensor: e.tensor,
    release: () => {
      if (released) return;
      released = true;
      if (--e.users > 0) return;
      pool.splice(pool.indexOf(e), 1);
      gpu.freeBuffer(e.tensor.buffer);
    },
  };
}

/** An op that shares the split-K scratch: destroying it releases its hold on the scratch. */
class ScratchOp extends Op {
  readonly #inner: Op;
  readonly #release: () => void;

  constructor(inner: Op, release: () => void) {
    super(inner.label, inner.dispatches);
    this.#inner = inner;
    this.#release = release;
  }

  override setParams(params: Record<string, number>): void {
    this.#inner.setParams(params);
  }

  override destroy(): void {
    this.#inner.destroy();
    this.#release();
  }
}

/**
 * The benchmark's baseline: `out = a · b` for contiguous 2-D operands with a plain 16×16
 * shared-memory kernel (one output per thread). Its speed calibrates a machine; use
 * {@link matmul} for real work.
 *
 * @example
 * ```ts
 * import { matmulCpu, matmulNaive, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const [x, y] = [[1, 2, 3, 4, 5, 6], [1, 0, 0, 1, 1, 1]];
 * const a = gpu.upload("a", Float32Array.from(x), [2, 3]); // (M, K)
 * const b = gpu.upload("b", Float32Array.from(y), [3, 2]); // (K, N)
 * const out = gpu.tensor("out", [2, 2]);
 * await gpu.run(matmulNaive(gpu, { a, b, out }));
 * const want = matmulCpu(Float64Array.from(x), [2, 3], Float64Array.from(y), [3, 2]).out;
 * assert.deepEqual(await gpu.read(out), Float32Array.from(want));
 * gpu.destroy();
 * ```
 */
export function matmulNaive(gpu: Gpu, o: { a: Tensor; b: Tensor; out: Tensor }): Op {
  const label = "matmul_naive";
  const g = matmulGeometry(label, o.a.shape, o.b.shape, o.out.shape);
  if (o.a.shape.length !== 2 || o.b.shape.length !== 2) {
    throw new ShapeError(
      `${label}: A ${fmtShape(o.a.shape)} and B ${fmtShape(o.b.shape)} must be 2-D`,
    );
  }
  checkF32(label, { a: o.a, b: o.b, out: o.out });
  return buildOp(gpu, {
    kernel: "matmul_naive",
    label: `${label}(A=${o.a.describe()}, B=${o.b.describe()})`,
    bindings: { a: o.a, b: o.b, c: o.out },
    params: { m: g.m, n: g.n, k: g.k },
    workgroups: [Math.ceil(g.n / 16), Math.ceil(g.m / 16), 1],
  });
}

/** Sizes of a {@link matmul} after broadcasting rules, shared with the CPU reference. */
export interface MatmulGeometry {
  m: number;
  n: number;
  k: number;
  /** Number of batch entries. */
  batch: number;
  /** Whether B is shared by every batch entry. */
  sharedB: boolean;
}

/**
 * Resolves the sizes of `op(A) · op(B) -> C` from shapes; throws a {@link ShapeError} naming the
 * op and the shapes when they do not fit.
 *
 * Rules: A has rank >= 2, its leading dims are the batch. B has the same batch dims, or rank 2
 * (shared). C is (...batch, M, N). Without `transA` and with a shared B, the batch is folded
 * into M (one large product).
 *
 * @example
 * ```ts
 * import { matmulGeometry, ShapeError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // (B, S, C) · (C, F): B shared by the batch, so the batch folds into M
 * const g = matmulGeometry("ffn", [8, 16, 64], [64, 256], [8, 16, 256]);
 * assert.deepEqual(g, { m: 16, n: 256, k: 64, batch: 8, sharedB: true });
 * assert.throws(() => matmulGeometry("ffn", [8, 16, 64], [32, 256], [8, 16, 256]), ShapeError);
 * ```
 */
export function matmulGeometry(
  label: string,
  aShape: readonly number[],
  bShape: readonly number[],
  outShape: readonly number[],
  transA = false,
  transB = false,
): MatmulGeometry {
  const bad = (why: string) =>
    new ShapeError(
      `${label}: ${why}: A ${fmtShape(aShape)}${transA ? "ᵀ" : ""}, B ${fmtShape(bShape)}${
        transB ? "ᵀ" : ""
      }, C ${fmtShape(outShape)}`,
    );
  if (aShape.length < 2 || bShape.length < 2 || outShape.length < 2) {
    throw bad("operands need at least 2 dims");
  }
  const batchDims = aShape.slice(0, -2);
  const [ar, ac] = aShape.slice(-2);
  const [br, bc] = bShape.slice(-2);
  const m = transA ? ac : ar;
  const k = transA ? ar : ac;
  const kb = transB ? bc : br;
  const n = transB ? br : bc;
  if (k !== kb) throw bad(`inner dimensions differ (${k} vs ${kb})`);
  const sharedB = bShape.length === 2;
  if (!sharedB && fmtShape(bShape.slice(0, -2)) !== fmtShape(batchDims)) {
    throw bad("batch dims of A and B differ");
  }
  if (fmtShape(outShape) !== fmtShape([...batchDims, m, n])) {
    throw bad(`C must be ${fmtShape([...batchDims, m, n])}`);
  }
  return { m, n, k, batch: numel(batchDims), sharedB };
}

/**
 * `out = alpha · op(a) · op(b) (+ bias) (+ out)`.
 *
 * @example
 * ```ts
 * import { matmul, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const x = gpu.upload("x", Float32Array.of(1, 2, 3, 4, 5, 6), [1, 2, 3]); // (B, S, C)
 * const w = gpu.upload("w", Float32Array.of(1, 0, 0, 1, 1, 1), [3, 2]); // (C, F)
 * const bias = gpu.upload("bias", Float32Array.of(0.5, -0.5)); // (F)
 * const y = gpu.tensor("y", [1, 2, 2]); // (B, S, F)
 * await gpu.run(matmul(gpu, { a: x, b: w, bias, out: y })); // y = x · w + bias
 * assert.deepEqual(await gpu.read(y), Float32Array.of(4.5, 4.5, 10.5, 10.5));
 * gpu.destroy();
 * ```
 *
 * @example A feed-forward's `wi -> ReLU -> dropout` as one kernel (the epilogue)
 * ```ts
 * import { dropoutMaskCpu, dropoutState, matmul, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const x = gpu.upload("x", Float32Array.of(1, 2, -3, 4), [1, 2, 2]); // (B, S, C)
 * const wi = gpu.upload("wi", Float32Array.of(1, 0, 0, 1, 1, 1), [3, 2]); // (F, C)
 * const f = gpu.tensor("f", [1, 2, 3]); // (B, S, F)
 * const dropout = { state: dropoutState(gpu, { seed: 7, step: 1 }), p: 0.5, stream: 2 };
 * await gpu.run(matmul(gpu, {
 *   a: x,
 *   b: wi,
 *   out: f,
 *   transB: true,
 *   epilogue: { activation: "relu", dropout },
 * }));
 * const mask = dropoutMaskCpu(6, { seed: 7, step: 1, stream: 2, p: 0.5 });
 * const relu = [1, 2, 3, 0, 4, 1]; // max(x · wiᵀ, 0)
 * assert.deepEqual(await gpu.read(f), Float32Array.from(relu, (v, i) => mask[i] ? 2 * v : 0));
 * gpu.destroy();
 * ```
 */
export function matmul(gpu: Gpu, o: MatmulOptions): Op {
  const label = o.label ?? "matmul";
  const g = matmulGeometry(label, o.a.shape, o.b.shape, o.out.shape, o.transA, o.transB);
  const [ar, ac] = o.a.shape.slice(-2);
  const [br, bc] = o.b.shape.slice(-2);
  const fold = g.sharedB && !o.transA;
  return matmulStrided(gpu, {
    m: fold ? g.m * g.batch : g.m,
    n: g.n,
    k: g.k,
    batch: fold ? [1, 1] : [1, g.batch],
    a: { tensor: o.a, ld: ac, batchStrides: [0, ar * ac] },
    b: { tensor: o.b, ld: bc, batchStrides: [0, g.sharedB ? 0 : br * bc] },
    out: { tensor: o.out, ld: g.n, batchStrides: [0, g.m * g.n] },
    bias: o.bias,
    transA: o.transA,
    transB: o.transB,
    alpha: o.alpha,
    accumulate: o.accumulate,
    label,
    config: o.config,
    epilogue: o.epilogue,
  });
}

/** Options of {@link tuneMatmuls}. */
export interface TuneMatmulOptions {
  /**
   * The shapes to measure.
   * @default {the shapes `matmul` was asked for on this device and not yet measured}
   */
  shapes?: readonly MatmulShape[];
  /** Timed rounds; each candidate's best round counts. @default {3} */
  trials?: number;
  /**
   * Also try padded workgroup memory and double-buffered k-tiles on the best tiling; they are
   * kept only when at least 2% faster. @default {true}
   */
  kernelOptions?: boolean;
  /** Where each shape's result is reported, one line each. @default {no report} */
  log?: (line: string) => void;
}

/** What {@link tuneMatmuls} measured for one shape. */
export interface MatmulTuneResult {
  /** The shape. */
  shape: MatmulShape;
  /** The configuration chosen (now in the device's table). */
  config: MatmulConfig;
  /** Its time per product, in milliseconds. */
  ms: number;
  /** The heuristic's configuration and its time. */
  heuristic: { config: MatmulConfig; ms: number };
  /** Every candidate measured, with its time. */
  candidates: { config: MatmulConfig; ms: number }[];
}

/**
 * A readable name of a configuration: `16x128 split 4 pad db`.
 *
 * @example
 * ```ts
 * import { matmulConfigName } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(matmulConfigName({ tile: "16x128", splitK: 4, pad: true }), "16x128 split 4 pad");
 * ```
 */
export function matmulConfigName(c: MatmulConfig): string {
  return `${c.tile}${(c.splitK ?? 1) > 1 ? ` split ${c.splitK}` : ""}${c.pad ? " pad" : ""}${
    c.doubleBuffer ? " db" : ""
  }${c.direct ? " direct" : ""}`;
}

/**
 * Measures the tilings of {@link MATMUL_TILES} and the splits of K on this device for each shape
 * (GPU time from timestamp queries where the adapter has them, else wall-clock), and keeps the
 * fastest in the device's table, where `matmul` finds it for ops built afterwards
 * ({@link matmulConfig}). Save the table with {@link saveMatmulTuning}. Operands are scratch
 * tensors of the shape; the layout follows the shape's `vec4` and `bDtype`.
 *
 * @example Tune the products a model asked for, then build it again
 * ```ts
 * import { matmul, matmulConfig, requestGpu, tuneMatmuls } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const [a, b, c] = [gpu.tensor("a", [16, 256]), gpu.tensor("b", [256, 48]), gpu.tensor("c", [16, 48])];
 * matmul(gpu, { a, b, out: c }).destroy(); // records the shape (16 x 48 x 256)
 * const [result] = await tuneMatmuls(gpu, { trials: 1 }); // every shape not yet measured
 * assert.ok(result.ms > 0 && result.candidates.length > 1);
 * const shape = { m: 16, n: 48, k: 256, batch: 1, transA: false, transB: false, vec4: true };
 * assert.deepEqual(matmulConfig(gpu, { ...shape, bDtype: "f32" }), result.config);
 * gpu.destroy();
 * ```
 */
export async function tuneMatmuls(
  gpu: Gpu,
  options: TuneMatmulOptions = {},
): Promise<MatmulTuneResult[]> {
  const shapes = options.shapes ??
    matmulShapes(gpu).filter((s) => !s.measured).map((s) => s.shape);
  const results: MatmulTuneResult[] = [];
  for (const shape of shapes) {
    const r = await tuneOne(gpu, shape, options);
    results.push(r);
    options.log?.(
      `[matmul] ${matmulShapeKey(shape)}: ${matmulConfigName(r.config)} ${r.ms.toFixed(3)} ms ` +
        `(heuristic ${matmulConfigName(r.heuristic.config)} ${r.heuristic.ms.toFixed(3)} ms, ` +
        `${r.candidates.length} candidates)`,
    );
  }
  return results;
}

/** The candidates of a shape: tiles not far larger than C, splits up to 4x the device's width. */
function candidates(gpu: Gpu, s: MatmulShape): MatmulConfig[] {
  const target = gpu.adapter.software ? (globalThis.navigator?.hardwareConcurrency ?? 2) : 256;
  const out: MatmulConfig[] = [];
  for (const tile of Object.keys(MATMUL_TILES) as (keyof typeof MATMUL_TILES)[]) {
    const { wgX, wgY } = MATMUL_TILES[tile];
    if (8 * wgY > 4 * Math.max(s.m, 16) || 8 * wgX > 4 * Math.max(s.n, 16)) continue;
    const wgs = matmulWorkgroups(s, tile);
    for (const f of allowedSplits(s, gpu.limits.maxStorageBufferBindingSize)) {
      if (f > 1 && wgs * f > 4 * target) break;
      if (matmulWorkgroupBytes({ tile }) <= gpu.limits.maxComputeWorkgroupStorageSize) {
        out.push({ tile, splitK: f });
      }
    }
  }
  return out;
}

async function tuneOne(
  gpu: Gpu,
  s: MatmulShape,
  options: TuneMatmulOptions,
): Promise<MatmulTuneResult> {
  const batch = s.batch ?? 1;
  // Scalar layouts are forced by an offset of one element (no vec4 loads).
  const off = s.vec4 ? 0 : 1;
  const a = gpu.tensor("tune.a", [batch * s.m * s.k + off]);
  const b = gpu.tensor("tune.b", [batch * s.k * s.n], s.bDtype ?? "f32");
  const c = gpu.tensor("tune.c", [batch * s.m * s.n]);
  const ops: Op[] = [];
  const build = (config: MatmulConfig) => {
    const op = matmulStrided(gpu, {
      m: s.m,
      n: s.n,
      k: s.k,
      batch: [1, batch],
      transA: s.transA,
      transB: s.transB,
      a: { tensor: a, offset: off, ld: s.transA ? s.m : s.k, batchStrides: [0, s.m * s.k] },
      b: { tensor: b, ld: s.transB ? s.k : s.n, batchStrides: [0, s.k * s.n] },
      out: { tensor: c, ld: s.n, batchStrides: [0, s.m * s.n] },
      config,
      label: `tune ${matmulConfigName(config)}`,
    });
    ops.push(op);
    return op;
  };
  try {
    const heuristic = matmulHeuristicFor(gpu, s);
    const list = candidates(gpu, s);
    if (!list.some((x) => sameConfig(x, heuristic))) list.push(heuristic);
    const timed = await timeConfigs(gpu, list, build, options.trials ?? 3);
    let best = timed.reduce((x, y) => (y.ms < x.ms ? y : x));
    if (options.kernelOptions ?? true) {
      // A second round times the winner, the heuristic's choice and the winner with padding
      // and double buffering side by side; another choice must beat the winner by 2%.
      // (the direct kernel has no workgroup memory: nothing to pad or double-buffer)
      const extra = best.config.direct ? [] : [
        { pad: true },
        { doubleBuffer: true },
        { pad: true, doubleBuffer: true },
      ]
        .map((x) => ({ ...best.config, ...x }))
        .filter((x) => matmulWorkgroupBytes(x) <= gpu.limits.maxComputeWorkgroupStorageSize);
      const again = sameConfig(best.config, heuristic) ? [] : [heuristic];
      const more = await timeConfigs(
        gpu,
        [best.config, ...again, ...extra],
        build,
        options.trials ?? 3,
      );
      for (const r of more) {
        const e = timed.find((x) => sameConfig(x.config, r.config));
        if (e) e.ms = r.ms;
        else timed.push(r);
      }
      const base = more[0];
      const better = more.slice(1).reduce((x, y) => (y.ms < x.ms ? y : x), base);
      best = better.ms < 0.98 * base.ms ? better : base;
    }
    setMatmulConfig(gpu, s, best.config);
    return {
      shape: { ...s },
      config: best.config,
      ms: best.ms,
      heuristic: timed.find((x) => sameConfig(x.config, heuristic))!,
      candidates: timed,
    };
  } finally {
    for (const op of ops) op.destroy();
    for (const t of [a, b, c]) gpu.freeBuffer(t.buffer);
  }
}

function matmulHeuristicFor(gpu: Gpu, s: MatmulShape): MatmulConfig {
  // The heuristic's choice, whatever the table holds now.
  return matmulHeuristic(s, {
    software: gpu.adapter.software,
    maxBinding: gpu.limits.maxStorageBufferBindingSize,
  });
}

function sameConfig(x: MatmulConfig, y: MatmulConfig): boolean {
  return x.tile === y.tile && (x.splitK ?? 1) === (y.splitK ?? 1) && !!x.pad === !!y.pad &&
    !!x.doubleBuffer === !!y.doubleBuffer && !!x.direct === !!y.direct;
}

/** Milliseconds per product of each configuration: the best of `trials` rounds. */
async function timeConfigs(
  gpu: Gpu,
  configs: MatmulConfig[],
  build: (c: MatmulConfig) => Op,
  trials: number,
): Promise<{ config: MatmulConfig; ms: number }[]> {
  const ops = configs.map(build);
  const wall = async (op: Op, reps: number) => {
    const t0 = performance.now();
    await gpu.run(Array(reps).fill(op), "tune");
    await gpu.sync();
    return performance.now() - t0;
  };
  // One untimed run compiles and warms every candidate, and sizes the repetitions.
  const first = gpu.hasTimestamps
    ? (await gpu.profile(ops.map((op) => ({ label: op.label, ops: [op] }))))!
    : await Promise.all(ops.map((op) => wall(op, 1)));
  const floor = gpu.hasTimestamps ? 2 : 50; // ms per timed group: above clock and sync noise
  const reps = first.map((ms) => Math.max(1, Math.min(64, Math.ceil(floor / Math.max(ms, 1e-3)))));
  const best = configs.map(() => Infinity);
  for (let t = 0; t < Math.max(1, trials); t++) {
    if (gpu.hasTimestamps) {
      const ms = (await gpu.profile(ops.map((op, i) => ({
        label: op.label,
        ops: Array(reps[i]).fill(op),
      }))))!;
      ms.forEach((x, i) => best[i] = Math.min(best[i], x / reps[i]));
    } else {
      for (let i = 0; i < ops.length; i++) {
        best[i] = Math.min(best[i], (await wall(ops[i], reps[i])) / reps[i]);
      }
    }
  }
  return configs.map((config, i) => ({ config, ms: best[i] }));
}

/** Options of {@link matmulBackward}. */
export interface MatmulBackwardOptions {
  /** dC: (..., M, N). */
  dout: Tensor;
  /** A of the forward pass. */
  a: Tensor;
  /** B of the forward pass. */
  b: Tensor;
  /** Gradient for A (A's shape), if wanted. */
  da?: Tensor;
  /** Gradient for B (B's shape), if wanted. With a shared B it is summed over the batch. */
  db?: Tensor;
  /** As in the forward pass. */
  transA?: boolean;
  /** As in the forward pass. */
  transB?: boolean;
  /** As in the forward pass. @default {1} */
  alpha?: number;
  /** Add into `da`/`db` instead of overwriting. @default {false} */
  accumulate?: boolean;
  /** @default {"matmul_backward"} */
  label?: string;
}

/**
 * The backward products of {@link matmul}: `dA = alpha · dC · op(B)ᵀ` and
 * `dB = alpha · op(A)ᵀ · dC`, stored in the layout of A and B (transposed operands get
 * transposed gradients). The bias gradient is a row sum of dC (see `sumRows`).
 *
 * @example
 * ```ts
 * import { matmulBackward, matmulBackwardCpu, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const [x, w, dy] = [[1, 2, 3, 4, 5, 6], [1, 0, 0, 1, 1, 1], [1, -1, 2, 0.5]];
 * const a = gpu.upload("x", Float32Array.from(x), [1, 2, 3]); // the forward's (B, S, C)
 * const b = gpu.upload("w", Float32Array.from(w), [3, 2]); // (C, F), shared by the batch
 * const dout = gpu.upload("dy", Float32Array.from(dy), [1, 2, 2]);
 * const [da, db] = [gpu.tensor("dx", [1, 2, 3]), gpu.tensor("dw", [3, 2])];
 * await gpu.run(matmulBackward(gpu, { dout, a, b, da, db }));
 * const want = matmulBackwardCpu(
 *   Float64Array.from(dy),
 *   Float64Array.from(x),
 *   [1, 2, 3],
 *   Float64Array.from(w),
 *   [3, 2],
 * );
 * assert.deepEqual(await gpu.read(da), Float32Array.from(want.da));
 * assert.deepEqual(await gpu.read(db), Float32Array.from(want.db));
 * gpu.destroy();
 * ```
 */
export function matmulBackward(gpu: Gpu, o: MatmulBackwardOptions): Op[] {
  const label = o.label ?? "matmul_backward";
  const tA = !!o.transA;
  const tB = !!o.transB;
  const g = matmulGeometry(label, o.a.shape, o.b.shape, o.dout.shape, tA, tB);
  const ops: Op[] = [];
  const alpha = o.alpha ?? 1;
  const accumulate = o.accumulate;
  const [ar, ac] = o.a.shape.slice(-2);
  const [br, bc] = o.b.shape.slice(-2);
  const bStride = g.sharedB ? 0 : br * bc;
  const A = (t: Tensor) => ({ tensor: t, ld: ac, batchStrides: [0, ar * ac] as const });
  const Bop = (t: Tensor) => ({ tensor: t, ld: bc, batchStrides: [0, bStride] as const });
  const C = (t: Tensor) => ({ tensor: t, ld: g.n, batchStrides: [0, g.m * g.n] as const });
  if (o.da) {
    if (fmtShape(o.da.shape) !== fmtShape(o.a.shape)) {
      throw new ShapeError(
        `${label}: dA ${o.da.describe()} must have A's shape ${fmtShape(o.a.shape)}`,
      );
    }
    const fold = g.sharedB && !tA;
    const batch: [number, number] = fold ? [1, 1] : [1, g.batch];
    const rows = fold ? g.m * g.batch : g.m;
    ops.push(
      tA
        // dA stored (K, M) = op(B) · dCᵀ
        ? matmulStrided(gpu, {
          m: g.k,
          n: g.m,
          k: g.n,
          batch,
          a: Bop(o.b),
          b: C(o.dout),
          out: A(o.da),
          transA: tB,
          transB: true,
          alpha,
          accumulate,
          label: `${label}.dA`,
        })
        // dA (M, K) = dC · op(B)ᵀ
        : matmulStrided(gpu, {
          m: rows,
          n: g.k,
          k: g.n,
          batch,
          a: C(o.dout),
          b: Bop(o.b),
          out: A(o.da),
          transA: false,
          transB: !tB,
          alpha,
          accumulate,
          label: `${label}.dA`,
        }),
    );
  }
  if (o.db) {
    if (fmtShape(o.db.shape) !== fmtShape(o.b.shape)) {
      throw new ShapeError(
        `${label}: dB ${o.db.describe()} must have B's shape ${fmtShape(o.b.shape)}`,
      );
    }
    // A shared B sums its gradient over the batch. Without transA the batch folds into the
    // contracted dimension (one product); otherwise one accumulating product per entry.
    const foldK = g.sharedB && !tA;
    const entries = g.sharedB && !foldK ? g.batch : 1;
    // An empty batch contributes nothing: a shared B's gradient is then zero, not stale.
    if (entries === 0 && !accumulate) ops.push(fill(gpu, { out: o.db, value: 0 }));
    for (let z = 0; z < entries; z++) {
      const batch: [number, number] = foldK || g.sharedB ? [1, 1] : [1, g.batch];
      const kk = foldK ? g.m * g.batch : g.m;
      const aOp = { ...A(o.a), offset: z * ar * ac };
      const cOp = { ...C(o.dout), offset: z * g.m * g.n };
      const acc = accumulate || z > 0;
      ops.push(
        tB
          // dB stored (N, K) = dCᵀ · op(A)
          ? matmulStrided(gpu, {
            m: g.n,
            n: g.k,
            k: kk,
            batch,
            a: cOp,
            b: aOp,
            out: Bop(o.db),
            transA: true,
            transB: tA,
            alpha,
            accumulate: acc,
            label: `${label}.dB`,
          })
          // dB (K, N) = op(A)ᵀ · dC
          : matmulStrided(gpu, {
            m: g.k,
            n: g.n,
            k: kk,
            batch,
            a: aOp,
            b: cOp,
            out: Bop(o.db),
            transA: !tA,
            transB: false,
            alpha,
            accumulate: acc,
            label: `${label}.dB`,
          }),
      );
    }
  }
  return ops;
}

/**
 * Float64 CPU reference of {@link matmul} (same shape rules, bias and accumulate).
 *
 * @example
 * ```ts
 * import { matmulCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const a = Float64Array.of(1, 2, 3, 4); // (2, 2)
 * const { out, shape } = matmulCpu(a, [2, 2], Float64Array.of(1, 0, 0, 1), [2, 2], { alpha: 2 });
 * assert.deepEqual(shape, [2, 2]);
 * assert.deepEqual(out, Float64Array.of(2, 4, 6, 8));
 * ```
 */
export function matmulCpu(
  a: Float64Array,
  aShape: readonly number[],
  b: Float64Array,
  bShape: readonly number[],
  opts: {
    transA?: boolean;
    transB?: boolean;
    alpha?: number;
    bias?: Float64Array;
    accumulateInto?: Float64Array;
  } = {},
): { out: Float64Array; shape: number[] } {
  const tA = !!opts.transA;
  const tB = !!opts.transB;
  const batchDims = aShape.slice(0, -2);
  const [ar, ac] = aShape.slice(-2);
  const [, bc] = bShape.slice(-2);
  const m = tA ? ac : ar;
  const k = tA ? ar : ac;
  const n = tB ? bShape[bShape.length - 2] : bc;
  const outShape = [...batchDims, m, n];
  const g = matmulGeometry("matmulCpu", aShape, bShape, outShape, tA, tB);
  const out = opts.accumulateInto
    ? Float64Array.from(opts.accumulateInto)
    : new Float64Array(numel(outShape));
  const alpha = opts.alpha ?? 1;
  const bSize = bShape[bShape.length - 2] * bc;
  for (let z = 0; z < g.batch; z++) {
    const ao = z * ar * ac;
    const bo = g.sharedB ? 0 : z * bSize;
    const co = z * m * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const av = tA ? a[ao + p * ac + i] : a[ao + i * ac + p];
          const bv = tB ? b[bo + j * bc + p] : b[bo + p * bc + j];
          s += av * bv;
        }
        out[co + i * n + j] += alpha * s + (opts.bias ? opts.bias[j] : 0);
      }
    }
  }
  return { out, shape: outShape };
}

/**
 * Float64 CPU reference of {@link matmulBackward}: returns dA and dB in the layouts of A and B.
 *
 * @example
 * ```ts
 * import { matmulBackwardCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // C = A · B with A (1, 2), B (2, 1) and dC = [1]: dA = dC · Bᵀ, dB = Aᵀ · dC
 * const a = Float64Array.of(1, 2), b = Float64Array.of(3, 4);
 * const { da, db } = matmulBackwardCpu(Float64Array.of(1), a, [1, 2], b, [2, 1]);
 * assert.deepEqual(da, Float64Array.of(3, 4));
 * assert.deepEqual(db, Float64Array.of(1, 2));
 * ```
 */
export function matmulBackwardCpu(
  dout: Float64Array,
  a: Float64Array,
  aShape: readonly number[],
  b: Float64Array,
  bShape: readonly number[],
  opts: { transA?: boolean; transB?: boolean; alpha?: number } = {},
): { da: Float64Array; db: Float64Array } {
  const tA = !!opts.transA;
  const tB = !!opts.transB;
  const alpha = opts.alpha ?? 1;
  const [ar, ac] = aShape.slice(-2);
  const [br, bc] = bShape.slice(-2);
  const m = tA ? ac : ar;
  const k = tA ? ar : ac;
  const n = tB ? br : bc;
  const batch = numel(aShape.slice(0, -2));
  const sharedB = bShape.length === 2;
  const da = new Float64Array(a.length);
  const db = new Float64Array(b.length);
  for (let z = 0; z < batch; z++) {
    const ao = z * ar * ac;
    const bo = sharedB ? 0 : z * br * bc;
    const co = z * m * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        const g = alpha * dout[co + i * n + j];
        if (g === 0) continue;
        for (let p = 0; p < k; p++) {
          const ai = tA ? ao + p * ac + i : ao + i * ac + p;
          const bi = tB ? bo + j * bc + p : bo + p * bc + j;
          da[ai] += g * b[bi];
          db[bi] += g * a[ai];
        }
      }
    }
  }
  return { da, db };
}
