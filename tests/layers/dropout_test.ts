import assert from "node:assert/strict";
import type { Gpu } from "../../src/gpu/device.ts";
import { ShapeError } from "../../src/gpu/errors.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import {
  dropoutBackward,
  dropoutBackwardCpu,
  dropoutForward,
  dropoutForwardCpu,
  dropoutHash,
  dropoutMaskCpu,
  dropoutState,
  dropoutThreshold,
  setDropoutState,
} from "../../src/layers/dropout.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose, dot, f64, finiteDiff, Rng } from "../numeric.ts";

/** Byte-wise MurmurHash3_x86_32, written independently from the word-wise one under test. */
function murmur3(bytes: Uint8Array, seed: number): number {
  const c1 = 0xcc9e2d51, c2 = 0x1b873593;
  let h = seed >>> 0;
  const blocks = Math.floor(bytes.length / 4);
  const rotl = (x: number, r: number) => ((x << r) | (x >>> (32 - r))) >>> 0;
  for (let b = 0; b < blocks; b++) {
    let k = bytes[4 * b] | (bytes[4 * b + 1] << 8) | (bytes[4 * b + 2] << 16) |
      (bytes[4 * b + 3] << 24);
    k = Math.imul(rotl(Math.imul(k, c1) >>> 0, 15), c2);
    h = rotl((h ^ k) >>> 0, 13);
    h = (Math.imul(h, 5) + 0xe6546b64) >>> 0;
  }
  let k = 0;
  const tail = bytes.length & 3;
  const t = 4 * blocks;
  if (tail >= 3) k ^= bytes[t + 2] << 16;
  if (tail >= 2) k ^= bytes[t + 1] << 8;
  if (tail >= 1) {
    k ^= bytes[t];
    k = Math.imul(rotl(Math.imul(k, c1) >>> 0, 15), c2);
    h = (h ^ k) >>> 0;
  }
  h = (h ^ bytes.length) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

async function runDropout(
  gpu: Gpu,
  x: Float32Array,
  state: Tensor,
  p: number,
  stream: number,
): Promise<Float32Array> {
  const X = gpu.upload("x", x);
  const out = gpu.upload("out", new Float32Array(x.length).fill(NaN));
  await gpu.run(dropoutForward(gpu, { x: X, out, state, p, stream }));
  return await gpu.read(out) as Float32Array;
}

Deno.test("dropoutHash() is MurmurHash3_x86_32 of [seed, step, stream, i] (published test vectors)", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  assert.equal(murmur3(enc(""), 0), 0);
  assert.equal(murmur3(enc(""), 1), 0x514e28b7);
  assert.equal(murmur3(new Uint8Array(4), 0), 0x2362f9de);
  assert.equal(murmur3(enc("Hello, world!"), 0x9747b28c), 0x24884cba);
  assert.equal(murmur3(enc("The quick brown fox jumps over the lazy dog"), 0x9747b28c), 0x2fa826cd);
  const rng = new Rng(31);
  for (let t = 0; t < 200; t++) {
    const words = Uint32Array.from({ length: 4 }, () => Math.floor(rng.next() * 2 ** 32));
    const [seed, step, stream, i] = words;
    assert.equal(dropoutHash(seed, step, stream, i), murmur3(new Uint8Array(words.buffer), 0));
  }
});

Deno.test("dropoutThreshold() encodes keep iff h / 2^32 >= p exactly, with p = 0 and p = 1 as edge cases", () => {
  assert.deepEqual(dropoutThreshold(0), { threshold: 0, keepNone: 0, scale: 1 });
  assert.deepEqual(dropoutThreshold(1), { threshold: 0, keepNone: 1, scale: 0 });
  assert.deepEqual(dropoutThreshold(1 - 2 ** -40), { threshold: 0, keepNone: 1, scale: 0 });
  assert.equal(dropoutThreshold(0.1).threshold, 429496730); // ceil(0.1 · 2^32)
  assert.equal(dropoutThreshold(0.1).scale, Math.fround(1 / 0.9));
  assert.equal(dropoutThreshold(2 ** -32).threshold, 1);
  assert.throws(() => dropoutThreshold(1.5), /p must be in \[0, 1\], got 1.5/);
  assert.throws(() => dropoutThreshold(NaN), RangeError);
});

Deno.test("dropoutBackwardCpu() matches float64 finite differences for a fixed mask", () => {
  const rng = new Rng(32);
  const spec = { seed: 7, step: 3, stream: 1, p: 0.3 };
  const x = f64(rng.normal(64));
  const w = f64(rng.normal(64));
  const analytic = dropoutBackwardCpu(w, spec);
  const numeric = finiteDiff((v) => dot(w, dropoutForwardCpu(v, spec)), x);
  assertClose(analytic, numeric, { atol: 1e-8, rtol: 1e-7, label: "dx" });
  assert.ok(analytic.some((g) => g === 0) && analytic.some((g) => g !== 0), "mask mixes 0 and 1");
});

Deno.test("dropoutMaskCpu() keeps a fraction 1 − p of the elements, within 5 standard deviations", () => {
  const n = 200_000;
  for (const p of [0.1, 0.5, 0.9]) {
    const kept = dropoutMaskCpu(n, { seed: 42, step: 1, stream: 0, p }).reduce((a, b) => a + b, 0);
    const sd = Math.sqrt(p * (1 - p) / n);
    assert.ok(Math.abs(kept / n - (1 - p)) < 5 * sd, `p=${p}: kept fraction ${kept / n}`);
  }
});

gpuTest(
  "dropoutForward() equals the CPU reference bit for bit (mask and values) for N not a multiple of 256",
  async (gpu) => {
    const rng = new Rng(33);
    const n = 100_003;
    const x = rng.normal(n, 3);
    // zeros and huge values (no subnormals: a GPU may flush them to zero)
    x.set([0, -0, 3e38, -3e38, 1e-30], 0);
    const state = dropoutState(gpu, { seed: 123456789, step: 77 });
    for (const [p, stream] of [[0.1, 0], [0.5, 9], [0.97, 0xffffffff]]) {
      const got = await runDropout(gpu, x, state, p, stream);
      const want = Float32Array.from(
        dropoutForwardCpu(x, { seed: 123456789, step: 77, stream, p }),
      );
      const mask = dropoutMaskCpu(n, { seed: 123456789, step: 77, stream, p });
      for (let i = 0; i < n; i++) {
        if (!Object.is(got[i], want[i]) && !(got[i] === 0 && want[i] === 0)) {
          assert.fail(
            `p=${p} stream=${stream}: element ${i} is ${got[i]}, expected ${want[i]} ` +
              `(mask ${mask[i]}, x ${x[i]})`,
          );
        }
      }
      const kept = mask.reduce((a, b) => a + b, 0);
      const sd = Math.sqrt(p * (1 - p) / n);
      assert.ok(Math.abs(kept / n - (1 - p)) < 5 * sd, `p=${p}: kept ${kept} of ${n}`);
    }
  },
);

gpuTest(
  "dropoutForward() draws a new mask after setDropoutState() changes the step, without rebuilding the op",
  async (gpu) => {
    const n = 4097;
    const ones = new Float32Array(n).fill(1);
    const state = dropoutState(gpu, { seed: 5, step: 1 });
    const X = gpu.upload("x", ones);
    const out = gpu.tensor("out", [n]);
    const op = dropoutForward(gpu, { x: X, out, state, p: 0.5, stream: 2 });
    const masks: Float32Array[] = [];
    for (const step of [1, 2, 1]) {
      setDropoutState(gpu, state, { seed: 5, step });
      await gpu.run(op);
      const got = await gpu.read(out) as Float32Array;
      const want = dropoutMaskCpu(n, { seed: 5, step, stream: 2, p: 0.5 });
      assert.deepEqual([...got].map((v) => (v ? 1 : 0)), [...want], `step ${step}`);
      masks.push(got);
    }
    const same = (a: Float32Array, b: Float32Array) =>
      a.reduce((s, v, i) => s + (v === b[i] ? 1 : 0), 0) / n;
    assert.ok(
      same(masks[0], masks[1]) < 0.6,
      "step 2's mask differs from step 1's (about half agree)",
    );
    assert.deepEqual(masks[2], masks[0], "step 1 again gives step 1's mask");
    const other = await runDropout(gpu, ones, state, 0.5, 3);
    assert.ok(same(other, masks[0]) < 0.6, "another stream gives another mask");
    setDropoutState(gpu, state, { seed: 6, step: 1 });
    const seeded = await runDropout(gpu, ones, state, 0.5, 2);
    assert.ok(same(seeded, masks[0]) < 0.6, "another seed gives another mask");
  },
);

gpuTest(
  "dropoutBackward() reuses the forward's mask and scale, and accumulates when asked",
  async (gpu) => {
    const rng = new Rng(34);
    const n = 3001;
    const spec = { seed: 99, step: 12, stream: 4, p: 0.3 };
    const state = dropoutState(gpu, spec);
    const x = rng.uniform(n, 0.5, 2); // never zero: a zero output means dropped
    const y = await runDropout(gpu, x, state, spec.p, spec.stream);
    const dout = rng.normal(n);
    const dx0 = rng.normal(n);
    const dX = gpu.upload("dx", dx0);
    await gpu.run(dropoutBackward(gpu, {
      dx: dX,
      dout: gpu.upload("dout", dout),
      state,
      p: spec.p,
      stream: spec.stream,
      accumulate: true,
    }));
    const dx = await gpu.read(dX);
    const scale = Math.fround(1 / 0.7);
    for (let i = 0; i < n; i++) {
      const kept = y[i] !== 0;
      const want = Math.fround(dx0[i] + (kept ? Math.fround(dout[i] * scale) : 0));
      assert.equal(dx[i], want, `element ${i} (kept ${kept})`);
    }
  },
);

gpuTest(
  "dropoutForward() with p = 0 is the identity and with p = 1 writes zeros, even for inf and NaN",
  async (gpu) => {
    const rng = new Rng(35);
    const x = rng.normal(777, 1e20);
    const state = dropoutState(gpu, { seed: 1, step: 1 });
    assert.deepEqual(await runDropout(gpu, x, state, 0, 0), x);
    const special = new Float32Array([Infinity, -Infinity, NaN, 1, -0]);
    const zeros = await runDropout(gpu, special, state, 1, 0);
    assert.deepEqual([...zeros].map((v) => v === 0), [true, true, true, true, true]);
  },
);

gpuTest(
  "dropoutForward() matches the CPU mask for 65535 · 256 + 4099 elements (folded grid)",
  async (gpu) => {
    const n = 65535 * 256 + 4099;
    const spec = { seed: 2024, step: 3, stream: 11, p: 0.25 };
    const state = dropoutState(gpu, spec);
    const got = await runDropout(gpu, new Float32Array(n).fill(3), state, spec.p, spec.stream);
    const mask = dropoutMaskCpu(n, spec);
    let bad = -1;
    for (let i = 0; i < n; i++) {
      if (got[i] !== (mask[i] ? 4 : 0)) {
        bad = i;
        break;
      }
    }
    assert.equal(bad, -1, `first mismatch at ${bad}: got ${got[bad]}, mask ${mask[bad]}`);
  },
);

gpuTest(
  "dropoutForward() and dropoutBackward() reject mismatched shapes, dtypes and bad parameters before dispatching",
  (gpu) => {
    const state = dropoutState(gpu);
    const x = gpu.tensor("x", [4, 6]);
    assert.throws(
      () => dropoutForward(gpu, { x, out: gpu.tensor("out", [24]), state, p: 0.1, stream: 0 }),
      (e: Error) =>
        e instanceof ShapeError &&
        e.message === "dropout: out must have the shape of x: x (4, 6), out (24)",
    );
    assert.throws(
      () =>
        dropoutBackward(gpu, {
          dx: gpu.tensor("dx", [4, 6]),
          dout: gpu.tensor("dout", [6, 4]),
          state,
          p: 0.1,
          stream: 0,
        }),
      /dropout_backward: dx must have the shape of dout: dout \(6, 4\), dx \(4, 6\)/,
    );
    assert.throws(
      () =>
        dropoutForward(gpu, {
          x,
          out: gpu.tensor("oi", [4, 6], "i32"),
          state,
          p: 0.1,
          stream: 0,
        }),
      /oi\(4, 6\) i32 must be f32/,
    );
    assert.throws(
      () =>
        dropoutForward(gpu, {
          x,
          out: gpu.tensor("o", [4, 6]),
          state: gpu.tensor("st", [2]),
          p: 0.1,
          stream: 0,
        }),
      /state st\(2\) f32 must be \(2\) u32/,
    );
    assert.throws(
      () => dropoutForward(gpu, { x, out: gpu.tensor("o", [4, 6]), state, p: -0.1, stream: 0 }),
      /p must be in \[0, 1\], got -0.1/,
    );
    assert.throws(
      () => dropoutForward(gpu, { x, out: gpu.tensor("o", [4, 6]), state, p: 0.1, stream: 1.5 }),
      /stream must be an integer in \[0, 2\^32\), got 1.5/,
    );
    assert.throws(() => setDropoutState(gpu, state, { seed: -1 }), /seed must be an integer/);
  },
);
