// Each method matched against PyTorch autograd and torch.optim.AdamW on the tiny T5 fixtures
// (tools/make_peft_fixtures.py; tests/fixtures/peft/README.md): loss and logits, the gradient of
// every trainable tensor, and two AdamW steps with two groups and clipping at 1.0. Dropout off.
import assert from "node:assert/strict";
import { openSafetensors } from "../../src/io/safetensors.ts";
import { TrainStep } from "../../src/train/step.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose } from "../numeric.ts";
import { loadT5 } from "../../src/model/t5.ts";
import { embeddingTable } from "../../src/model/t5_graph.ts";
import { loadAdapter } from "../../src/peft/adapter.ts";
import { createMethod, PEFT_FIXTURES, tinyModel } from "./support.ts";

type Fixture = Record<string, Float32Array | Int32Array>;

async function fixture(variant: string, method: string): Promise<Fixture> {
  using r = await openSafetensors(`${PEFT_FIXTURES}${variant}/${method}.safetensors`);
  const out: Fixture = {};
  for (const n of r.names()) {
    const t = await r.read(n);
    out[n] = t.data instanceof Int32Array ? t.data : await r.readFloat(n, { dtype: "f32" });
  }
  return out;
}

const f32 = (x: Fixture, k: string) => x[k] as Float32Array;

/** ‖a − b‖ / ‖b‖. */
function relNorm(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, n = 0;
  for (let i = 0; i < b.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / n);
}

/** Elementwise within `rel`, relative to the tensor's largest magnitude. */
function closeScaled(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rel: number,
  label: string,
) {
  let m = 0;
  for (let i = 0; i < expected.length; i++) m = Math.max(m, Math.abs(expected[i]));
  assertClose(actual, expected, { atol: rel * m, rtol: rel, label });
}

const METHODS = {
  adept: { promptLength: 5, rank: 3 },
  dept: { promptLength: 5, rank: 3, maxSourceLength: 7 },
  prompt_tuning: { promptLength: 5 },
} as const;

for (const variant of ["tiny-t5-v1_0", "tiny-t5-v1_1"] as const) {
  for (const [name, overrides] of Object.entries(METHODS)) {
    gpuTest(
      `${name} on ${variant} matches PyTorch: loss, logits, every gradient and two AdamW steps`,
      async (gpu) => {
        const x = await fixture(variant, name);
        const model = await tinyModel(gpu, variant);
        const method = await createMethod(model, name, overrides);
        const params: Record<string, Float32Array> = {};
        for (const t of method.tensors) params[t.name] = f32(x, `param.${t.name}`);
        method.writeState(params);
        const [B, S] = [3, 7];
        const step = new TrainStep(model, method, {
          batch: B,
          sourceLength: S,
          targetLength: 4,
          lrs: { prompt: 0.3, offset: 1e-2 },
          warmup: 0,
          steps: 2,
          seed: 0,
          dropoutRate: 0,
          historySlots: 2,
          schedule: () => 1, // constant learning rates, as the fixture
        });
        const batch = {
          inputIds: x.input_ids as Int32Array,
          attentionMask: f32(x, "attention_mask"),
          labels: x.labels as Int32Array,
        };
        // The loss and gradients at the fixture's parameters, from one forward/backward (a
        // training step would then move the parameters).
        const binding = step.binding;
        binding.setInputs(batch.inputIds, batch.attentionMask);
        step.session.setLabels(batch.labels);
        await gpu.run([
          ...binding.forwardOps,
          ...step.session.trainOps,
          ...step.session.backwardOps,
          ...binding.backwardOps,
        ]);
        assertClose([await step.session.readLoss()], [f32(x, "loss")[0]], {
          rtol: 1e-4,
          atol: 0,
          label: "loss",
        });
        closeScaled(await step.session.readLogits(), f32(x, "logits"), 1e-4, "logits");
        closeScaled(
          await gpu.read(step.session.inputsEmbeds),
          f32(x, "encoder.inputs_embeds"),
          1e-5,
          "inputs_embeds",
        );
        const grads = await method.readState("grad");
        for (const t of method.tensors) {
          closeScaled(grads[t.name], f32(x, `grad.${t.name}`), 1e-3, `grad ${t.name}`);
        }
        for (const k of [1, 2]) {
          await step.run(batch, k);
          const stats = await step.stats(k, 1);
          assertClose([stats.history[0].loss], [f32(x, `adamw.loss${k}`)[0]], {
            rtol: 1e-4,
            atol: 0,
            label: `loss before step ${k}`,
          });
          assertClose([stats.history[0].gradNorm], [f32(x, `adamw.grad_norm${k}`)[0]], {
            rtol: 1e-3,
            atol: 0,
            label: `grad norm ${k}`,
          });
          const now = await method.readState();
          for (const t of method.tensors) {
            const err = relNorm(now[t.name], f32(x, `adamw.step${k}.${t.name}`));
            assert.ok(
              err <= 1e-5,
              `${t.name} after AdamW step ${k}: ‖Δ‖/‖p‖ = ${err.toExponential(2)} > 1e-5`,
            );
          }
        }
        step.destroy();
        method.destroy();
      },
    );
  }
}

gpuTest(
  "an exported ADePT loads back: the folded checkpoint plus its prompt adapter give PyTorch's ADePT logits",
  async (gpu) => {
    const x = await fixture("tiny-t5-v1_0", "adept");
    const dir = `${PEFT_FIXTURES}deno_written/adept_folded`;
    const model = await loadT5(gpu, `${dir}/model`);
    // the encoder reads its own (folded) table, the decoder and the LM head the original one
    const base = await tinyModel(gpu, "tiny-t5-v1_0");
    const enc = await gpu.read(embeddingTable(model, "encoder"));
    const shared = await gpu.read(model.w("shared.weight"));
    assert.deepEqual(shared, await gpu.read(base.w("shared.weight")));
    assert.notDeepEqual(enc, shared);
    assert.equal(embeddingTable(model, "decoder"), model.w("shared.weight"));
    const { method } = await loadAdapter(`${dir}/prompt`, model);
    assert.equal(method.name, "prompt_tuning");
    const step = new TrainStep(model, method, {
      batch: 3,
      sourceLength: 7,
      targetLength: 4,
      lrs: { prompt: 0.3, offset: 1e-2 },
      warmup: 0,
      steps: 1,
      seed: 0,
      dropoutRate: 0,
      historySlots: 1,
    });
    step.binding.setInputs(x.input_ids as Int32Array, f32(x, "attention_mask"));
    step.session.setLabels(x.labels as Int32Array);
    await gpu.run([...step.binding.forwardOps, ...step.session.trainOps]);
    closeScaled(await step.session.readLogits(), f32(x, "logits"), 1e-4, "logits");
    step.destroy();
    method.destroy();
    model.destroy();
  },
);
