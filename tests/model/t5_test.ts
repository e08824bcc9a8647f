import assert from "node:assert/strict";
import { loadT5, shiftRight, type T5Model } from "../../src/model/t5.ts";
import { T5Generator } from "../../src/model/t5_generate.ts";
import { openSafetensors } from "../../src/model/safetensors.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose } from "../numeric.ts";

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

/** Absolute tolerance relative to the largest magnitude of the reference. */
function scaled(ref: ArrayLike<number>, rel: number): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(ref[i]));
  return rel * m;
}

const models = new Map<string, T5Model>();
async function model(gpu: Parameters<Parameters<typeof gpuTest>[1]>[0], name: string) {
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
    async (gpu) => {
      const ref = await reference(variant);
      const m = await model(gpu, variant);
      const [B, S] = ref.input_ids.shape;
      const T = ref.labels.shape[1];
      const s = m.session({ batch: B, sourceLength: S, targetLength: T });
      s.setBatch({
        inputIds: ref.input_ids.data as Int32Array,
        attentionMask: ref.attention_mask.data,
        labels: ref.labels.data as Int32Array,
      });
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
    async (gpu) => {
      const ref = await reference(variant);
      const m = await model(gpu, variant);
      const [B, S] = ref.input_ids.shape;
      const T = ref.labels.shape[1];
      // transformers' reference ran in eval mode: dropout off.
      const s = m.session({ batch: B, sourceLength: S, targetLength: T }, { dropoutRate: 0 });
      s.setBatch({
        inputsEmbeds: ref.inputs_embeds.data as Float32Array,
        attentionMask: ref.attention_mask.data,
        labels: ref.labels.data as Int32Array,
      });
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
    async (gpu) => {
      const ref = await reference(variant);
      const m = await model(gpu, variant);
      const [B, S] = ref.prompt_attention_mask.shape;
      const T = ref.labels.shape[1];
      const s = m.session({ batch: B, sourceLength: S, targetLength: T }, { dropoutRate: 0 });
      s.setBatch({
        inputsEmbeds: ref.prompt_inputs_embeds.data as Float32Array,
        attentionMask: ref.prompt_attention_mask.data,
        labels: ref.labels.data as Int32Array,
      });
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
  async (gpu) => {
    const ref = await reference("tiny-t5-v1_0");
    const m = await model(gpu, "tiny-t5-v1_0");
    const [B, S] = ref.input_ids.shape;
    const T = ref.labels.shape[1];
    const batch = {
      inputIds: ref.input_ids.data as Int32Array,
      attentionMask: ref.attention_mask.data,
      labels: ref.labels.data as Int32Array,
    };
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
    async (gpu) => {
      const ref = await reference(variant);
      const m = await model(gpu, variant);
      const [B, S] = ref.input_ids.shape;
      const gen = new T5Generator(m, { batch: B, sourceLength: S, maxNewTokens: 20 });
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
