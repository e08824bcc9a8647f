import assert from "node:assert/strict";
import { ShapeError } from "../../src/gpu/errors.ts";
import {
  lowRankUpBackward,
  lowRankUpBackwardCpu,
  promptEmbed,
  promptEmbedCpu,
  type PromptEmbedCpuOffset,
  sumBatch,
  sumBatchCpu,
} from "../../src/layers/prompt_embed.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose, dot, f64, finiteDiff, Rng } from "../numeric.ts";

// Sizes that divide neither 64 nor 256; C > 64 so that several column tiles run.
const SHAPE = { batch: 3, promptLength: 5, sourceLength: 7, dModel: 67 };
const R = 4;

function data(seed: number) {
  const { batch: B, promptLength: M, sourceLength: S, dModel: C } = SHAPE;
  const rng = new Rng(seed);
  return {
    prompt: rng.normal(M * C),
    tokens: rng.normal(B * S * C),
    pos: rng.normal(S * C),
    hidden: rng.normal(B * S * R), // about half negative: ReLU cuts them
    up: rng.normal(R * C),
    bias: rng.normal(C),
    dout: rng.normal(B * (M + S) * C),
  };
}

Deno.test("the prompt and offset gradients of promptEmbedCpu() match float64 finite differences", () => {
  const { batch: B, promptLength: M, sourceLength: S, dModel: C } = SHAPE;
  const x = data(3);
  const w = x.dout;
  const low = (hidden: ArrayLike<number>, up: ArrayLike<number>, bias: ArrayLike<number>) =>
    ({ kind: "lowrank", hidden, up, bias, rank: R }) as PromptEmbedCpuOffset;
  const f = (prompt: ArrayLike<number>, off?: PromptEmbedCpuOffset) =>
    dot(w, promptEmbedCpu(prompt, x.tokens, SHAPE, off));
  const tol = { atol: 1e-6, rtol: 1e-6 };
  assertClose(sumBatchCpu(w, [B, M + S, C], 0, M), finiteDiff((p) => f(p), f64(x.prompt)), {
    ...tol,
    label: "d prompt",
  });
  assertClose(
    sumBatchCpu(w, [B, M + S, C], M, S),
    finiteDiff((pos) => f(x.prompt, { kind: "position", pos }), f64(x.pos)),
    { ...tol, label: "d pos" },
  );
  const g = lowRankUpBackwardCpu(x.hidden, w, SHAPE, R);
  assertClose(g.dup, finiteDiff((up) => f(x.prompt, low(x.hidden, up, x.bias)), f64(x.up)), {
    ...tol,
    label: "d up",
  });
  assertClose(
    g.dbias,
    finiteDiff((bias) => f(x.prompt, low(x.hidden, x.up, bias)), f64(x.bias)),
    { ...tol, label: "d bias" },
  );
});

gpuTest(
  "promptEmbed() matches the CPU reference with no offset, a position offset and a low-rank offset",
  async (gpu) => {
    const { batch: B, promptLength: M, sourceLength: S, dModel: C } = SHAPE;
    const x = data(11);
    const t = {
      prompt: gpu.upload("prompt", x.prompt, [M, C]),
      tokens: gpu.upload("tokens", x.tokens, [B, S, C]),
      pos: gpu.upload("pos", x.pos, [S, C]),
      hidden: gpu.upload("hidden", x.hidden, [B, S, R]),
      up: gpu.upload("up", x.up, [R, C]),
      bias: gpu.upload("bias", x.bias, [C]),
      out: gpu.tensor("out", [B, M + S, C]),
    };
    const cases: [string, Parameters<typeof promptEmbed>[1]["offset"], PromptEmbedCpuOffset?][] = [
      ["none", undefined, undefined],
      ["position", { kind: "position", pos: t.pos }, { kind: "position", pos: x.pos }],
      [
        "lowrank",
        { kind: "lowrank", hidden: t.hidden, up: t.up, bias: t.bias },
        { kind: "lowrank", hidden: x.hidden, up: x.up, bias: x.bias, rank: R },
      ],
    ];
    for (const [name, offset, cpu] of cases) {
      const op = promptEmbed(gpu, { prompt: t.prompt, tokens: t.tokens, out: t.out, offset });
      await gpu.run(op);
      const want = promptEmbedCpu(x.prompt, x.tokens, SHAPE, cpu);
      assertClose(await gpu.readF64(t.out), want, { atol: 1e-5, rtol: 1e-5, label: name });
      op.destroy();
    }
    for (const v of Object.values(t)) gpu.freeBuffer(v.buffer);
  },
);

gpuTest("sumBatch() and lowRankUpBackward() match the CPU references", async (gpu) => {
  const { batch: B, promptLength: M, sourceLength: S, dModel: C } = SHAPE;
  const x = data(12);
  const dout = gpu.upload("dout", x.dout, [B, M + S, C]);
  const hidden = gpu.upload("hidden", x.hidden, [B, S, R]);
  const dprompt = gpu.tensor("dprompt", [M, C]), dpos = gpu.tensor("dpos", [S, C]);
  const dup = gpu.tensor("dup", [R, C]), dbias = gpu.tensor("dbias", [C]);
  const ops = [
    sumBatch(gpu, { x: dout, row0: 0, out: dprompt }),
    sumBatch(gpu, { x: dout, row0: M, out: dpos }),
    lowRankUpBackward(gpu, { hidden, dout, dup, dbias }),
  ];
  await gpu.run(ops);
  const tol = { atol: 1e-5, rtol: 1e-5 };
  assertClose(await gpu.readF64(dprompt), sumBatchCpu(x.dout, [B, M + S, C], 0, M), {
    ...tol,
    label: "dprompt",
  });
  assertClose(await gpu.readF64(dpos), sumBatchCpu(x.dout, [B, M + S, C], M, S), {
    ...tol,
    label: "dpos",
  });
  const g = lowRankUpBackwardCpu(x.hidden, x.dout, SHAPE, R);
  assertClose(await gpu.readF64(dup), g.dup, { ...tol, label: "dup" });
  assertClose(await gpu.readF64(dbias), g.dbias, { ...tol, label: "dbias" });
  // deterministic: a second run gives the same bits
  const first = await gpu.read(dup);
  await gpu.run(ops);
  assert.deepEqual(await gpu.read(dup), first);
  for (const op of ops) op.destroy();
  for (const v of [dout, hidden, dprompt, dpos, dup, dbias]) gpu.freeBuffer(v.buffer);
});

gpuTest("the prompt launchers refuse mismatched shapes, naming the tensor", (gpu) => {
  const prompt = gpu.tensor("prompt", [2, 8]);
  const tokens = gpu.tensor("tokens", [3, 4, 8]);
  const out = gpu.tensor("out", [3, 6, 8]);
  const bad = gpu.tensor("bad", [3, 5, 8]);
  const kernels = gpu.kernels.size;
  const cases: [() => unknown, string][] = [
    [() => promptEmbed(gpu, { prompt, tokens, out: bad }), "out = bad(3, 5, 8)"],
    [() => promptEmbed(gpu, { prompt: gpu.tensor("p7", [2, 7]), tokens, out }), "prompt = p7"],
    [
      () => promptEmbed(gpu, { prompt, tokens, out, offset: { kind: "position", pos: prompt } }),
      "pos = prompt(2, 8)",
    ],
    [() => sumBatch(gpu, { x: out, row0: 5, out: prompt }), "rows 5..7"],
    [
      () =>
        lowRankUpBackward(gpu, {
          hidden: gpu.tensor("h", [3, 4, 2]),
          dout: out,
          dup: prompt,
          dbias: gpu.tensor("db", [7]),
        }),
      "dbias = db(7)",
    ],
  ];
  for (const [fn, part] of cases) {
    assert.throws(fn, (e: unknown) => {
      assert.ok(e instanceof ShapeError, `expected a ShapeError, got ${e}`);
      assert.ok(e.message.includes(part), `"${e.message}" should name "${part}"`);
      return true;
    });
  }
  assert.equal(gpu.kernels.size, kernels, "no pipeline is compiled before a shape error");
});
