import assert from "node:assert/strict";
import { ShapeError } from "../../src/gpu/errors.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import {
  AdamW,
  ADAMW_HYPER_WIDTH,
  adamwHyper,
  adamwHyperRow,
  adamwStep,
  adamwStepCpu,
  clipGradNorm,
  clipGradNormCpu,
  scaleByNorm,
} from "../../src/optim/adamw.ts";
import { globalL2Norm } from "../../src/layers/reduce.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose, f64, Rng } from "../numeric.ts";

/** tests/fixtures/adamw_torch.json, written by tools/make_adamw_fixture.py. */
interface TorchFixture {
  torch: string;
  betas: [number, number];
  eps: number;
  max_norm: number;
  cases: {
    name: string;
    groups: { name: string; lr: number; weight_decay: number; params: string[] }[];
    shapes: Record<string, number[]>;
    init: Record<string, number[]>;
    steps: {
      lr: number[];
      grads: Record<string, number[]>;
      norm: number;
      params: Record<string, number[]>;
    }[];
  }[];
}

const fixture: TorchFixture = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/adamw_torch.json", import.meta.url)),
);

Deno.test("adamwHyperRow() derives PyTorch's scalars in float64 for step t", () => {
  const row = adamwHyperRow({ lr: 0.3, beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0.01 }, 3);
  assert.deepEqual(row, [
    1 - 0.3 * 0.01,
    1 - 0.9,
    0.999,
    1 - 0.999,
    0.3 / (1 - 0.9 ** 3),
    (1 - 0.999 ** 3) ** 0.5,
    1e-6,
    0.3,
  ]);
  assert.deepEqual(adamwHyper([{ lr: 1 }, { lr: 2 }], 1).length, 2 * ADAMW_HYPER_WIDTH);
  assert.throws(() => adamwHyperRow({ lr: 0.1 }, 0), /step must be an integer >= 1, got 0/);
  assert.throws(() => adamwHyperRow({ lr: -1 }, 1), /lr must be a finite number >= 0, got -1/);
  assert.throws(() => adamwHyperRow({ lr: 1, beta2: 1 }, 1), /betas must be in \[0, 1\)/);
});

Deno.test("adamwStepCpu() and clipGradNormCpu() replay PyTorch's AdamW steps (float64 vs float32)", () => {
  for (const c of fixture.cases) {
    const names = Object.keys(c.shapes);
    type State = Record<string, Float64Array>;
    const params: State = Object.fromEntries(names.map((k) => [k, f64(c.init[k])]));
    const zeros = () =>
      Object.fromEntries(names.map((k) => [k, new Float64Array(c.init[k].length)]));
    const m: State = zeros(), v: State = zeros();
    c.steps.forEach((s, t) => {
      const grads = names.map((k) => f64(s.grads[k]));
      const norm = clipGradNormCpu(grads, fixture.max_norm);
      assertClose([norm], [s.norm], { rtol: 1e-6, label: `${c.name} step ${t + 1} norm` });
      c.groups.forEach((g, gi) => {
        for (const k of g.params) {
          const r = adamwStepCpu(
            { param: params[k], grad: grads[names.indexOf(k)], m: m[k], v: v[k] },
            {
              lr: s.lr[gi],
              beta1: fixture.betas[0],
              beta2: fixture.betas[1],
              eps: fixture.eps,
              weightDecay: g.weight_decay,
              step: t + 1,
            },
          );
          [params[k], m[k], v[k]] = [r.param, r.m, r.v];
          assertClose(params[k], s.params[k], {
            atol: 1e-6,
            rtol: 1e-6,
            label: `${c.name} step ${t + 1} ${k}`,
          });
        }
      });
    });
  }
});

for (const inside of [false, true]) {
  gpuTest(
    `AdamW with ${
      inside ? "the clipping inside its steps" : "clipGradNorm()"
    } reproduces PyTorch ${fixture.torch} AdamW + clip_grad_norm_ over 5 scheduled steps`,
    async (gpu) => {
      for (const c of fixture.cases) {
        const names = Object.keys(c.shapes);
        const P = Object.fromEntries(
          names.map((k) => [k, gpu.upload(k, Float32Array.from(c.init[k]), c.shapes[k])]),
        );
        const G = Object.fromEntries(names.map((k) => [k, gpu.tensor(`d${k}`, c.shapes[k])]));
        const norm = gpu.tensor("grad_norm", [1]);
        const grads = names.map((k) => G[k]);
        const opt = new AdamW(
          gpu,
          c.groups.map((g) => ({
            params: g.params.map((k) => ({ param: P[k], grad: G[k] })),
            lr: g.lr,
            beta1: fixture.betas[0],
            beta2: fixture.betas[1],
            eps: fixture.eps,
            weightDecay: g.weight_decay,
          })),
          inside ? { clip: { norm, maxNorm: fixture.max_norm } } : {},
        );
        const ops = [
          ...(inside
            ? [globalL2Norm(gpu, { tensors: grads, out: norm })]
            : clipGradNorm(gpu, { grads, norm, maxNorm: fixture.max_norm })),
          ...opt.ops,
        ];
        for (const [t, s] of c.steps.entries()) {
          for (const k of names) gpu.write(G[k], Float32Array.from(s.grads[k]));
          opt.setStep(t + 1, s.lr);
          await gpu.run(ops);
          const tag = `${c.name} step ${t + 1}`;
          assertClose(await gpu.read(norm), [s.norm], { rtol: 1e-6, label: `${tag} norm` });
          for (const k of names) {
            // f32 on both sides; differences come only from rounding order (lerp/FMA, sums)
            assertClose(await gpu.read(P[k]), s.params[k], {
              atol: 1e-7,
              rtol: 1e-6,
              label: `${tag} ${k}`,
            });
          }
        }
      }
    },
  );
}

gpuTest(
  "adamwStep() matches the CPU reference for 1001 elements from nonzero moments at step 7",
  async (gpu) => {
    const rng = new Rng(51);
    const n = 1001;
    const p = rng.normal(n), g = rng.normal(n, 0.1), m = rng.normal(n, 0.05);
    const v = rng.uniform(n, 0, 0.01);
    g.set([0, 1e10, -1e-10, 0], 0); // a zero, a huge and a tiny gradient
    m.set([0, 0, 0, 0], 0);
    v.set([0, 0, 0, 0], 0);
    const h = { lr: 1e-3, beta1: 0.85, beta2: 0.99, eps: 1e-6, weightDecay: 0.1 };
    const hyper = gpu.upload("hyper", adamwHyper([{ lr: 5 }, h], 7), [2, ADAMW_HYPER_WIDTH]);
    const T = (name: string, a: Float32Array) => gpu.upload(name, a);
    const [P, Gr, M, Vt] = [T("p", p), T("g", g), T("m", m), T("v", v)];
    await gpu.run(adamwStep(gpu, { param: P, grad: Gr, m: M, v: Vt, hyper, group: 1 }));
    const want = adamwStepCpu({ param: p, grad: g, m, v }, { ...h, step: 7 });
    // f32 rounding of the inputs' scale (m, g ~ 0.1: ulp ~ 7e-9) bounds the absolute error
    assertClose(await gpu.read(M), want.m, { atol: 1e-8, rtol: 1e-6, label: "m" });
    assertClose(await gpu.read(Vt), want.v, { atol: 1e-11, rtol: 1e-6, label: "v" });
    assertClose(await gpu.read(P), want.param, { atol: 1e-7, rtol: 1e-6, label: "param" });
  },
);

gpuTest(
  "adamwStep() reads its hyperparameters at run time: a new lr takes effect without rebuilding",
  async (gpu) => {
    const n = 300;
    const P = gpu.upload("p", new Float32Array(n).fill(1));
    const Gr = gpu.upload("g", new Float32Array(n).fill(0.5));
    const M = gpu.tensor("m", [n]), V = gpu.tensor("v", [n]);
    const hyper = gpu.tensor("hyper", [1, ADAMW_HYPER_WIDTH]);
    const op = adamwStep(gpu, { param: P, grad: Gr, m: M, v: V, hyper, group: 0 });
    gpu.write(hyper, adamwHyper([{ lr: 0, weightDecay: 0 }], 1));
    await gpu.run(op);
    assert.ok((await gpu.read(P)).every((x) => x === 1), "lr 0 leaves the parameter unchanged");
    gpu.write(hyper, adamwHyper([{ lr: 0.1, weightDecay: 0 }], 2));
    await gpu.run(op);
    const want = adamwStepCpu(
      { param: [1], grad: [0.5], m: [0.05], v: [0.00025] },
      { lr: 0.1, weightDecay: 0, step: 2 },
    );
    assertClose(await gpu.read(P), new Float64Array(n).fill(want.param[0]), {
      atol: 1e-7,
      rtol: 1e-6,
      label: "param after the lr 0.1 step",
    });
  },
);

gpuTest(
  "clipGradNorm() scales every gradient by maxNorm / (norm + 1e-6) only when the norm exceeds maxNorm",
  async (gpu) => {
    const rng = new Rng(52);
    const arrays = [rng.normal(5000, 2), rng.normal(33), new Float32Array([-1e3, 0, 7])];
    for (const maxNorm of [1, 1e6]) {
      const grads = arrays.map((a, i) => gpu.upload(`g${i}`, a));
      const norm = gpu.tensor("norm", [1]);
      await gpu.run(clipGradNorm(gpu, { grads, norm, maxNorm }));
      const ref = arrays.map((a) => f64(a));
      const want = clipGradNormCpu(ref, maxNorm);
      assertClose(await gpu.read(norm), [want], { rtol: 1e-6, label: `norm maxNorm=${maxNorm}` });
      for (const [i, g] of grads.entries()) {
        const got = await gpu.read(g);
        if (maxNorm > want) {
          assert.deepEqual(got, arrays[i], `gradient ${i} is untouched below maxNorm`);
        } else {
          assertClose(got, ref[i], { atol: 1e-9, rtol: 1e-6, label: `clipped gradient ${i}` });
        }
      }
    }
    const zeros = gpu.tensor("zeros", [10]);
    const norm = gpu.tensor("norm", [1]);
    await gpu.run(clipGradNorm(gpu, { grads: [zeros], norm, maxNorm: 1 }));
    assert.ok((await gpu.read(zeros)).every((x) => x === 0), "zero gradients stay zero (no NaN)");
    assert.equal((await gpu.read(norm))[0], 0);
  },
);

gpuTest(
  "adamwStep(), scaleByNorm() and AdamW reject mismatched shapes, dtypes and groups before dispatching",
  (gpu) => {
    const t = (name: string, shape: number[], dtype: "f32" | "i32" = "f32"): Tensor =>
      gpu.tensor(name, shape, dtype);
    const hyper = t("hyper", [2, ADAMW_HYPER_WIDTH]);
    const base = { param: t("p", [3, 4]), grad: t("g", [3, 4]), m: t("m", [3, 4]), hyper };
    assert.throws(
      () => adamwStep(gpu, { ...base, v: t("v", [4, 3]), group: 0 }),
      (e: Error) =>
        e instanceof ShapeError &&
        e.message ===
          "adamw: v must have the shape of param: param (3, 4), grad (3, 4), m (3, 4), v (4, 3)",
    );
    assert.throws(
      () => adamwStep(gpu, { ...base, grad: t("gi", [3, 4], "i32"), v: t("v", [3, 4]), group: 0 }),
      /adamw: gi\(3, 4\) i32 must be f32/,
    );
    assert.throws(
      () => adamwStep(gpu, { ...base, v: t("v", [3, 4]), group: 2 }),
      /adamw: group 2 is not a row of hyper \(2, 8\) \(0..1\)/,
    );
    assert.throws(
      () => adamwStep(gpu, { ...base, v: t("v", [3, 4]), hyper: t("h7", [2, 7]), group: 0 }),
      /hyper h7\(2, 7\) f32 must be \(G, 8\)/,
    );
    assert.throws(
      () => scaleByNorm(gpu, { tensors: [t("x", [3])], norm: t("n2", [2]), maxNorm: 1 }),
      /scale_by_norm: norm n2\(2\) f32 must be \(1\) f32/,
    );
    assert.throws(
      () => scaleByNorm(gpu, { tensors: [t("x", [3])], norm: t("n", [1]), maxNorm: NaN }),
      /maxNorm must be a finite number >= 0, got NaN/,
    );
    assert.throws(
      () => new AdamW(gpu, [{ params: [{ param: t("p", [3]), grad: t("g", [4]) }], lr: 0.1 }]),
      /adamw\[0\]: grad must have the shape of param: param \(3\), grad \(4\)/,
    );
  },
);
