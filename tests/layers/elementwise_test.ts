import assert from "node:assert/strict";
import {
  add,
  addBackward,
  addBackwardCpu,
  addCpu,
  residualAdd,
  residualAddCpu,
  scale,
  scaleBackward,
  scaleBackwardCpu,
  scaleCpu,
} from "../../src/layers/elementwise.ts";
import { assertShapeError, gpuTest } from "../gpu_support.ts";
import { assertClose, dot, f64, finiteDiff, Rng } from "../numeric.ts";

/** Random values with extremes mixed in: ±1e30, ±1e4, 0, -0, and tiny normals. */
function withExtremes(rng: Rng, n: number): Float32Array {
  const a = rng.normal(n, 3);
  const extremes = [1e30, -1e30, 1e4, -1e4, 0, -0, 1e-30, -1e-30, 3e38, -3e38];
  for (let i = 0; i < n; i += 7) a[i] = extremes[(i / 7) % extremes.length];
  return a;
}

// f32 addition and multiplication round once: 2^-24 relative to the exact result.
const EXACT = { atol: 1e-37, rtol: 1.2e-7 };

Deno.test("addBackwardCpu(), scaleBackwardCpu() and residualAddCpu() match float64 finite differences", () => {
  const rng = new Rng(11);
  const n = 9;
  const a = f64(rng.normal(n)), b = f64(rng.normal(n)), w = f64(rng.normal(n));
  const { da, db } = addBackwardCpu(w);
  assertClose(da, finiteDiff((x) => dot(w, addCpu(x, b)), a), { atol: 1e-8, label: "add da" });
  assertClose(db, finiteDiff((x) => dot(w, addCpu(a, x)), b), { atol: 1e-8, label: "add db" });
  const alpha = -1.7;
  assertClose(
    scaleBackwardCpu(w, alpha),
    finiteDiff((x) => dot(w, scaleCpu(x, alpha)), a),
    { atol: 1e-8, label: "scale dx" },
  );
  // residual: x_new = x + y, so both receive the output gradient unchanged
  assertClose(w, finiteDiff((x) => dot(w, residualAddCpu(x, b)), a), { atol: 1e-8, label: "dx" });
  assertClose(w, finiteDiff((y) => dot(w, residualAddCpu(a, y)), b), { atol: 1e-8, label: "dy" });
});

gpuTest(
  "add(), scale() and residualAdd() match the CPU reference when N is not a multiple of 256",
  async (gpu) => {
    const rng = new Rng(12);
    const shape = [13, 77];
    const n = 13 * 77;
    const a = withExtremes(rng, n), b = withExtremes(rng, n);
    const A = gpu.upload("a", a, shape), B = gpu.upload("b", b, shape);
    const out = gpu.tensor("out", shape);
    const scaled = gpu.tensor("scaled", shape);
    const X = gpu.upload("x", a, shape);
    await gpu.run([
      add(gpu, { a: A, b: B, out }),
      scale(gpu, { x: A, out: scaled, alpha: -0.37 }),
      residualAdd(gpu, { x: X, y: B }),
    ]);
    // extremes may overflow to ±Infinity in f32, exactly as the f32 rounding of the reference
    const asF32 = (r: Float64Array) => f64(Float32Array.from(r));
    assertClose(await gpu.read(out), asF32(addCpu(a, b)), { ...EXACT, label: "add" });
    assertClose(await gpu.read(scaled), asF32(scaleCpu(a, -0.37)), { ...EXACT, label: "scale" });
    assertClose(await gpu.read(X), asF32(residualAddCpu(a, b)), { ...EXACT, label: "residual" });
  },
);

gpuTest(
  "addBackward() and scaleBackward() overwrite or accumulate into the gradients",
  async (gpu) => {
    const rng = new Rng(13);
    const n = 1001;
    const d = rng.normal(n), g0 = rng.normal(n), h0 = rng.normal(n);
    const dout = gpu.upload("dout", d);
    const da = gpu.upload("da", g0), db = gpu.upload("db", h0);
    await gpu.run(addBackward(gpu, { dout, da, db, accumulate: true }));
    assertClose(await gpu.read(da), addCpu(g0, d), { ...EXACT, label: "da +=" });
    assertClose(await gpu.read(db), addCpu(h0, d), { ...EXACT, label: "db +=" });
    await gpu.run(addBackward(gpu, { dout, db }));
    assertClose(await gpu.read(db), d, { atol: 0, rtol: 0, label: "db =" });

    const dx = gpu.upload("dx", g0);
    await gpu.run(scaleBackward(gpu, { dout, dx, alpha: 3.5, accumulate: true }));
    assertClose(await gpu.read(dx), addCpu(g0, scaleBackwardCpu(d, 3.5)), {
      atol: 1e-6,
      rtol: 3e-7, // two roundings: the product, then the sum
      label: "dx +=",
    });
    // in place, without accumulation: dout itself becomes dx
    const inplace = gpu.upload("inplace", d);
    await gpu.run(scaleBackward(gpu, { dout: inplace, dx: inplace, alpha: 0.5 }));
    assertClose(await gpu.read(inplace), scaleBackwardCpu(d, 0.5), { ...EXACT, label: "dx =" });
  },
);

gpuTest(
  "scale() and residualAdd() cover more than 65535 workgroups (the folded grid)",
  async (gpu) => {
    const n = 65536 * 256 + 300; // 65538 workgroups of 256: folded into (x, y)
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = (i % 1000) - 500;
    const X = gpu.upload("x", x);
    const Y = gpu.tensor("y", [n]);
    await gpu.run([scale(gpu, { x: X, out: Y, alpha: 2 }), residualAdd(gpu, { x: Y, y: X })]);
    const y = await gpu.read(Y);
    let bad = -1;
    for (let i = 0; i < n && bad < 0; i++) if (y[i] !== 3 * x[i]) bad = i;
    assert.equal(bad, -1, `element ${bad}: got ${y[bad]}, expected ${3 * x[bad]}`);
    gpu.freeBuffer(X.buffer);
    gpu.freeBuffer(Y.buffer);
  },
);

gpuTest(
  "add(), scale(), residualAdd() and addBackward() reject mismatched shapes and dtypes before dispatching",
  (gpu) => {
    const a = gpu.tensor("a", [4, 5]);
    const b = gpu.tensor("b", [5, 4]);
    const c = gpu.tensor("c", [4, 5]);
    const o = gpu.tensor("o", [20]);
    const ai = gpu.tensor("ai", [4, 5], "i32");
    assertShapeError(gpu, () => add(gpu, { a, b, out: c }), "add", "a(4, 5) f32", "b(5, 4) f32");
    assertShapeError(
      gpu,
      () => add(gpu, { a, b: c, out: o }),
      "add",
      "a(4, 5)",
      "o(20)",
    );
    assertShapeError(
      gpu,
      () => scale(gpu, { x: a, out: b, alpha: 2 }),
      "scale",
      "a(4, 5)",
      "b(5, 4)",
    );
    assertShapeError(
      gpu,
      () => residualAdd(gpu, { x: a, y: b }),
      "residual_add",
      "a(4, 5)",
      "b(5, 4)",
    );
    assertShapeError(
      gpu,
      () => addBackward(gpu, { dout: a, db: b }),
      "add_backward",
      "a(4, 5)",
      "b(5, 4)",
    );
    assertShapeError(
      gpu,
      () => add(gpu, { a: ai, b: c, out: c }),
      "add",
      "ai(4, 5) i32 must be f32",
    );
    assertShapeError(
      gpu,
      () => scaleBackward(gpu, { dout: c, dx: ai, alpha: 1 }),
      "scale_backward",
      "ai(4, 5) i32",
    );
  },
);
