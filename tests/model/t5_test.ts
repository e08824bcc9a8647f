import assert from "node:assert/strict";
import { loadT5, type T5Model } from "../../src/model/t5.ts";
import { shiftRight } from "../../src/io/seq2seq.ts";
import { openSafetensors } from "../../src/io/safetensors.ts";
import { type Gpu, requestGpu } from "../../src/gpu/device.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose, Rng } from "../numeric.ts";

const FIXTURES = new URL("../fixtures/t5/", import.meta.url).pathname;
const VARIANTS = ["tiny-t5-v1_0", "tiny-t5-v1_1"] as const;

interface Reference {
  [name: string]: { data: Float32Array | Int32Array; shape: number[] };
}

async function reference(model: string): Promise<Reference> {
  using r = await openSafetensors(`${FIXTURES}${model}/reference.safetensors`);
  const out: Reference = {};
  for (const name of r.names()) {
    const info = r.info(name);
    if (info.dtype === "F32") {
      out[name] = { data: await r.readFloat(name, { dtype: "f32" }), shape: [...info.shape] };
    } else {
      const t = await r.read(name);
      out[name] = {
        data: Int32Array.from(t.data as ArrayLike<number | bigint>, Number),
        shape: [...info.shape],
      };
    }
  }
  return out;
}

/** The reference batch as a session input: ids, or the given embeddings and mask. */
function refBatch(ref: Reference, embeds?: "inputs_embeds" | "prompt_inputs_embeds") {
  return {
    inputIds: embeds ? undefined : ref.input_ids.data as Int32Array,
    inputsEmbeds: embeds ? ref[embeds].data as Float32Array : undefined,
    attentionMask:
      (embeds === "prompt_inputs_embeds" ? ref.prompt_attention_mask : ref.attention_mask)
        .data,
    labels: ref.labels.data as Int32Array,
  };
}

/** Absolute tolerance relative to the largest magnitude of the reference. */
function scaled(ref: ArrayLike<number>, rel: number): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(ref[i]));
  return rel * m;
}

/**
 * The T5 tests run on a device of their own with strict aliasing on: no binding may overlap a
 * writable one (WebGPU's rule, which Deno's wgpu does not enforce yet).
 */
let strictGpu: Promise<Gpu> | undefined;
function device(): Promise<Gpu> {
  strictGpu ??= requestGpu({ log: false }).then((g) => {
    g.strictAliasing = true;
    return g;
  });
  return strictGpu;
}

const models = new Map<string, T5Model>();
async function model(gpu: Gpu, name: string) {
  let m = models.get(name);
  if (!m) {
    m = await loadT5(gpu, `${FIXTURES}${name}`);
    models.set(name, m);
  }
  return m;
}

for (const variant of VARIANTS) {
  gpuTest(
    `${variant}: encoder output, logits and loss match transformers on a padded batch`,
    async () => {
      const gpu = await device();
      const ref = await reference(variant);
      const m = await model(gpu, variant);
      const [B, S] = ref.input_ids.shape;
      const T = ref.labels.shape[1];
      const s = m.session({ batch: B, sourceLength: S, targetLength: T });
      s.setBatch(refBatch(ref));
      await s.forward();
      const enc = ref.encoder_last_hidden_state.data;
      assertClose(await s.readEncoderOutput(), enc, {
        atol: scaled(enc, 1e-5),
        rtol: 1e-4,
        label: "encoder output",
      });
      const logits = ref.logits.data;
      assertClose(await s.readLogits(), logits, {
        atol: scaled(logits, 1e-5),
        rtol: 1e-4,
        label: "logits",
      });
      const loss = ref.loss.data[0];
      assertClose([await s.readLoss()], [loss], { atol: 0, rtol: 1e-4, label: "loss" });
    },
  );

  gpuTest(
    `${variant}: the gradient of the loss with respect to inputs_embeds matches transformers`,
    async () => {
      const gpu = await device();
      const ref = await reference(variant);
      const m = await model(gpu, variant);
      const [B, S] = ref.input_ids.shape;
      const T = ref.labels.shape[1];
      // transformers' reference ran in eval mode: dropout off.
      const s = m.session({ batch: B, sourceLength: S, targetLength: T }, { dropoutRate: 0 });
      s.setBatch(refBatch(ref, "inputs_embeds"));
      await s.backward();
      assertClose([await s.readLoss()], [ref.loss.data[0]], { atol: 0, rtol: 1e-4, label: "loss" });
      const g = ref.grad_inputs_embeds.data;
      assertClose(await s.readInputsEmbedsGrad(), g, {
        atol: scaled(g, 1e-4),
        rtol: 1e-3,
        label: "d loss / d inputs_embeds",
      });
    },
  );

  gpuTest(
    `${variant}: a soft prompt concatenated before the inputs gives transformers' logits, loss and gradient`,
    async () => {
      const gpu = await device();
      const ref = await reference(variant);
      const m = await model(gpu, variant);
      const [B, S] = ref.prompt_attention_mask.shape;
      const T = ref.labels.shape[1];
      const s = m.session({ batch: B, sourceLength: S, targetLength: T }, { dropoutRate: 0 });
      s.setBatch(refBatch(ref, "prompt_inputs_embeds"));
      await s.forward();
      const logits = ref.prompt_logits.data;
      assertClose(await s.readLogits(), logits, {
        atol: scaled(logits, 1e-5),
        rtol: 1e-4,
        label: "prompt logits",
      });
      await s.backward();
      assertClose([await s.readLoss()], [ref.prompt_loss.data[0]], {
        atol: 0,
        rtol: 1e-4,
        label: "prompt loss",
      });
      const g = ref.prompt_grad_inputs_embeds.data;
      assertClose(await s.readInputsEmbedsGrad(), g, {
        atol: scaled(g, 1e-4),
        rtol: 1e-3,
        label: "prompt gradient",
      });
    },
  );
}

gpuTest(
  "dropout is active in training mode, off in evaluation, and reproducible per seed and step",
  async () => {
    const gpu = await device();
    const ref = await reference("tiny-t5-v1_0");
    const m = await model(gpu, "tiny-t5-v1_0");
    const [B, S] = ref.input_ids.shape;
    const T = ref.labels.shape[1];
    const batch = refBatch(ref);
    const a = m.session({ batch: B, sourceLength: S, targetLength: T }, { seed: 7 });
    a.setBatch(batch);
    await a.forward();
    const evalLoss = await a.readLoss();
    assertClose([evalLoss], [ref.loss.data[0]], { atol: 0, rtol: 1e-4, label: "eval loss" });
    await a.forward({ train: true });
    const train1 = await a.readLoss();
    await a.forward({ train: true });
    const train2 = await a.readLoss();
    assert.notEqual(train1, evalLoss);
    assert.notEqual(train1, train2, "each training step draws a new mask");
    const b = m.session({ batch: B, sourceLength: S, targetLength: T }, { seed: 7 });
    b.setBatch(batch);
    await b.forward({ train: true });
    assert.equal(await b.readLoss(), train1, "same seed and step, same mask, same loss");
  },
);

Deno.test("shiftRight() starts with the decoder start token and replaces -100 by the pad id", () => {
  assert.deepEqual(
    shiftRight(new Int32Array([5, 6, 1, -100, 7, 1, -100, -100]), 2, 4, 0, 0),
    new Int32Array([0, 5, 6, 1, 0, 7, 1, 0]),
  );
});

for (const variant of VARIANTS) {
  gpuTest(
    `${variant}: batched greedy decoding with a KV cache gives transformers' ids`,
    async () => {
      const gpu = await device();
      const ref = await reference(variant);
      const m = await model(gpu, variant);
      const [B, S] = ref.input_ids.shape;
      const gen = m.generator({ batch: B, sourceLength: S, maxNewTokens: 20 });
      const got = await gen.generate({
        inputIds: ref.input_ids.data as Int32Array,
        attentionMask: ref.attention_mask.data,
      });
      const [, W] = ref.greedy_ids.shape;
      const expected: number[][] = [];
      for (let r = 0; r < B; r++) {
        const row = [...ref.greedy_ids.data.slice(r * W + 1, (r + 1) * W)];
        const eos = row.indexOf(m.config.eosTokenId);
        expected.push(eos >= 0 ? row.slice(0, eos + 1) : row);
      }
      assert.deepEqual(got, expected);
      // A second call reuses every buffer and gives the same result.
      assert.deepEqual(
        await gen.generate({
          inputIds: ref.input_ids.data as Int32Array,
          attentionMask: ref.attention_mask.data,
        }),
        expected,
      );
    },
  );
}

gpuTest(
  "a second generate() with other inputs starts from a clean cache (rows reversed)",
  async () => {
    const gpu = await device();
    const ref = await reference("tiny-t5-v1_1");
    const m = await model(gpu, "tiny-t5-v1_1");
    const [B, S] = ref.input_ids.shape;
    const gen = m.generator({ batch: B, sourceLength: S });
    const ids = ref.input_ids.data as Int32Array;
    const mask = ref.attention_mask.data;
    const first = await gen.generate({ inputIds: ids, attentionMask: mask });
    const rev = (a: ArrayLike<number>) => {
      const out = new Int32Array(a.length);
      for (let r = 0; r < B; r++) out.set(Array.from(a).slice((B - 1 - r) * S, (B - r) * S), r * S);
      return out;
    };
    assert.deepEqual(
      await gen.generate({ inputIds: rev(ids), attentionMask: rev(mask) }),
      [...first].reverse(),
    );
    gen.destroy();
  },
);

gpuTest(
  "cached greedy decoding equals decoding by full teacher-forced forward passes, even with a 2-token source",
  async () => {
    const gpu = await device();
    const m = await model(gpu, "tiny-t5-v1_0");
    const [B, S, N] = [2, 2, 20];
    const inputIds = new Int32Array([54, 1, 7, 1]);
    const attentionMask = [1, 1, 1, 1];
    const gen = m.generator({ batch: B, sourceLength: S, maxNewTokens: N });
    const cached = await gen.generate({ inputIds, attentionMask });
    // Reference: step t feeds the first t generated ids as labels and takes the argmax at t.
    const s = m.session({ batch: B, sourceLength: S, targetLength: N });
    const seqs: number[][] = [[], []];
    const done = [false, false];
    const V = m.config.vocabSize;
    for (let t = 0; t < N && !done.every(Boolean); t++) {
      const labels = new Int32Array(B * N).fill(-100);
      for (let b = 0; b < B; b++) seqs[b].forEach((id, i) => labels[b * N + i] = id);
      s.setBatch({ inputIds, attentionMask, labels });
      await s.forward();
      const logits = await s.readLogits();
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const row = logits.subarray((b * N + t) * V, (b * N + t + 1) * V);
        let best = 0;
        for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
        seqs[b].push(best);
        if (best === m.config.eosTokenId) done[b] = true;
      }
    }
    assert.deepEqual(cached, seqs);
    s.destroy();
    gen.destroy();
  },
);

gpuTest("setBatch() refuses a label outside the vocabulary, in any column, naming it", async () => {
  const gpu = await device();
  const m = await model(gpu, "tiny-t5-v1_0");
  const s = m.session({ batch: 1, sourceLength: 3, targetLength: 2 });
  const batch = { inputIds: new Int32Array([5, 6, 1]), attentionMask: [1, 1, 1] };
  assert.throws(
    () => s.setBatch({ ...batch, labels: new Int32Array([3, 999]) }),
    /labels\[1\] = 999/,
  );
  assert.throws(
    () => s.setBatch({ ...batch, labels: new Int32Array([-1, 1]) }),
    /labels\[0\] = -1/,
  );
  assert.throws(
    () => s.setBatch({ ...batch, labels: new Int32Array([3]) }),
    /labels has 1 elements/,
  );
  s.destroy();
});

gpuTest("destroy() returns every byte a session and a generator allocated", async () => {
  const gpu = await device();
  const m = await model(gpu, "tiny-t5-v1_1");
  const run = async () => {
    const g = m.generator({ batch: 2, sourceLength: 5, maxNewTokens: 4 });
    await g.generate({
      inputIds: new Int32Array(10).fill(1),
      attentionMask: new Array(10).fill(1),
    });
    return g;
  };
  // The device keeps a placeholder binding and pooled readback buffers: warm them first.
  (await run()).destroy();
  const before = gpu.allocatedBytes;
  const s = m.session({ batch: 2, sourceLength: 5, targetLength: 3 });
  s.setBatch({
    inputIds: new Int32Array([5, 6, 7, 8, 1, 9, 1, 0, 0, 0]),
    attentionMask: [1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    labels: new Int32Array([4, 1, -100, 5, 6, 1]),
  });
  await s.backward();
  const gen = m.generator({ batch: 2, sourceLength: 5, maxNewTokens: 4 });
  await gen.generate({
    inputIds: new Int32Array(10).fill(1),
    attentionMask: new Array(10).fill(1),
  });
  assert.ok(gpu.allocatedBytes > before);
  s.destroy();
  gen.destroy();
  assert.equal(gpu.allocatedBytes, before);
});

for (const variant of VARIANTS) {
  gpuTest(
    `${variant}: with dropout on, the input gradient matches a finite difference of the loss under the same masks`,
    async () => {
      const gpu = await device();
      const ref = await reference(variant);
      const m = await model(gpu, variant);
      const [B, S] = ref.input_ids.shape;
      const T = ref.labels.shape[1];
      const x = ref.inputs_embeds.data as Float32Array;
      const batch = (emb: Float32Array) => ({
        inputsEmbeds: emb,
        attentionMask: ref.attention_mask.data,
        labels: ref.labels.data as Int32Array,
      });
      // Same seed, first step: every session draws the same masks.
      const session = () =>
        m.session({ batch: B, sourceLength: S, targetLength: T }, { seed: 3, dropoutRate: 0.3 });
      const s0 = session();
      s0.setBatch(batch(x));
      await s0.backward();
      const g = await s0.readInputsEmbedsGrad();
      const rng = new Rng(9);
      const dir = rng.normal(x.length);
      // ReLU (v1.0) has kinks a large step would cross; f32 loss rounding bounds the small one
      const eps = variant === "tiny-t5-v1_0" ? 2e-3 : 1e-2;
      const lossAt = async (sign: number) => {
        const s = session();
        s.setBatch(batch(Float32Array.from(x, (v, i) => v + sign * eps * dir[i])));
        await s.forward({ train: true });
        const l = await s.readLoss();
        s.destroy();
        return l;
      };
      const fd = (await lossAt(1) - await lossAt(-1)) / (2 * eps);
      let analytic = 0;
      for (let i = 0; i < x.length; i++) analytic += g[i] * dir[i];
      assertClose([analytic], [fd], { atol: 1e-3, rtol: 1e-2, label: "directional derivative" });
      s0.destroy();
    },
  );
}

for (const variant of VARIANTS) {
  gpuTest(
    `${variant}: fused q·k·v and cross k·v projections give the per-weight products' loss and gradient`,
    async () => {
      const gpu = await device();
      const ref = await reference(variant);
      const m = await model(gpu, variant);
      const [B, S] = ref.input_ids.shape;
      const T = ref.labels.shape[1];
      const run = async (fuseProjections: boolean) => {
        const s = m.session({ batch: B, sourceLength: S, targetLength: T }, {
          seed: 5,
          dropoutRate: 0.2,
          fuseProjections,
        });
        s.setBatch(refBatch(ref, "inputs_embeds"));
        await s.backward();
        const out = { loss: await s.readLoss(), grad: await s.readInputsEmbedsGrad() };
        s.destroy();
        return out;
      };
      const apart = await run(false), fused = await run(true);
      assert.ok(Number.isFinite(fused.loss));
      assertClose([fused.loss], [apart.loss], { atol: 0, rtol: 1e-6, label: "loss" });
      assertClose(fused.grad, apart.grad, {
        atol: scaled(apart.grad, 1e-6),
        rtol: 1e-5,
        label: "d loss / d inputs_embeds",
      });
    },
  );
}

gpuTest(
  "generate() reports NaN logits as an error naming the row instead of decoding garbage",
  async () => {
    const gpu = await device();
    const m = await model(gpu, "tiny-t5-v1_1");
    const C = m.config.dModel;
    const gen = m.generator({ batch: 2, sourceLength: 3, maxNewTokens: 4 });
    const emb = new Float32Array(2 * 3 * C).fill(0.1);
    emb[3 * C + 5] = NaN; // row 1 only
    await assert.rejects(
      gen.generate({ inputsEmbeds: emb, attentionMask: [1, 1, 1, 1, 1, 1] }),
      /row 1, step 0: the logits hold NaN/,
    );
    gen.destroy();
  },
);

gpuTest(
  "a caller records a training step itself: setStep/nextStep give the masks backward() draws",
  async () => {
    const gpu = await device();
    const ref = await reference("tiny-t5-v1_1");
    const m = await model(gpu, "tiny-t5-v1_1");
    const [B, S] = ref.input_ids.shape;
    const T = ref.labels.shape[1];
    const shape = { batch: B, sourceLength: S, targetLength: T };
    const opts = { seed: 11, dropoutRate: 0.2 };
    // backward() advances the counter from 0 to 1, 2, 3: the masks of step 3
    const a = m.session(shape, opts);
    a.setBatch(refBatch(ref, "inputs_embeds"));
    for (let i = 0; i < 3; i++) await a.backward();
    assert.equal(a.step, 3);
    const want = await a.readInputsEmbedsGrad();
    const wantLoss = await a.readLoss();
    // a caller that resumes at step 2, advances once and records the ops in one submit
    const b = m.session(shape, opts);
    b.setBatch(refBatch(ref, "inputs_embeds"));
    b.setStep(2);
    assert.equal(b.nextStep(), 3);
    await gpu.run([...b.trainOps, ...b.backwardOps]);
    assert.deepEqual(await b.readInputsEmbedsGrad(), want);
    assert.equal(await b.readLoss(), wantLoss);
    // another step's masks give another gradient (the counter matters)
    b.setStep(7);
    await gpu.run([...b.trainOps, ...b.backwardOps]);
    assert.notDeepEqual(await b.readInputsEmbedsGrad(), want);
    assert.throws(() => b.setStep(-1), /step must be an integer/);
    a.destroy();
    b.destroy();
  },
);
