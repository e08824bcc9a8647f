/**
 * T5's relative position bias: buckets of relative positions (as transformers computes them,
 * float32 math included) and the launcher that expands the learned table into an (H, Sq, Sk)
 * bias shared by every layer of a stack.
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { ShapeError } from "../gpu/errors.ts";
import { buildOp, type Op, workgroupsFor } from "../gpu/op.ts";
import type { Tensor } from "../gpu/tensor.ts";

const f = Math.fround;

/**
 * The bucket of a relative position `rel = key - query`, exactly as transformers'
 * `T5Attention._relative_position_bucket` (its float32 log and truncation included).
 *
 * @example
 * ```ts
 * import { relativePositionBucket } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // encoder (bidirectional), T5's 32 buckets up to distance 128
 * assert.equal(relativePositionBucket(-3, true, 32, 128), 3); // a key 3 positions before
 * assert.equal(relativePositionBucket(3, true, 32, 128), 19); // after: the upper half
 * assert.equal(relativePositionBucket(3, false, 32, 128), 0); // the decoder: future keys share 0
 * ```
 */
export function relativePositionBucket(
  rel: number,
  bidirectional: boolean,
  numBuckets: number,
  maxDistance: number,
): number {
  let buckets = 0;
  let n = numBuckets;
  let r: number;
  if (bidirectional) {
    n = Math.floor(n / 2);
    if (rel > 0) buckets += n;
    r = Math.abs(rel);
  } else {
    r = -Math.min(rel, 0);
  }
  const maxExact = Math.floor(n / 2);
  if (r < maxExact) return buckets + r;
  // torch: max_exact + (log(r.float() / max_exact) / math.log(max_distance / max_exact)
  //        * (num_buckets - max_exact)).to(long), every step in float32
  const ratio = f(f(r) / f(maxExact));
  const logRatio = f(Math.log(ratio));
  const denom = f(Math.log(maxDistance / maxExact));
  const scaled = f(f(logRatio / denom) * f(n - maxExact));
  const large = maxExact + Math.trunc(scaled);
  return buckets + Math.min(large, n - 1);
}

/**
 * Buckets of every relative position in [-radius, radius] (index `rel + radius`).
 *
 * @example
 * ```ts
 * import { bucketTable } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // relative positions -2..2 of an encoder: index rel + radius
 * assert.deepEqual(bucketTable(2, true, 32, 128), Int32Array.of(2, 1, 0, 17, 18));
 * ```
 */
export function bucketTable(
  radius: number,
  bidirectional: boolean,
  numBuckets: number,
  maxDistance: number,
): Int32Array {
  const t = new Int32Array(2 * radius + 1);
  for (let r = -radius; r <= radius; r++) {
    t[r + radius] = relativePositionBucket(r, bidirectional, numBuckets, maxDistance);
  }
  return t;
}

/** Options of {@link positionBias}. */
export interface PositionBiasOptions {
  /** The learned table (NB, H). */
  weight: Tensor;
  /** {@link bucketTable} of `radius`, uploaded as i32 (2·radius + 1). */
  buckets: Tensor;
  /** Output (H, Sq, Sk). */
  out: Tensor;
  /** Position of query row 0 (for incremental decoding). @default {0} */
  queryOffset?: number;
}

/**
 * Expands the relative attention bias table into `out[h, i, j] = weight[bucket(j - i - off), h]`.
 *
 * @example
 * ```ts
 * import { bucketTable, positionBias, positionBiasCpu, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const table = Array.from({ length: 32 * 2 }, (_, i) => i / 10); // learned (NB 32, H 2)
 * const weight = gpu.upload("relative_attention_bias", Float32Array.from(table), [32, 2]);
 * const buckets = gpu.upload("buckets", bucketTable(3, true, 32, 128)); // positions up to 3 apart
 * const bias = gpu.tensor("position_bias", [2, 3, 3]); // (H, Sq, Sk), shared by every layer
 * await gpu.run(positionBias(gpu, { weight, buckets, out: bias }));
 * const want = positionBiasCpu(table, 2, 3, 3, true, 32, 128);
 * assert.deepEqual(await gpu.read(bias), Float32Array.from(want));
 * gpu.destroy();
 * ```
 */
export function positionBias(gpu: Gpu, o: PositionBiasOptions): Op {
  const label = "position_bias";
  if (o.weight.shape.length !== 2 || o.out.shape.length !== 3) {
    throw new ShapeError(
      `${label}: weight ${o.weight.describe()} must be (NB, H) and out ${o.out.describe()} (H, Sq, Sk)`,
    );
  }
  const [, heads] = o.weight.shape;
  const [h, sq, sk] = o.out.shape;
  if (h !== heads) {
    throw new ShapeError(
      `${label}: out ${o.out.describe()} has ${h} heads, weight ${o.weight.describe()} ${heads}`,
    );
  }
  if (o.buckets.dtype !== "i32" || o.buckets.size % 2 !== 1) {
    throw new ShapeError(
      `${label}: buckets ${o.buckets.describe()} must be i32 of odd length 2R+1`,
    );
  }
  if (o.weight.dtype !== "f32" || o.out.dtype !== "f32") {
    throw new ShapeError(`${label}: weight and out must be f32`);
  }
  return buildOp(gpu, {
    kernel: "position_bias",
    label: `${label}(${o.out.describe()})`,
    bindings: { weight: o.weight, buckets: o.buckets, out: o.out },
    params: { heads, sq, sk, q_offset: o.queryOffset ?? 0, radius: (o.buckets.size - 1) / 2 },
    workgroups: workgroupsFor(heads * sq * sk),
  });
}

/**
 * Float64 CPU reference of {@link positionBias}.
 *
 * @example
 * ```ts
 * import { positionBiasCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // a table whose value is the bucket (NB 32, H 1); decoder (causal) positions, Sq = Sk = 2
 * const table = Array.from({ length: 32 }, (_, b) => b);
 * assert.deepEqual(positionBiasCpu(table, 1, 2, 2, false, 32, 128), Float64Array.of(0, 0, 1, 0));
 * ```
 */
export function positionBiasCpu(
  weight: ArrayLike<number>,
  heads: number,
  sq: number,
  sk: number,
  bidirectional: boolean,
  numBuckets: number,
  maxDistance: number,
  queryOffset = 0,
): Float64Array {
  const out = new Float64Array(heads * sq * sk);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < sq; i++) {
      for (let j = 0; j < sk; j++) {
        const b = relativePositionBucket(
          j - i - queryOffset,
          bidirectional,
          numBuckets,
          maxDistance,
        );
        out[(h * sq + i) * sk + j] = weight[b * heads + h];
      }
    }
  }
  return out;
}
