/**
 * `torch.randperm(n, generator=torch.Generator().manual_seed(seed))` on the CPU, bit for bit.
 *
 * PyTorch's CPU kernel (`randperm_cpu` in aten/src/ATen/native/TensorFactories.cpp) has two
 * branches:
 * - `n < 2^32 / 20` (n < 214,748,364; every dataset here): start from the identity and, for
 *   i = 0..n-2, swap entry i with entry i + (random() % (n - i)), where random() is one 32-bit
 *   MT19937 draw (a forward Fisher-Yates with torch's slight modulo bias).
 * - larger n: the "inside-out" Fisher-Yates: for i = 0..n-1, z = random64() % (i + 1),
 *   r[i] = r[z], r[z] = i, where random64() is two 32-bit draws, the first in the high half.
 *
 * The dtype torch returns (int64 by default) does not change the values; this returns them
 * as an Int32Array.
 *
 * @module
 */

import { Mt19937 } from "./mt19937.ts";

/** At and above this n, torch's CPU randperm switches to 64-bit draws (`UINT32_MAX / 20`). */
export const RANDPERM_64BIT_THRESHOLD: number = Math.floor(0xffffffff / 20);

/** The largest n whose permutation fits an Int32Array (values up to n - 1 = 2^31 - 1). */
export const MAX_RANDPERM_N: number = 2 ** 31;

/**
 * A random permutation of 0..n-1 identical to
 * `torch.randperm(n, generator=torch.Generator().manual_seed(seed))` on the CPU.
 *
 * @param n The permutation length, an integer in [0, 2^31].
 * @param seed A torch-style seed (see `seedLow32` in mt19937.ts), or an {@linkcode Mt19937}
 *   to draw from; passing the same generator to successive calls continues its stream the way
 *   reusing one `torch.Generator` does.
 * @returns The permutation.
 * @throws {RangeError} If `n` is not an integer in [0, 2^31] or `seed` is out of range.
 *
 * @example
 * ```ts
 * import { randperm } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // torch.randperm(10, generator=torch.Generator().manual_seed(42))
 * assert.deepEqual([...randperm(10)], [2, 6, 1, 8, 4, 5, 0, 9, 3, 7]);
 * ```
 */
export function randperm(n: number, seed: number | bigint | Mt19937 = 42): Int32Array {
  if (!Number.isInteger(n) || n < 0 || n > MAX_RANDPERM_N) {
    throw new RangeError(`randperm: n must be an integer in [0, 2^31], got ${n}`);
  }
  const gen = seed instanceof Mt19937 ? seed : new Mt19937(seed);
  const r = new Int32Array(n);
  if (n < RANDPERM_64BIT_THRESHOLD) {
    for (let i = 0; i < n; i++) r[i] = i;
    for (let i = 0; i < n - 1; i++) {
      const j = i + (gen.nextUint32() % (n - i));
      const t = r[i];
      r[i] = r[j];
      r[j] = t;
    }
    return r;
  }
  for (let i = 0; i < n; i++) {
    const z = gen.nextUint64Mod(i + 1);
    r[i] = r[z];
    r[z] = i;
  }
  return r;
}
