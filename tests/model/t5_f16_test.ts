// T5 with its frozen projection matrices in f16 (loadT5's weightDtype "f16"): parity with
// transformers (float32) within the tolerance half-precision weights cost, and with our own f32
// weights; the memory saved; the error on an adapter without shader-f16.
import assert from "node:assert/strict";
import { arenaBytes, type Gpu, requestGpu } from "../../src/gpu/device.ts";
import { loadT5, type T5Model } from "../../src/model/t5.ts";
import { parseT5Config } from "../../src/model/t5_config.ts";
import {
  isT5Projection,
  loadT5Weights,
  randomT5Weights,
  T5WeightsError,
  t5WeightSpecs,
} from "../../src/model/t5_weights.ts";
import { loadT5Config } from "../../src/model/t5_config.ts";
import { openSafetensors } from "../../src/io/safetensors.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose, diffStats } from "../numeric.ts";

const FIXTURES = new URL("../fixtures/t5/", import.meta.url).pathname;
const VARIANTS = ["tiny-t5-v1_0", "tiny-t5-v1_1"] as const;

/**
 * The tolerances f16 weights cost, relative to the largest magnitude of the reference (the
 * f32 model meets 1e-5 on outputs and 1e-4 on gradients, tests/model/t5_test.ts). Rounding a
 * weight to f16 changes it by up to 2^-11 (4.9e-4) of itself. Measured on both tiny T5s (2+2
 * layers): encoder output and logits 2e-4 to 4e-4, loss 1e-5 to 4e-5 (relative), gradient
 * 1.0e-3 to 1.2e-3; the bounds leave a factor of 4 or more.
 */
const F16_TOL = { outputs: 2e-3, loss: 5e-4, grad: 5e-3 };

interface Ref {
  [name: string]: { data: Float32Array | Int32Array; shape: number[] };
}

async function reference(model: string): Promise<Ref> {
  using r = await openSafetensors(`${FIXTURES}${model}/reference.safetensors`);
  const out: Ref = {};
  for (const name of r.names()) {
    const info = r.info(name);
    out[name] = info.dtype === "F32"
      ? { data: await r.readFloat(name, { dtype: "f32" }), shape: [...info.shape] }
      : {
        data: Int32Array.from((await r.read(name)).data as ArrayLike<number | bigint>, Number),
        shape: [...info.shape],
      };
  }
  return out;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Largest difference relative to the reference's largest magnitude. */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  return diffStats(got, want).maxAbs / maxAbs(want);
}

const models = new Map<string, T5Model>();
async function model(gpu: Gpu, name: string, weightDtype: "f32" | "f16") {
  const key = `${name}/${weightDtype}`;
  let m = models.get(key);
  if (!m) {
    m = await loadT5(gpu, `${FIXTURES}${name}`, { weightDtype });
    models.set(key, m);
  }
  return m;
}

/** Logits, loss and the inputs_embeds gradient of a model on the reference batch. */
async function run(m: T5Model, ref: Ref) {
  const [B, S] = ref.input_ids.shape;
  const T = ref.labels.shape[1];
  const s = m.session({ batch: B, sourceLength: S, targetLength: T }, { dropoutRate: 0 });
  s.setBatch({
    inputsEmbeds: ref.inputs_embeds.data as Float32Array,
    attentionMask: ref.attention_mask.data,
    labels: ref.labels.data as Int32Array,
  });
  await s.backward();
  const out = {
    encoder: await s.readEncoderOutput(),
    logits: await s.readLogits(),
    loss: await s.readLoss(),
    grad: await s.readInputsEmbedsGrad(),
  };
  s.destroy();
  return out;
}

for (const variant of VARIANTS) {
  gpuTest(
    `${variant} with f16 projections: encoder output, logits, loss and the inputs_embeds gradient match transformers within the f16 tolerance`,
    async (gpu) => {
      if (!gpu.hasF16) return; // covered by the shader-f16 error test below
      const ref = await reference(variant);
      const half = await model(gpu, variant, "f16");
      assert.equal(half.weightDtype, "f16");
      const got = await run(half, ref);
      const want = {
        encoder: ref.encoder_last_hidden_state.data,
        logits: ref.logits.data,
        grad: ref.grad_inputs_embeds.data,
      };
      const errs = {
        encoder: relErr(got.encoder, want.encoder),
        logits: relErr(got.logits, want.logits),
        loss: Math.abs(got.loss - ref.loss.data[0]) / Math.abs(ref.loss.data[0]),
        grad: relErr(got.grad, want.grad),
      };
      console.log(
        `${variant} f16 vs transformers, relative to the largest value: ${JSON.stringify(errs)}`,
      );
      for (const k of ["encoder", "logits"] as const) {
        assertClose(got[k], want[k], {
          atol: F16_TOL.outputs * maxAbs(want[k]),
          rtol: 0,
          label: `f16 ${k}`,
        });
      }
      assertClose([got.loss], [ref.loss.data[0]], {
        atol: 0,
        rtol: F16_TOL.loss,
        label: "f16 loss",
      });
      assertClose(got.grad, want.grad, {
        atol: F16_TOL.grad * maxAbs(want.grad),
        rtol: 0,
        label: "f16 gradient",
      });
      // f16 weights do cost something: the outputs are not those of the f32 weights.
      const full = await run(await model(gpu, variant, "f32"), ref);
      assert.ok(relErr(got.logits, full.logits) > 1e-6, "the f16 path really ran");
      assertClose(got.logits, full.logits, {
        atol: F16_TOL.outputs * maxAbs(full.logits),
        rtol: 0,
        label: "f16 vs f32 logits",
      });
    },
  );
}

gpuTest(
  "f16 projections: only the projection matrices are f16, pieces of any size load the same values, and greedy decoding runs",
  async (gpu) => {
    if (!gpu.hasF16) return;
    const dir = `${FIXTURES}tiny-t5-v1_1`;
    const cfg = await loadT5Config(dir);
    const whole = await loadT5Weights(gpu, dir, cfg, { weightDtype: "f16" });
    // 1332 bytes = 333 f32 elements: rounded to an even count, so f16 pieces stay 4-byte aligned
    const pieces = await loadT5Weights(gpu, dir, cfg, { weightDtype: "f16", chunkBytes: 1332 });
    using st = await openSafetensors(dir);
    for (const [name, t] of Object.entries(whole.tensors)) {
      assert.equal(t.dtype, isT5Projection(name) ? "f16" : "f32", name);
      const a = await gpu.read(t), b = await gpu.read(pieces.tensors[name]);
      assert.deepEqual(b, a, `${name}: pieces of 332 elements load the same values`);
      if (st.has(name)) {
        const f32 = await st.readFloat(name, { dtype: "f32" });
        assert.deepEqual(a, t.dtype === "f16" ? Float16Array.from(f32) : f32, name);
      }
    }
    gpu.freeArena(whole);
    gpu.freeArena(pieces);
    const m = await model(gpu, "tiny-t5-v1_1", "f16");
    const g = m.generator({ batch: 1, sourceLength: 4, maxNewTokens: 4 });
    const [ids] = await g.generate({
      inputIds: Int32Array.of(13, 8, 1, 0),
      attentionMask: [1, 1, 1, 0],
    });
    assert.ok(ids.length >= 1 && ids.length <= 4);
    g.destroy();
  },
);

Deno.test("f16 projections halve the weights' memory but for the embeddings: t5-small and t5-base", () => {
  const mib = (b: number) => b / 2 ** 20;
  const rows: string[] = [];
  for (
    const [name, raw] of [
      ["t5-small", { d_model: 512, d_kv: 64, d_ff: 2048, num_heads: 8, num_layers: 6 }],
      ["t5-base", { d_model: 768, d_kv: 64, d_ff: 3072, num_heads: 12, num_layers: 12 }],
      ["flan-t5-base", {
        d_model: 768,
        d_kv: 64,
        d_ff: 2048,
        num_heads: 12,
        num_layers: 12,
        feed_forward_proj: "gated-gelu",
        tie_word_embeddings: false,
      }],
    ] as const
  ) {
    const cfg = parseT5Config({
      model_type: "t5",
      vocab_size: 32128,
      relative_attention_num_buckets: 32,
      ...raw,
    });
    const f32 = arenaBytes(t5WeightSpecs(cfg));
    const f16 = arenaBytes(t5WeightSpecs(cfg, { weightDtype: "f16" }));
    const emb = 32128 * cfg.dModel * 4;
    // everything but the embedding (and the small biases and norms) is halved
    assert.ok(Math.abs(f16 - (emb + (f32 - emb) / 2)) < 0.01 * f32, name);
    rows.push(`${name}: ${mib(f32).toFixed(1)} MiB -> ${mib(f16).toFixed(1)} MiB`);
  }
  console.log(`weights on the GPU, f32 -> f16 projections: ${rows.join("; ")}`);
});

Deno.test("weightDtype f16 on an adapter without shader-f16 is refused, naming the feature", async () => {
  const gpu = await requestGpu({ log: false, f16: false });
  try {
    await assert.rejects(
      () => loadT5(gpu, `${FIXTURES}tiny-t5-v1_0`, { weightDtype: "f16" }),
      (e: Error) =>
        e instanceof T5WeightsError && /weightDtype "f16" needs the adapter feature shader-f16/
          .test(e.message),
    );
    const cfg = await loadT5Config(`${FIXTURES}tiny-t5-v1_0`);
    assert.throws(() => randomT5Weights(gpu, cfg, { weightDtype: "f16" }), /shader-f16/);
    assert.throws(
      () => randomT5Weights(gpu, cfg, { weightDtype: "bf16" as never }),
      /weightDtype must be "f32" or "f16", got "bf16"/,
    );
    assert.equal(gpu.allocatedBytes, 0, "nothing was allocated");
  } finally {
    gpu.destroy();
  }
});
