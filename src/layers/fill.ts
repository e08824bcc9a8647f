/**
 * Filling a tensor with a constant on the GPU (zeroing gradients inside a recorded step).
 *
 * @module
 */

import type { Gpu } from "../gpu/device.ts";
import { buildOp, type Op, workgroupsFor } from "../gpu/op.ts";
import { checkF32, type Tensor } from "../gpu/tensor.ts";

/** Options of {@link fill}. */
export interface FillOptions {
  /** The f32 tensor to fill. */
  out: Tensor;
  /** The value. @default {0} */
  value?: number;
  /** Threads per workgroup. @default {256} */
  workgroupSize?: number;
}

/**
 * `out[:] = value`, as an op that can be recorded into a step.
 *
 * @example
 * ```ts
 * import { fill, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const grads = gpu.upload("grads", Float32Array.of(0.5, -2, 7));
 * await gpu.run(fill(gpu, { out: grads })); // zeroes, inside a recorded step
 * assert.deepEqual(await gpu.read(grads), new Float32Array(3));
 * gpu.destroy();
 * ```
 */
export function fill(gpu: Gpu, o: FillOptions): Op {
  checkF32("fill", { out: o.out });
  const wg = o.workgroupSize ?? 256;
  return buildOp(gpu, {
    kernel: "fill",
    label: `fill(${o.out.describe()})`,
    bindings: { out: o.out },
    params: { n: o.out.size, value: o.value ?? 0 },
    constants: { WG: wg },
    workgroups: workgroupsFor(o.out.size, wg),
  });
}

/**
 * CPU reference of {@link fill}.
 *
 * @example
 * ```ts
 * import { fillCpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(fillCpu(3, 1.5), Float64Array.of(1.5, 1.5, 1.5));
 * ```
 */
export function fillCpu(n: number, value = 0): Float64Array {
  return new Float64Array(n).fill(value);
}
