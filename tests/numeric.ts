/**
 * Numerical test helpers: seeded random data, closeness checks that report the largest
 * difference and where it is, and float64 finite differences.
 *
 * @module
 */

import { AssertionError } from "node:assert/strict";

/** A small seeded generator (mulberry32) so every test is reproducible. */
export class Rng {
  #s: number;
  constructor(seed = 1) {
    this.#s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** `n` uniform values in [lo, hi) as float32. */
  uniform(n: number, lo = -1, hi = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * this.next();
    return a;
  }
  /** `n` normal values with standard deviation `std` as float32. */
  normal(n: number, std = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = 1 - this.next();
      const v = this.next();
      a[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }
    return a;
  }
  /** `n` integers in [lo, hi). */
  ints(n: number, lo: number, hi: number): Int32Array {
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = lo + Math.floor((hi - lo) * this.next());
    return a;
  }
}

/** Float64 copy of any numeric array. */
export function f64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a);
}

/** Float32 copy of any numeric array. */
export function f32(a: ArrayLike<number>): Float32Array {
  return Float32Array.from(a);
}

/** Options of {@link assertClose}. */
export interface CloseOptions {
  /** Absolute tolerance. @default {1e-5} */
  atol?: number;
  /** Relative tolerance. @default {1e-5} */
  rtol?: number;
  /** What is compared, for the message. */
  label?: string;
}

/** Largest absolute and relative differences of two arrays and their indices. */
export function diffStats(actual: ArrayLike<number>, expected: ArrayLike<number>) {
  let maxAbs = 0, maxAbsAt = -1, maxRel = 0, maxRelAt = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Object.is(a, e) || (a === e)) continue;
    const d = Number.isNaN(a) || Number.isNaN(e) ? Infinity : Math.abs(a - e);
    const r = d / Math.max(Math.abs(e), 1e-30);
    if (d > maxAbs || maxAbsAt < 0) [maxAbs, maxAbsAt] = [d, i];
    if (r > maxRel || maxRelAt < 0) [maxRel, maxRelAt] = [r, i];
  }
  return { maxAbs, maxAbsAt, maxRel, maxRelAt };
}

/**
 * Asserts `|actual - expected| <= atol + rtol·|expected|` everywhere (NaN only equals NaN,
 * ±Infinity only itself). On failure the message gives the largest absolute and relative
 * differences, their indices and values, and how many elements failed.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  opts: CloseOptions = {},
): void {
  const atol = opts.atol ?? 1e-5;
  const rtol = opts.rtol ?? 1e-5;
  const label = opts.label ?? "values";
  if (actual.length !== expected.length) {
    throw new AssertionError({
      message: `${label}: length ${actual.length} differs from expected ${expected.length}`,
    });
  }
  let bad = 0, firstBad = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    let ok: boolean;
    if (Number.isNaN(e)) ok = Number.isNaN(a);
    else if (!Number.isFinite(e)) ok = a === e;
    else ok = Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) {
      bad++;
      if (firstBad < 0) firstBad = i;
    }
  }
  if (bad === 0) return;
  const s = diffStats(actual, expected);
  throw new AssertionError({
    message: `${label}: ${bad} of ${expected.length} elements differ beyond atol=${atol} ` +
      `rtol=${rtol}. Largest absolute difference ${s.maxAbs.toExponential(3)} at [${s.maxAbsAt}] ` +
      `(got ${actual[s.maxAbsAt]}, expected ${expected[s.maxAbsAt]}); largest relative ` +
      `difference ${s.maxRel.toExponential(3)} at [${s.maxRelAt}] (got ${actual[s.maxRelAt]}, ` +
      `expected ${expected[s.maxRelAt]}); first failure at [${firstBad}] (got ${
        actual[firstBad]
      }, expected ${expected[firstBad]}).`,
  });
}

/** Central finite-difference gradient of a scalar function in float64. */
export function finiteDiff(
  f: (x: Float64Array) => number,
  x: Float64Array,
  eps = 1e-6,
): Float64Array {
  const g = new Float64Array(x.length);
  const xp = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    const v = xp[i];
    xp[i] = v + eps;
    const fp = f(xp);
    xp[i] = v - eps;
    const fm = f(xp);
    xp[i] = v;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

/** Σ w·y: projects an output onto fixed weights, turning a vector function into a scalar. */
export function dot(w: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += w[i] * y[i];
  return s;
}
