/**
 * Tensors: typed views into GPU buffers, with a shape, a dtype and a name.
 *
 * A {@link Tensor} never owns its buffer by itself: it is either a standalone allocation made by
 * {@link Gpu.tensor} or a named view into an {@link Arena} that was sized and allocated once.
 *
 * @module
 */

import { fmtShape, ShapeError } from "./errors.ts";

/** Element types a tensor can hold. `f16` needs the adapter's `shader-f16` feature. */
export type DType = "f32" | "f16" | "i32" | "u32";

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = { f32: 4, f16: 2, i32: 4, u32: 4 };

/** The typed array that holds host-side data of a dtype. */
export type HostArray<D extends DType = DType> = D extends "f32" ? Float32Array
  : D extends "f16" ? Float16Array
  : D extends "i32" ? Int32Array
  : D extends "u32" ? Uint32Array
  : never;

/** Rounds `n` up to a multiple of `m`. */
export function roundUp(n: number, m: number): number {
  return Math.ceil(n / m) * m;
}

/** Number of elements of a shape (1 for a scalar `[]`). Throws on a negative or fractional dim. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(`invalid shape ${fmtShape(shape)}: dims must be integers >= 0`);
    }
    n *= d;
  }
  return n;
}

/**
 * Throws a {@link ShapeError} naming the role and the tensor when one of `tensors` (by role;
 * undefined entries are skipped) is not f32.
 *
 * @example
 * ```ts
 * import { checkF32 } from "./tensor.ts";
 * import assert from "node:assert/strict";
 * assert.doesNotThrow(() => checkF32("matmul", { a: undefined }));
 * ```
 */
export function checkF32(label: string, tensors: Record<string, Tensor | undefined>): void {
  for (const [role, t] of Object.entries(tensors)) {
    if (t && t.dtype !== "f32") {
      throw new ShapeError(`${label}: ${role} = ${t.describe()} must be f32`);
    }
  }
}

/** A typed array constructor for a dtype. */
export function hostArray(dtype: DType, n: number): HostArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(n);
    case "f16":
      return new Float16Array(n);
    case "i32":
      return new Int32Array(n);
    case "u32":
      return new Uint32Array(n);
  }
}

/** The dtype a typed array corresponds to, or undefined. */
export function dtypeOf(data: ArrayBufferView): DType | undefined {
  if (data instanceof Float32Array) return "f32";
  if (data instanceof Float16Array) return "f16";
  if (data instanceof Int32Array) return "i32";
  if (data instanceof Uint32Array) return "u32";
  return undefined;
}

/**
 * A GPU tensor: `shape` and `dtype` over `byteLength` bytes of `buffer` starting at `offset`.
 *
 * The allocated size is rounded up to 4 bytes; `byteLength` is the logical size.
 */
export class Tensor {
  /** Logical size in bytes (`numel(shape) * DTYPE_BYTES[dtype]`). */
  readonly byteLength: number;
  /** Number of elements. */
  readonly size: number;

  constructor(
    /** The buffer holding the data. */
    readonly buffer: GPUBuffer,
    /** Byte offset of element 0 in `buffer` (a multiple of the storage offset alignment). */
    readonly offset: number,
    /** Dimensions, outermost first. */
    readonly shape: readonly number[],
    /** Element type. */
    readonly dtype: DType,
    /** Name used in error messages and GPU object labels. */
    readonly name: string,
  ) {
    this.size = numel(shape);
    this.byteLength = this.size * DTYPE_BYTES[dtype];
  }

  /** Bytes this tensor's binding covers: `byteLength` rounded up to 4 (at least 4). */
  get bindingSize(): number {
    return Math.max(4, roundUp(this.byteLength, 4));
  }

  /** `name(2, 3) f32`, for messages. */
  describe(): string {
    return `${this.name}${fmtShape(this.shape)} ${this.dtype}`;
  }

  /**
   * A view of the same bytes with another shape of the same element count.
   *
   * @example
   * ```ts
   * import { requestGpu, ShapeError } from "@adept/trainer";
   * import assert from "node:assert/strict";
   *
   * const gpu = await requestGpu({ log: false });
   * const x = gpu.upload("x", new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
   * const flat = x.reshape([x.size]);
   * assert.deepEqual(flat.shape, [6]);
   * assert.equal(flat.buffer, x.buffer); // the same bytes
   * assert.throws(() => x.reshape([4]), ShapeError);
   * gpu.destroy();
   * ```
   */
  reshape(shape: readonly number[], name = this.name): Tensor {
    if (numel(shape) !== this.size) {
      throw new ShapeError(
        `reshape of ${this.describe()} to ${fmtShape(shape)}: element counts differ ` +
          `(${this.size} vs ${numel(shape)})`,
      );
    }
    return new Tensor(this.buffer, this.offset, shape, this.dtype, name);
  }
}

/**
 * A view of the first `numel(shape)` elements of `t` with a new shape: lets one scratch
 * allocation serve tensors of several shapes (sized for the largest).
 *
 * @example
 * ```ts
 * import { requestGpu, ShapeError, viewOf } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const scratch = gpu.tensor("scratch", [2 * 4 * 3 * 5]); // sized for the largest use
 * const scores = viewOf(scratch, [2, 4, 3, 5], "cross_scores");
 * const probs = viewOf(scratch, [2, 4, 3, 2], "self_probs"); // its first 48 elements
 * assert.equal(scores.buffer, probs.buffer);
 * assert.equal(probs.byteLength, 48 * 4);
 * assert.throws(() => viewOf(scratch, [200]), ShapeError);
 * gpu.destroy();
 * ```
 */
export function viewOf(t: Tensor, shape: readonly number[], name = t.name): Tensor {
  if (numel(shape) > t.size) {
    throw new ShapeError(
      `view ${name}${fmtShape(shape)} needs ${numel(shape)} elements, more than the ` +
        `${t.size} of ${t.describe()}`,
    );
  }
  return new Tensor(t.buffer, t.offset, shape, t.dtype, name);
}

/** A tensor's requested shape and dtype in an arena. */
export interface TensorSpec {
  /** Dimensions, outermost first. */
  shape: readonly number[];
  /** Element type. @default {"f32"} */
  dtype?: DType;
}
