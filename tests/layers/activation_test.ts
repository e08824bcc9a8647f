import assert from "node:assert/strict";
import {
  gatedGelu,
  gatedGeluBackward,
  gatedGeluBackwardCpu,
  gatedGeluCpu,
  gelu,
  geluBackward,
  geluBackwardCpu,
  geluCpu,
  relu,
  reluBackward,
  reluBackwardCpu,
  reluCpu,
} from "../../src/layers/activation.ts";
import { addCpu } from "../../src/layers/elementwise.ts";
import { assertShapeError, gpuTest } from "../gpu_support.ts";
import { assertClose, dot, f64, finiteDiff, Rng } from "../numeric.ts";

/** Inputs that break naive tanh/exp formulations, plus the GELU's curved region. */
const EXTREMES = [
  0,
  -0,
  1e-7,
  -1e-7,
  0.5,
  -0.5,
  -0.75,
  -3,
  -5,
  -8,
  -9.5,
  10,
  -10,
  100,
  -100,
  1e4,
  -1e4,
  1e30,
  -1e30,
  3e38,
  -3e38,
];

// f32 GELU through exp: a few ulps relative; atol covers the vanishing negative tail.
const GELU_TOL = { atol: 1e-7, rtol: 2e-6 };

Deno.test("reluBackwardCpu(), geluBackwardCpu() and gatedGeluBackwardCpu() match float64 finite differences", () => {
  const rng = new Rng(21);
  const n = 40;
  const x = f64(rng.normal(n, 2));
  for (let i = 0; i < n; i++) if (Math.abs(x[i]) < 1e-3) x[i] = 0.5; // ReLU's kink
  const up = f64(rng.normal(n));
  const w = f64(rng.normal(n));
  const opts = { atol: 1e-8, rtol: 1e-6 };
  assertClose(reluBackwardCpu(w, x), finiteDiff((v) => dot(w, reluCpu(v)), x), {
    ...opts,
    label: "relu dx",
  });
  assertClose(geluBackwardCpu(w, x), finiteDiff((v) => dot(w, geluCpu(v)), x), {
    ...opts,
    label: "gelu dx",
  });
  const { dgate, dup } = gatedGeluBackwardCpu(w, x, up);
  assertClose(dgate, finiteDiff((v) => dot(w, gatedGeluCpu(v, up)), x), {
    ...opts,
    label: "gated dgate",
  });
  assertClose(dup, finiteDiff((v) => dot(w, gatedGeluCpu(x, v)), up), {
    ...opts,
    label: "gated dup",
  });
});

Deno.test("geluCpu() is Hugging Face's gelu_new at known points", () => {
  // torch: transformers.activations.NewGELUActivation()(torch.tensor([...], dtype=float64))
  const got = geluCpu([-3, -1, 0, 0.5, 1, 2]);
  const hf = [
    -0.0036373920817729943,
    -0.1588080093917233,
    0,
    0.34571400982514394,
    0.8411919906082768,
    1.954597694087775,
  ];
  assertClose(got, hf, { atol: 1e-15, rtol: 1e-14, label: "gelu_new" });
});

gpuTest(
  "relu(), gelu() and gatedGelu() match the CPU reference when N is not a multiple of 256",
  async (gpu) => {
    const rng = new Rng(22);
    const shape = [13, 77];
    const n = 13 * 77;
    const x = rng.normal(n, 3), up = rng.normal(n);
    const X = gpu.upload("x", x, shape), Up = gpu.upload("up", up, shape);
    const r = gpu.tensor("relu", shape), g = gpu.tensor("gelu", shape);
    const gg = gpu.tensor("gated", shape);
    await gpu.run([
      relu(gpu, { x: X, out: r }),
      gelu(gpu, { x: X, out: g }),
      gatedGelu(gpu, { gate: X, up: Up, out: gg }),
    ]);
    assertClose(await gpu.read(r), reluCpu(x), { atol: 0, rtol: 0, label: "relu" });
    assertClose(await gpu.readF64(g), geluCpu(x), { ...GELU_TOL, label: "gelu" });
    assertClose(await gpu.readF64(gg), gatedGeluCpu(x, up), { ...GELU_TOL, label: "gated" });
  },
);

gpuTest(
  "reluBackward(), geluBackward() and gatedGeluBackward() match the CPU reference, overwriting or accumulating",
  async (gpu) => {
    const rng = new Rng(23);
    const shape = [7, 143];
    const n = 7 * 143;
    const x = rng.normal(n, 3), up = rng.normal(n), d = rng.normal(n);
    const g0 = rng.normal(n), h0 = rng.normal(n);
    const X = gpu.upload("x", x, shape), Up = gpu.upload("up", up, shape);
    const D = gpu.upload("dout", d, shape);
    for (const accumulate of [false, true]) {
      const dr = gpu.upload("drelu", g0, shape), dg = gpu.upload("dgelu", g0, shape);
      const dgate = gpu.upload("dgate", g0, shape), dup = gpu.upload("dup", h0, shape);
      await gpu.run([
        reluBackward(gpu, { dout: D, x: X, dx: dr, accumulate }),
        geluBackward(gpu, { dout: D, x: X, dx: dg, accumulate }),
        gatedGeluBackward(gpu, { dout: D, gate: X, up: Up, dgate, dup, accumulate }),
      ]);
      const plus = (r: Float64Array, base: Float32Array) => accumulate ? addCpu(r, base) : r;
      const ref = gatedGeluBackwardCpu(d, x, up);
      const tol = { atol: 1e-6, rtol: 1e-5 };
      const l = `accumulate=${accumulate}`;
      assertClose(await gpu.read(dr), plus(reluBackwardCpu(d, x), g0), {
        ...tol,
        label: `relu ${l}`,
      });
      assertClose(await gpu.read(dg), plus(geluBackwardCpu(d, x), g0), {
        ...tol,
        label: `gelu ${l}`,
      });
      assertClose(await gpu.readF64(dgate), plus(ref.dgate, g0), { ...tol, label: `dgate ${l}` });
      assertClose(await gpu.readF64(dup), plus(ref.dup, h0), { ...tol, label: `dup ${l}` });
    }
  },
);

gpuTest(
  "gelu(), gatedGelu() and their backward stay finite and accurate at extreme inputs (±10 … ±3e38, 0, negatives)",
  async (gpu) => {
    const x = Float32Array.from(EXTREMES);
    const n = x.length;
    const up = new Float32Array(n).fill(0.75);
    const d = new Float32Array(n).fill(1);
    const X = gpu.upload("x", x), Up = gpu.upload("up", up), D = gpu.upload("dout", d);
    const g = gpu.tensor("gelu", [n]), gg = gpu.tensor("gated", [n]);
    const dx = gpu.tensor("dx", [n]), dgate = gpu.tensor("dgate", [n]);
    const dup = gpu.tensor("dup", [n]);
    await gpu.run([
      gelu(gpu, { x: X, out: g }),
      gatedGelu(gpu, { gate: X, up: Up, out: gg }),
      geluBackward(gpu, { dout: D, x: X, dx }),
      gatedGeluBackward(gpu, { dout: D, gate: X, up: Up, dgate, dup }),
    ]);
    const ref = gatedGeluBackwardCpu(d, x, up);
    const results: [string, Float64Array, Float64Array][] = [
      ["gelu", await gpu.readF64(g), geluCpu(x)],
      ["gated", await gpu.readF64(gg), gatedGeluCpu(x, up)],
      ["dx", await gpu.readF64(dx), geluBackwardCpu(d, x)],
      ["dgate", await gpu.readF64(dgate), ref.dgate],
      ["dup", await gpu.readF64(dup), ref.dup],
    ];
    for (const [name, got, want] of results) {
      const bad = [...got].findIndex((v) => !Number.isFinite(v));
      assert.equal(bad, -1, `${name}: got ${got[bad]} at x = ${x[bad]}`);
      assertClose(got, want, { ...GELU_TOL, label: name });
    }
  },
);

gpuTest(
  "relu() and reluBackward() handle zeros, negatives and huge values exactly",
  async (gpu) => {
    const x = Float32Array.from(EXTREMES);
    const n = x.length;
    const d = Float32Array.from(EXTREMES, (_, i) => i + 1);
    const X = gpu.upload("x", x), D = gpu.upload("dout", d);
    const out = gpu.tensor("out", [n]), dx = gpu.tensor("dx", [n]);
    await gpu.run([relu(gpu, { x: X, out }), reluBackward(gpu, { dout: D, x: X, dx })]);
    assertClose(await gpu.read(out), reluCpu(x), { atol: 0, rtol: 0, label: "relu" });
    assertClose(await gpu.readF64(dx), reluBackwardCpu(d, x), { atol: 0, rtol: 0, label: "dx" });
  },
);

gpuTest(
  "geluBackward() works in place (dx = dout) over more than 65535 workgroups (the folded grid)",
  async (gpu) => {
    const n = 65536 * 256 + 77; // more than 65535 workgroups of 256
    // a cheap deterministic spread over [-10, 10] (a seeded normal would take seconds here)
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = ((i * 7919) % 2001 - 1000) / 100;
    const X = gpu.upload("x", x);
    const D = gpu.tensor("dout", [n]);
    gpu.write(D, new Float32Array(n).fill(1));
    await gpu.run(geluBackward(gpu, { dout: D, x: X, dx: D }));
    const got = await gpu.read(D);
    // check a stride through the whole range, including the tail and the fold boundary
    const idx = Array.from({ length: 4001 }, (_, i) => Math.min(n - 1, i * Math.floor(n / 4000)));
    idx.push(n - 1, n - 2, 65535 * 256 - 1, 65535 * 256, 65536 * 256);
    const pick = (a: ArrayLike<number>) => idx.map((i) => a[i]);
    assertClose(pick(got), geluBackwardCpu(idx.map(() => 1), pick(x)), {
      atol: 1e-6,
      rtol: 1e-5,
      label: "dx in place",
    });
    gpu.freeBuffer(X.buffer);
    gpu.freeBuffer(D.buffer);
  },
);

gpuTest(
  "relu(), gelu(), gatedGelu() and their backward reject mismatched shapes and dtypes before dispatching",
  (gpu) => {
    const a = gpu.tensor("a", [4, 5]);
    const b = gpu.tensor("b", [5, 4]);
    const c = gpu.tensor("c", [4, 5]);
    const ai = gpu.tensor("ai", [4, 5], "i32");
    assertShapeError(gpu, () => relu(gpu, { x: a, out: b }), "relu", "a(4, 5) f32", "b(5, 4) f32");
    assertShapeError(gpu, () => gelu(gpu, { x: a, out: b }), "gelu", "a(4, 5)", "b(5, 4)");
    assertShapeError(
      gpu,
      () => geluBackward(gpu, { dout: b, x: a, dx: c }),
      "gelu_backward",
      "a(4, 5)",
      "b(5, 4)",
    );
    assertShapeError(
      gpu,
      () => reluBackward(gpu, { dout: c, x: a, dx: b }),
      "relu_backward",
      "a(4, 5)",
      "b(5, 4)",
    );
    assertShapeError(
      gpu,
      () => gatedGelu(gpu, { gate: a, up: b, out: c }),
      "gated_gelu",
      "gate = a(4, 5)",
      "up = b(5, 4)",
    );
    assertShapeError(
      gpu,
      () => gatedGeluBackward(gpu, { dout: c, gate: a, up: c, dgate: c, dup: b }),
      "gated_gelu_backward",
      "a(4, 5)",
      "dup = b(5, 4)",
    );
    assertShapeError(gpu, () => gelu(gpu, { x: ai, out: c }), "gelu", "ai(4, 5) i32 must be f32");
  },
);
