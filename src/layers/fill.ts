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
 * ```ts ignore
 * await gpu.run(fill(gpu, { out: grads, value: 0 }));
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

/** CPU reference of {@link fill}. */
export function fillCpu(n: number, value = 0): Float64Array {
  return new Float64Array(n).fill(value);
}
