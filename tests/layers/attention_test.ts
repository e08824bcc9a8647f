import assert from "node:assert/strict";
import type { Gpu } from "../../src/gpu/device.ts";
import { ShapeError } from "../../src/gpu/errors.ts";
import { Tensor } from "../../src/gpu/tensor.ts";
import {
  attention,
  attentionBackward,
  attentionBackwardCpu,
  attentionCpu,
  type AttentionCpuOptions,
} from "../../src/layers/attention.ts";
import { setDropoutState } from "../../src/layers/dropout.ts";
import type { Loads } from "../../src/layers/loads.ts";
import { assertShapeError, gpuTest } from "../gpu_support.ts";
import { assertClose, dot, f64, finiteDiff, Rng } from "../numeric.ts";

/** Sizes that divide no workgroup or tile size. */
interface Case extends AttentionCpuOptions {
  name: string;
}

const CASES: Case[] = [
  { name: "self-attention with bias and mask", batch: 2, heads: 3, headDim: 5, lq: 7, lk: 7 },
  { name: "cross-attention, Lq != Lk", batch: 3, heads: 2, headDim: 3, lq: 5, lk: 11 },
  { name: "causal, one head", batch: 1, heads: 1, headDim: 7, lq: 9, lk: 9, causal: true },
  { name: "scaled", batch: 2, heads: 2, headDim: 4, lq: 3, lk: 6, scale: 0.5 },
  // past 128 keys the fused kernels recompute the scores instead of keeping the row
  { name: "long keys (recomputed rows)", batch: 2, heads: 2, headDim: 3, lq: 5, lk: 141 },
  // past 128 columns per head the keys' backward makes one pass per column
  {
    name: "wide heads (column passes), dropout",
    batch: 1,
    heads: 2,
    headDim: 131,
    lq: 3,
    lk: 4,
    dropout: { p: 0.25, seed: 4, step: 2, stream: 9 },
  },
];

/** The three implementations: the matmul path and the fused kernels with each kind of load. */
type Impl = "matmul path" | "fused, scalar loads" | "fused, vec4 loads";
const IMPLS: Impl[] = ["matmul path", "fused, scalar loads", "fused, vec4 loads"];

/** The attention options that select an implementation. */
function implOptions(impl: Impl): { fused: boolean; loads?: Loads } {
  if (impl === "matmul path") return { fused: false };
  return { fused: true, loads: impl === "fused, vec4 loads" ? "vec4" : "scalar" };
}

/** A head size the implementation takes: vec4 loads need a multiple of 4 (5 becomes 8). */
function headDimFor(impl: Impl, D: number): number {
  return impl === "fused, vec4 loads" ? Math.ceil(D / 4) * 4 : D;
}

function inputs(c: AttentionCpuOptions, seed: number) {
  const rng = new Rng(seed);
  const HD = c.heads * c.headDim;
  const mask = new Float32Array(c.batch * c.lk);
  for (let i = 0; i < mask.length; i++) mask[i] = i % c.lk === 0 || rng.next() > 0.3 ? 1 : 0;
  return {
    q: rng.normal(c.batch * c.lq * HD),
    k: rng.normal(c.batch * c.lk * HD),
    v: rng.normal(c.batch * c.lk * HD),
    dctx: rng.normal(c.batch * c.lq * HD),
    bias: rng.normal(c.heads * c.lq * c.lk),
    mask,
  };
}

Deno.test("attentionBackwardCpu() matches float64 finite differences (bias, mask, causal, dropout)", () => {
  for (
    const c of [
      ...CASES.map((c, i) => ({ ...c, withBias: i === 0 })),
      {
        name: "with dropout",
        batch: 2,
        heads: 2,
        headDim: 3,
        lq: 4,
        lk: 5,
        dropout: { p: 0.3, seed: 7, step: 3, stream: 11 },
        withBias: true,
      },
    ]
  ) {
    const x = inputs(c, 5);
    const o: AttentionCpuOptions = {
      ...c,
      bias: c.withBias ? x.bias : undefined,
      mask: c.causal ? undefined : x.mask,
    };
    const ctxOf = (q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) =>
      dot(x.dctx, attentionCpu(q, k, v, o).ctx);
    const g = attentionBackwardCpu(x.q, x.k, x.v, x.dctx, o);
    const tol = { atol: 1e-6, rtol: 1e-5 };
    assertClose(g.dq, finiteDiff((q) => ctxOf(q, x.k, x.v), f64(x.q)), {
      ...tol,
      label: `${c.name}: dq`,
    });
    assertClose(g.dk, finiteDiff((k) => ctxOf(x.q, k, x.v), f64(x.k)), {
      ...tol,
      label: `${c.name}: dk`,
    });
    assertClose(g.dv, finiteDiff((v) => ctxOf(x.q, x.k, v), f64(x.v)), {
      ...tol,
      label: `${c.name}: dv`,
    });
  }
});

/** Uploads a case, runs attention forward and backward on the GPU and reads everything. */
async function runGpu(
  gpu: Gpu,
  c: AttentionCpuOptions & { withBias?: boolean },
  seed: number,
  impl: Impl,
  rowsPerThread?: number,
) {
  const x = inputs(c, seed);
  const { batch: B, heads: H, headDim: D, lq, lk } = c;
  const HD = H * D;
  const P = B * H * lq * lk;
  const own: Tensor[] = [];
  const t = (name: string, shape: number[], data?: Float32Array) => {
    const r = data ? gpu.upload(name, data, shape) : gpu.tensor(name, shape);
    own.push(r);
    return r;
  };
  const q = t("q", [B, lq, HD], x.q), k = t("k", [B, lk, HD], x.k), v = t("v", [B, lk, HD], x.v);
  const dctx = t("dctx", [B, lq, HD], x.dctx);
  const bias = c.withBias ? t("bias", [H, lq, lk], x.bias) : undefined;
  const mask = c.causal ? undefined : t("mask", [B, lk], x.mask);
  const probs = t("probs", [B, H, lq, lk]), ctx = t("ctx", [B, lq, HD]);
  // scratch larger than needed, as a model's shared scratch is
  const scratch = t("scratch", [P + 13]);
  const s1 = t("s1", [P + 3]), s2 = t("s2", [P + 5]);
  const dq = t("dq", [B, lq, HD]), dk = t("dk", [B, lk, HD]), dv = t("dv", [B, lk, HD]);
  let dropout;
  if (c.dropout) {
    const st = gpu.tensor("dropout_state", [2], "u32");
    own.push(st);
    setDropoutState(gpu, st, c.dropout);
    dropout = { state: st, p: c.dropout.p, stream: c.dropout.stream };
  }
  const common = {
    ...{ q, k, v, heads: H, probs, scale: c.scale, dropout, rowsPerThread },
    ...implOptions(impl),
  };
  const fwd = attention(gpu, { ...common, ctx, scratch, bias, mask, causal: c.causal });
  const bwd = attentionBackward(gpu, {
    ...common,
    dctx,
    dq,
    dk,
    dv,
    scratch: [s1, s2],
    droppedScratch: scratch,
  });
  await gpu.run([...fwd.ops, ...bwd]);
  const out = {
    probs: await gpu.readF64(probs),
    ctx: await gpu.readF64(ctx),
    dq: await gpu.readF64(dq),
    dk: await gpu.readF64(dk),
    dv: await gpu.readF64(dv),
  };
  for (const op of [...fwd.ops, ...bwd]) op.destroy();
  for (const r of own) gpu.freeBuffer(r.buffer);
  return { x, out };
}

for (const impl of IMPLS) {
  gpuTest(
    `attention() and attentionBackward() match the CPU reference at odd sizes (${impl})`,
    async (gpu) => {
      const cases = [
        ...CASES.map((c, i) => ({ ...c, withBias: i !== 2 })),
        {
          name: "dropout on the probabilities",
          batch: 2,
          heads: 3,
          headDim: 5,
          lq: 6,
          lk: 9,
          withBias: true,
          dropout: { p: 0.25, seed: 42, step: 5, stream: 17 },
        },
      ].map((c) => ({ ...c, headDim: headDimFor(impl, c.headDim) }));
      for (const [i, c] of cases.entries()) {
        const { x, out } = await runGpu(gpu, c, 100 + i, impl);
        const o: AttentionCpuOptions = {
          ...c,
          bias: c.withBias ? x.bias : undefined,
          mask: c.causal ? undefined : x.mask,
        };
        const ref = attentionCpu(x.q, x.k, x.v, o);
        const grad = attentionBackwardCpu(x.q, x.k, x.v, x.dctx, o);
        const tol = { atol: 2e-5, rtol: 1e-4 };
        assertClose(out.probs, ref.probs, { ...tol, label: `${c.name}: probs` });
        assertClose(out.ctx, ref.ctx, { ...tol, label: `${c.name}: ctx` });
        assertClose(out.dq, grad.dq, { ...tol, label: `${c.name}: dq` });
        assertClose(out.dk, grad.dk, { ...tol, label: `${c.name}: dk` });
        assertClose(out.dv, grad.dv, { ...tol, label: `${c.name}: dv` });
      }
    },
  );
}

for (const impl of IMPLS) {
  gpuTest(
    `attention() reads keys and values from a longer cache, ignoring rows past Lk (${impl})`,
    async (gpu) => {
      const B = 2, H = 2, D = headDimFor(impl, 3), lq = 1, N = 6, HD = H * D;
      const rng = new Rng(9);
      const q = gpu.upload("q", rng.normal(B * lq * HD), [B, lq, HD]);
      const kData = rng.normal(B * N * HD), vData = rng.normal(B * N * HD);
      const k = gpu.upload("k", kData, [B, N, HD]), v = gpu.upload("v", vData, [B, N, HD]);
      const lk = 4; // keys 0..3 written so far; rows 4..5 of the cache hold garbage
      const probs = gpu.tensor("probs", [B, H, lq, lk]), ctx = gpu.tensor("ctx", [B, lq, HD]);
      const scratch = gpu.tensor("scratch", [B * H * lq * N]);
      const { ops } = attention(gpu, {
        ...{ q, k, v, heads: H, probs, ctx, scratch },
        ...implOptions(impl),
      });
      await gpu.run(ops);
      // the reference on the first lk rows of each batch entry only
      const rows = (a: Float32Array) => {
        const out: number[] = [];
        for (let b = 0; b < B; b++) out.push(...a.subarray(b * N * HD, (b * N + lk) * HD));
        return out;
      };
      const qHost = await gpu.read(q) as Float32Array;
      const ref = attentionCpu(qHost, rows(kData), rows(vData), {
        batch: B,
        heads: H,
        headDim: D,
        lq,
        lk,
      });
      assertClose(await gpu.readF64(ctx), ref.ctx, { atol: 1e-6, rtol: 1e-5, label: "ctx" });
      for (const op of ops) op.destroy();
      for (const t of [q, k, v, probs, ctx, scratch]) gpu.freeBuffer(t.buffer);
    },
  );
}

gpuTest(
  "the fused kernels (both loads) and the matmul path agree within f32 rounding, dropout masks included",
  async (gpu) => {
    const c = {
      name: "causal with dropout",
      batch: 2,
      heads: 3,
      headDim: 8,
      lq: 9,
      lk: 9,
      causal: true,
      withBias: true,
      dropout: { p: 0.3, seed: 3, step: 9, stream: 21 },
    };
    const [a, ...fused] = await Promise.all(IMPLS.map((impl) => runGpu(gpu, c, 7, impl)));
    for (const [i, b] of fused.entries()) {
      for (const k of ["probs", "ctx", "dq", "dk", "dv"] as const) {
        assertClose(b.out[k], a.out[k], { atol: 1e-6, rtol: 1e-5, label: `${IMPLS[i + 1]}: ${k}` });
      }
    }
  },
);

for (const impl of ["fused, scalar loads", "fused, vec4 loads"] as const) {
  gpuTest(
    `rowsPerThread 1 to 4 agree, forward and backward, in partial blocks too (${impl})`,
    async (gpu) => {
      const cases = [
        { name: "bias, mask, dropout", batch: 2, heads: 3, headDim: 8, lq: 7, lk: 9 },
        { name: "causal, dropout", batch: 1, heads: 2, headDim: 4, lq: 10, lk: 10, causal: true },
        { name: "one query (decoding)", batch: 3, heads: 2, headDim: 4, lq: 1, lk: 6 },
      ].map((c) => ({
        ...c,
        withBias: !c.causal,
        dropout: { p: 0.2, seed: 5, step: 3, stream: 11 },
      }));
      for (const c of cases) {
        const [one, ...more] = await Promise.all(
          [1, 3, 4].map((r) => runGpu(gpu, c, 61, impl, r)),
        );
        for (const [i, m] of more.entries()) {
          for (const k of ["probs", "ctx", "dq", "dk", "dv"] as const) {
            assertClose(m.out[k], one.out[k], {
              atol: 1e-6,
              rtol: 1e-5,
              label: `${c.name}: ${k}, ${[3, 4][i]} rows per thread`,
            });
          }
        }
      }
    },
  );
}

gpuTest(
  "rowsPerThread sets the kernels' grids (rows capped at Lq or Lk); by default 4 on a CPU adapter, 1 on a GPU",
  (gpu) => {
    const [B, H, D] = [4, 4, 8], HD = H * D;
    const grid = (L: number, r: number) => Math.ceil(B * H * Math.ceil(L / r) / 64);
    for (const [lq, lk] of [[33, 33], [1, 6], [6, 1]]) {
      const q = gpu.tensor("q", [B, lq, HD]), k = gpu.tensor("k", [B, lk, HD]);
      const probs = gpu.tensor("probs", [B, H, lq, lk]), ctx = gpu.tensor("ctx", [B, lq, HD]);
      const dq = gpu.tensor("dq", [B, lq, HD]), dk = gpu.tensor("dk", [B, lk, HD]);
      const dv = gpu.tensor("dv", [B, lk, HD]), s = gpu.tensor("s", [B * H * lq * lk]);
      for (const asked of [1, 2, 3, 4, undefined]) {
        const r = asked ?? (gpu.adapter.software ? 4 : 1);
        const common = { q, k, v: k, heads: H, probs, rowsPerThread: asked };
        const f = attention(gpu, { ...common, ctx }).ops;
        const b = attentionBackward(gpu, { ...common, dctx: ctx, dq, dk, dv, scratch: [s] });
        const label = `Lq ${lq}, Lk ${lk}, rowsPerThread ${asked}`;
        assert.equal(f[0].dispatches[0].workgroups[0], grid(lq, Math.min(r, lq)), `${label}: fwd`);
        assert.equal(b[0].dispatches[0].workgroups[0], grid(lq, Math.min(r, lq)), `${label}: dq`);
        assert.equal(b[1].dispatches[0].workgroups[0], grid(lk, Math.min(r, lk)), `${label}: dkv`);
        for (const op of [...f, ...b]) op.destroy();
      }
      for (const t of [q, k, probs, ctx, dq, dk, dv, s]) gpu.freeBuffer(t.buffer);
    }
  },
);

gpuTest(
  "attention() refuses a rowsPerThread outside 1 to 4 and vec4 loads on unaligned operands",
  (gpu) => {
    const q = gpu.tensor("q", [1, 3, 6]), probs = gpu.tensor("probs", [1, 2, 3, 3]);
    const ctx = gpu.tensor("ctx", [1, 3, 6]);
    for (const bad of [0, 5, 1.5, NaN]) {
      assertShapeError(
        gpu,
        () => attention(gpu, { q, k: q, v: q, heads: 2, probs, ctx, rowsPerThread: bad }),
        "rowsPerThread must be an integer from 1 to 4",
        `got ${bad}`,
      );
    }
    // head size 3: vec4 loads need multiples of 4
    assertShapeError(
      gpu,
      () => attention(gpu, { q, k: q, v: q, heads: 2, probs, ctx, loads: "vec4" }),
      'loads "vec4" needs',
      "head size 3 is not",
      'use loads "scalar"',
    );
  },
);

gpuTest(
  "attention() refuses mismatched shapes, naming the tensor, before building anything",
  (gpu) => {
    const q = gpu.tensor("q", [2, 3, 6]), k = gpu.tensor("k", [2, 4, 6]);
    const probs = gpu.tensor("probs", [2, 2, 3, 4]), ctx = gpu.tensor("ctx", [2, 3, 6]);
    const small = gpu.tensor("scratch", [10]);
    const kernels = gpu.kernels.size;
    const cases: [string, () => unknown, string][] = [
      [
        "heads not dividing H·D",
        () => attention(gpu, { q, k, v: k, heads: 4, probs, ctx, scratch: probs }),
        "heads",
      ],
      [
        "short scratch (matmul path)",
        () => attention(gpu, { q, k, v: k, heads: 2, probs, ctx, scratch: small, fused: false }),
        "scratch",
      ],
      [
        "ctx of another shape",
        () => attention(gpu, { q, k, v: k, heads: 2, probs, ctx: k, scratch: probs }),
        "ctx",
      ],
      ["keys shorter than Lk", () =>
        attention(gpu, {
          q,
          k: gpu.tensor("k2", [2, 3, 6]),
          v: k,
          heads: 2,
          probs,
          ctx,
          scratch: probs,
        }), "k = k2"],
    ];
    for (const [what, fn, part] of cases) {
      assert.throws(fn, (e: unknown) => {
        assert.ok(e instanceof ShapeError, `${what}: expected a ShapeError, got ${e}`);
        assert.ok(e.message.includes(part), `${what}: "${e.message}" should name "${part}"`);
        return true;
      });
    }
    assert.equal(gpu.kernels.size, kernels, "no pipeline is compiled before a shape error");
  },
);

for (const impl of IMPLS) {
  gpuTest(
    `q, k, v side by side in one (B, L, 3·H·D) tensor give the same results as apart (${impl})`,
    async (gpu) => {
      const B = 2, L = 5, H = 2, D = headDimFor(impl, 3), HD = H * D;
      const rng = new Rng(31);
      const qkv = rng.normal(B * L * 3 * HD);
      const part = (k: number) => {
        const out = new Float32Array(B * L * HD);
        for (let r = 0; r < B * L; r++) {
          out.set(qkv.subarray(r * 3 * HD + k * HD, r * 3 * HD + (k + 1) * HD), r * HD);
        }
        return out;
      };
      const dctxData = rng.normal(B * L * HD);
      const t = (name: string, shape: number[], data?: Float32Array) =>
        data ? gpu.upload(name, data, shape) : gpu.tensor(name, shape);
      // One buffer holds q, k, v side by side and then the context, as in a session's arena:
      // the kernel must bind q, k and v once (WebGPU forbids overlapping bindings when one is
      // writable, and an input in an output's buffer is bound writable).
      const ctxAt = Math.ceil((qkv.byteLength) / 256) * 256;
      const pool = new Float32Array(ctxAt / 4 + B * L * HD);
      pool.set(qkv);
      const shared = t("pool", [pool.length], pool);
      const fusedIn = new Tensor(shared.buffer, 0, [B, L, 3 * HD], "f32", "qkv");
      const sharedCtx = new Tensor(shared.buffer, ctxAt, [B, L, HD], "f32", "ctx");
      const [q, k, v] = [0, 1, 2].map((i) => t(`p${i}`, [B, L, HD], part(i)));
      const dctx = t("dctx", [B, L, HD], dctxData);
      const strict = gpu.strictAliasing;
      gpu.strictAliasing = true;
      const run = async (sideBySide: boolean) => {
        const probs = t("probs", [B, H, L, L]);
        const ctx = sideBySide ? sharedCtx : t("ctx", [B, L, HD]);
        const scratch = t("scratch", [B * H * L * L]), s2 = t("s2", [B * H * L * L]);
        const grads = sideBySide
          ? [t("dqkv", [B, L, 3 * HD])]
          : [0, 1, 2].map((i) => t(`d${i}`, [B, L, HD]));
        const at = (i: number) => (sideBySide ? { tensor: fusedIn, offset: i * HD } : [q, k, v][i]);
        const g = (i: number) => (sideBySide ? { tensor: grads[0], offset: i * HD } : grads[i]);
        const common = {
          ...{ q: at(0), k: at(1), v: at(2), heads: H, probs, causal: true },
          ...implOptions(impl),
        };
        const fwd = attention(gpu, { ...common, ctx, scratch });
        const bwd = attentionBackward(gpu, {
          ...common,
          dctx,
          dq: g(0),
          dk: g(1),
          dv: g(2),
          scratch: [scratch, s2],
        });
        await gpu.run([...fwd.ops, ...bwd]);
        const out = {
          ctx: await gpu.readF64(ctx),
          grads: await Promise.all(grads.map((x) => gpu.readF64(x))),
        };
        for (const op of [...fwd.ops, ...bwd]) op.destroy();
        for (const x of [probs, scratch, s2, ...grads]) gpu.freeBuffer(x.buffer);
        if (!sideBySide) gpu.freeBuffer(ctx.buffer);
        return out;
      };
      const apart = await run(false);
      const together = await run(true).finally(() => gpu.strictAliasing = strict);
      assertClose(together.ctx, apart.ctx, { atol: 1e-6, rtol: 1e-6, label: "ctx" });
      const d = together.grads[0];
      for (let i = 0; i < 3; i++) {
        const mine = new Float64Array(B * L * HD);
        for (let r = 0; r < B * L; r++) {
          mine.set(d.subarray(r * 3 * HD + i * HD, r * 3 * HD + (i + 1) * HD), r * HD);
        }
        assertClose(mine, apart.grads[i], { atol: 1e-6, rtol: 1e-6, label: `grad ${"qkv"[i]}` });
      }
      for (const x of [shared, q, k, v, dctx]) gpu.freeBuffer(x.buffer);
    },
  );
}
