/**
 * MT19937, the 32-bit Mersenne Twister, seeded exactly like PyTorch's CPU generator
 * (`torch.Generator().manual_seed(seed)`, `at::CPUGeneratorImpl`): the low 32 bits of the
 * seed go through the reference `init_genrand` recurrence, and the first draw regenerates
 * the whole state. The output stream therefore equals `std::mt19937(seed & 0xffffffff)` and
 * torch's `generator->random()`; {@linkcode Mt19937.nextUint64} equals torch's `random64()`
 * (first draw in the high 32 bits).
 *
 * @module
 */

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;
const TWO_POW_32 = 4294967296;
const MIN_BIGINT_SEED = -(1n << 63n);
const MAX_BIGINT_SEED = (1n << 64n) - 1n;

/**
 * Reduces a torch-style seed to the 32 bits that seed the state, the way
 * `torch.Generator().manual_seed` does: negative seeds wrap as 64-bit two's complement
 * (so `-1` and `2**64 - 1` agree) and only the low 32 bits are used.
 *
 * @param seed A safe integer, or a bigint in [-2^63, 2^64 - 1] (torch's accepted range).
 * @returns The seed's low 32 bits as an unsigned number.
 * @throws {RangeError} If `seed` is not an integer or is outside torch's range.
 *
 * @example
 * ```ts
 * import { seedLow32 } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(seedLow32(42), 42);
 * assert.equal(seedLow32(-1), 4294967295);
 * assert.equal(seedLow32(2n ** 32n + 42n), 42);
 * ```
 */
export function seedLow32(seed: number | bigint): number {
  if (typeof seed === "bigint") {
    if (seed < MIN_BIGINT_SEED || seed > MAX_BIGINT_SEED) {
      throw new RangeError(`seed must be in [-2^63, 2^64 - 1] like torch's, got ${seed}n`);
    }
    return Number(BigInt.asUintN(32, seed));
  }
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(`seed must be a safe integer (or a bigint), got ${seed}`);
  }
  return ((seed % TWO_POW_32) + TWO_POW_32) % TWO_POW_32;
}

/**
 * The Mersenne Twister MT19937 with PyTorch's CPU seeding.
 *
 * @example
 * ```ts
 * import { Mt19937 } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // The 10000th output of the default-seeded engine is the C++ standard's check value.
 * const mt = new Mt19937(5489);
 * let x = 0;
 * for (let i = 0; i < 10000; i++) x = mt.nextUint32();
 * assert.equal(x, 4123659995);
 * ```
 */
export class Mt19937 {
  readonly #state = new Uint32Array(N);
  #next = 0;
  #left = 1;

  /**
   * Seeds the engine like `torch.Generator().manual_seed(seed)`.
   *
   * @param seed See {@linkcode seedLow32}; defaults to 5489, the reference default.
   */
  constructor(seed: number | bigint = 5489) {
    const s = this.#state;
    s[0] = seedLow32(seed);
    for (let j = 1; j < N; j++) {
      const prev = s[j - 1];
      // 1812433253 * (prev ^ (prev >>> 30)) + j, modulo 2^32.
      s[j] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + j) >>> 0;
    }
    this.#left = 1;
    this.#next = 0;
  }

  #twist(): void {
    const s = this.#state;
    let k = 0;
    for (; k < N - M; k++) {
      const y = (s[k] & UPPER_MASK) | (s[k + 1] & LOWER_MASK);
      s[k] = s[k + M] ^ (y >>> 1) ^ (s[k + 1] & 1 ? MATRIX_A : 0);
    }
    for (; k < N - 1; k++) {
      const y = (s[k] & UPPER_MASK) | (s[k + 1] & LOWER_MASK);
      s[k] = s[k + M - N] ^ (y >>> 1) ^ (s[k + 1] & 1 ? MATRIX_A : 0);
    }
    const y = (s[N - 1] & UPPER_MASK) | (s[0] & LOWER_MASK);
    s[N - 1] = s[M - 1] ^ (y >>> 1) ^ (s[0] & 1 ? MATRIX_A : 0);
    this.#left = N;
    this.#next = 0;
  }

  /**
   * The next 32-bit output, as an unsigned number in [0, 2^32) (torch's `random()`).
   *
   * @example
   * ```ts
   * import { Mt19937 } from "@adept/trainer";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new Mt19937(42).nextUint32(), 1608637542);
   * ```
   */
  nextUint32(): number {
    if (--this.#left === 0) this.#twist();
    let y = this.#state[this.#next++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /**
   * The next 64-bit output as a bigint (torch's `random64()`): two 32-bit draws, the first
   * in the high half.
   *
   * @example
   * ```ts
   * import { Mt19937 } from "@adept/trainer";
   * import assert from "node:assert/strict";
   *
   * const a = new Mt19937(42);
   * const b = new Mt19937(42);
   * assert.equal(a.nextUint64(), (BigInt(b.nextUint32()) << 32n) + BigInt(b.nextUint32()));
   * ```
   */
  nextUint64(): bigint {
    const hi = this.nextUint32();
    const lo = this.nextUint32();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /**
   * `random64() % m` for a modulus `m` in [1, 2^31], computed exactly without bigints (used
   * by the large-`n` branch of `randperm`). Consumes two 32-bit draws like `random64()`.
   *
   * @param m The modulus, an integer in [1, 2^31].
   * @returns An integer in [0, m).
   * @throws {RangeError} If `m` is not an integer in [1, 2^31].
   *
   * @example
   * ```ts
   * import { Mt19937 } from "@adept/trainer";
   * import assert from "node:assert/strict";
   *
   * const a = new Mt19937(7);
   * const b = new Mt19937(7);
   * assert.equal(BigInt(a.nextUint64Mod(1000)), b.nextUint64() % 1000n);
   * ```
   */
  nextUint64Mod(m: number): number {
    if (!(Number.isInteger(m) && m >= 1 && m <= 2147483648)) {
      throw new RangeError(`modulus must be an integer in [1, 2^31], got ${m}`);
    }
    const hi = this.nextUint32();
    const lo = this.nextUint32();
    // (hi * 2^32 + lo) mod m, split so every intermediate stays below 2^53.
    let r = hi % m;
    r = (r * 65536) % m;
    r = (r * 65536) % m;
    return (r + lo) % m;
  }
}
