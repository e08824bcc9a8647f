import assert from "node:assert/strict";
import { Mt19937 } from "../../src/data/mt19937.ts";
import "../../src/peft/registry.ts";
import {
  methodModule,
  methodNames,
  parameterCount,
  PeftError,
  type PeftMethod,
} from "../../src/peft/method.ts";
import { tiledIds } from "../../src/peft/prompt_method.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose, Rng } from "../numeric.ts";
import { createMethod, makeBatch, tinyModel, trainStep } from "./support.ts";

Deno.test("parameter counts are the paper's budgets: ADePT 76,051, DePT 76,800, PT 76,800", () => {
  const C = 768;
  assert.equal(parameterCount(methodModule("adept").resolve({}), C), 76_051);
  assert.equal(parameterCount(methodModule("dept").resolve({}), C), 76_800);
  assert.equal(parameterCount(methodModule("prompt_tuning").resolve({}), C), 76_800);
  assert.equal(parameterCount(methodModule("pt").resolve({}), C), 76_800);
  // R = 19 is the largest ADePT rank under PT's budget at M = 60
  const adept = (rank: number) => parameterCount(methodModule("adept").resolve({ rank }), C);
  assert.ok(adept(19) <= 76_800 && adept(20) > 76_800);
  assert.deepEqual(methodModule("adept").resolve({}), {
    method: "adept",
    promptLength: 60,
    rank: 19,
    promptInit: "text",
    promptInitText: "Classify this text is postive or not:",
  });
});

Deno.test("unknown methods and bad settings are refused, naming the value and the fix", () => {
  assert.deepEqual(methodNames().sort(), ["adept", "dept", "prompt_tuning"]);
  const cases: [() => unknown, RegExp][] = [
    [
      () => methodModule("lora"),
      /unknown method "lora"; known methods: "adept", "dept", "prompt_tuning", "pt"/,
    ],
    [
      () => methodModule("adept").resolve({ rank: 0 }),
      /adept: rank must be an integer in \[1, \d+\], got 0; the paper uses 19/,
    ],
    [
      () => methodModule("pt").resolve({ promptLength: -5 }),
      /promptLength must be an integer .* got -5; the paper uses 100/,
    ],
    [() => methodModule("dept").resolve({ rank: 2.5 }), /rank must be an integer .* got 2.5/],
    [() => methodModule("adept").resolve({ rank: 1e9 }), /got 1000000000/],
    [() => methodModule("pt").resolve({ rank: 4 }), /prompt_tuning has no setting "rank"/],
    [() => methodModule("adept").resolve({ rank: "19" }), /rank must be a number, got "19"/],
    [
      () => methodModule("adept").resolve({ promptInit: "zeros" }),
      /promptInit must be "text" or "random"/,
    ],
  ];
  for (const [fn, re] of cases) {
    assert.throws(fn, (e: unknown) => e instanceof PeftError && re.test(e.message));
  }
  assert.deepEqual([...tiledIds([5, 6, 1], 7, 10)], [5, 6, 1, 5, 6, 1, 5]);
  assert.throws(() => tiledIds([5, 60], 3, 10), /outside the vocabulary/);
});

const METHODS = [
  ["adept", { promptLength: 4, rank: 3 }],
  ["dept", { promptLength: 4, rank: 3, maxSourceLength: 9 }],
  ["prompt_tuning", { promptLength: 4 }],
] as const;

/** Gives every tensor random non-zero values (the zero inits would zero some gradients). */
function randomize(method: PeftMethod, seed: number): Record<string, Float32Array> {
  const rng = new Rng(seed);
  const values: Record<string, Float32Array> = {};
  for (const t of method.tensors) values[t.name] = rng.normal(t.param.size, 0.3);
  method.writeState(values);
  return values;
}

for (const [name, overrides] of METHODS) {
  gpuTest(
    `${name}: with dropout on, the gradient of every tensor matches a finite difference of the loss under the same masks`,
    async (gpu) => {
      const model = await tinyModel(gpu, "tiny-t5-v1_1");
      const batch = makeBatch(7, [3, 9, 6], 9, [2, 4, 3], 4);
      const method = await createMethod(model, name, overrides);
      const M = method.promptLength;
      const session = model.session(
        { batch: batch.B, sourceLength: M + batch.S, targetLength: batch.T },
        { seed: 5, dropoutRate: 0.2 },
      );
      const x = randomize(method, 3);
      await trainStep(method, session, batch, 4);
      const grads = await method.readState("grad");
      const rng = new Rng(17);
      // one tensor at a time, so that a wrong small gradient (a, b) cannot hide behind the prompt's
      for (const t of method.tensors) {
        assert.ok(grads[t.name].some((g) => g !== 0), `${t.name}: the gradient is all zeros`);
        const dir = rng.normal(t.param.size);
        let analytic = 0;
        for (let i = 0; i < dir.length; i++) analytic += grads[t.name][i] * dir[i];
        // the loss is far from linear at this scale with dropout on: a small step (f32 still
        // resolves it: the loss is about 5, its ulp 5e-7)
        const eps = 3e-3;
        const lossAt = async (sign: number) => {
          method.writeState({
            ...x,
            [t.name]: Float32Array.from(x[t.name], (a, i) => a + sign * eps * dir[i]),
          });
          return await trainStep(method, session, batch, 4); // same step: same masks
        };
        const fd = (await lossAt(1) - await lossAt(-1)) / (2 * eps);
        assertClose([analytic], [fd], {
          atol: 1e-3,
          rtol: 1e-2,
          label: `${name}: d loss / d ${t.name} along a random direction`,
        });
      }
      session.destroy();
      method.destroy();
    },
  );
}

gpuTest(
  "ADePT evaluated from the folded table gives the unfolded logits and greedy decodes",
  async (gpu) => {
    for (const variant of ["tiny-t5-v1_0", "tiny-t5-v1_1"] as const) {
      const model = await tinyModel(gpu, variant);
      const batch = makeBatch(21, [5, 8, 2, 7], 8, [3, 3, 3, 3], 3);
      const method = await createMethod(model, "adept", { promptLength: 3, rank: 5 });
      randomize(method, 9);
      const shape = { batch: batch.B, sourceLength: 3 + batch.S };
      const session = model.session({ ...shape, targetLength: batch.T }, { dropoutRate: 0 });
      session.setLabels(batch.labels);
      const logits: Float32Array[] = [];
      for (const folded of [false, true]) {
        const b = method.bind(session, { train: false, folded });
        b.setInputs(batch.inputIds, batch.attentionMask);
        await gpu.run([...method.prepareEvalOps(), ...b.forwardOps, ...session.evalOps]);
        logits.push(await session.readLogits());
        b.destroy();
      }
      assertClose(logits[1], logits[0], { atol: 1e-5, rtol: 1e-5, label: `${variant} logits` });
      const gen = model.generator({ ...shape, maxNewTokens: 6 });
      const decodes: number[][][] = [];
      for (const folded of [false, true]) {
        const b = method.bind(gen, { train: false, folded });
        b.setInputs(batch.inputIds, batch.attentionMask);
        await gpu.run([...method.prepareEvalOps(), ...b.forwardOps]);
        decodes.push(await gen.generate({ attentionMask: [] }, { inputsOnGpu: true }));
        b.destroy();
      }
      assert.deepEqual(decodes[1], decodes[0]);
      gen.destroy();
      session.destroy();
      method.destroy();
    }
  },
);

gpuTest(
  "the text init copies the embedding rows of the init ids, tiled to M; seeds reproduce",
  async (gpu) => {
    const model = await tinyModel(gpu, "tiny-t5-v1_0");
    const mod = methodModule("adept");
    const config = mod.resolve({ promptLength: 5, rank: 4 });
    const m = await mod.create(model, config, { rng: new Mt19937(42), initTextIds: [7, 9, 1] });
    const state = await m.readState();
    const wte = await gpu.read(model.w("shared.weight")) as Float32Array;
    const C = model.config.dModel;
    [7, 9, 1, 7, 9].forEach((id, row) => {
      assert.deepEqual(
        state.prompt.subarray(row * C, (row + 1) * C),
        wte.subarray(id * C, (id + 1) * C),
      );
    });
    const bound = 1 / Math.sqrt(4);
    assert.ok(state.A.every((v) => v >= -bound && v < bound) && new Set(state.A).size > 100);
    for (const k of ["a", "Bw", "b"]) assert.ok(state[k].every((v) => v === 0), `${k} starts at 0`);
    const again = await mod.create(model, config, { rng: new Mt19937(42), initTextIds: [7, 9, 1] });
    assert.deepEqual(await again.readState(), state, "the same seed gives the same tensors");
    await assert.rejects(
      mod.create(model, config, { rng: new Mt19937(42) }),
      /needs the ids of "Classify this text is postive or not:"/,
    );
    m.destroy();
    again.destroy();
  },
);

gpuTest("bad inputs to a method are refused before anything is allocated", async (gpu) => {
  const model = await tinyModel(gpu, "tiny-t5-v1_0");
  const method = await createMethod(model, "adept", { promptLength: 6, rank: 2 });
  const session = model.session({ batch: 2, sourceLength: 6, targetLength: 2 });
  const bytes = gpu.allocatedBytes;
  assert.throws(
    () => method.bind(session, { train: true }),
    /leaves no room for a source after the 6 prompt rows/,
  );
  assert.equal(gpu.allocatedBytes, bytes);
  const state = await method.readState();
  assert.throws(
    () =>
      method.writeState(
        { ...state, Bw: Float32Array.from(state.Bw, (v, i) => i === 3 ? NaN : v) },
        "x.safetensors",
      ),
    /x.safetensors: "Bw"\[3\] is NaN/,
  );
  assert.throws(
    () => method.writeState({ ...state, A: new Float32Array(3) }),
    /"A" holds 3 values/,
  );
  assert.throws(
    () => method.writeState({ ...state, lora_A: new Float32Array(3) }),
    /"lora_A" is not a tensor of adept/,
  );
  const dept = await createMethod(model, "dept", { promptLength: 2, rank: 2, maxSourceLength: 3 });
  const s2 = model.session({ batch: 1, sourceLength: 2 + 5, targetLength: 2 });
  assert.throws(
    () => dept.bind(s2, { train: true }),
    /source holds 5 tokens but the position offset covers 3/,
  );
  s2.destroy();
  dept.destroy();
  session.destroy();
  method.destroy();
});
