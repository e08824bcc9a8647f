// Adapters in PEFT's layout: round trips, refusals, PEFT's own prompt-tuning adapter, and the
// files our writer makes, which tools/make_peft_fixtures.py --verify-deno loads with
// transformers and PEFT (tests/fixtures/peft/deno_written/; regenerate with
// `deno test -A tests/peft/adapter_test.ts -- --update-fixtures`, then run the verifier).
import assert from "node:assert/strict";
import { join } from "node:path";
import { openSafetensors } from "../../src/io/safetensors.ts";
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  loadAdapter,
  readAdapter,
  saveAdapter,
} from "../../src/peft/adapter.ts";
import type { AdeptMethod } from "../../src/peft/adept.ts";
import { exportFolded } from "../../src/peft/fold_export.ts";
import { PeftError, type PeftMethod } from "../../src/peft/method.ts";
import { gpuTest } from "../gpu_support.ts";
import { assertClose, Rng } from "../numeric.ts";
import { createMethod, PEFT_FIXTURES, tinyModel } from "./support.ts";

const UPDATE = Deno.args.includes("--update-fixtures");
const WRITTEN = join(PEFT_FIXTURES, "deno_written");

const meta = {
  baseModel: "tests/fixtures/t5/tiny-t5-v1_0",
  dModel: 64,
  vocabSize: 256,
  numHeads: 4,
  numLayers: 2,
};

async function fixtureParams(variant: string, name: string): Promise<Record<string, Float32Array>> {
  using r = await openSafetensors(join(PEFT_FIXTURES, variant, `${name}.safetensors`));
  const out: Record<string, Float32Array> = {};
  for (const n of r.names()) {
    if (n.startsWith("param.")) out[n.slice(6)] = await r.readFloat(n, { dtype: "f32" });
  }
  return out;
}

/** The logits of a method on the PEFT fixture batch (eval mode). */
async function logitsOf(method: PeftMethod, variant: string): Promise<Float32Array> {
  using r = await openSafetensors(join(PEFT_FIXTURES, variant, "prompt_tuning.safetensors"));
  const ids = (await r.read("input_ids")).data as Int32Array;
  const mask = await r.readFloat("attention_mask");
  const labels = (await r.read("labels")).data as Int32Array;
  const model = await tinyModel(method.gpu, variant as "tiny-t5-v1_0");
  const session = model.session({
    batch: 3,
    sourceLength: method.promptLength + 7,
    targetLength: 4,
  });
  const b = method.bind(session, { train: false, folded: false });
  b.setInputs(ids, mask);
  session.setLabels(labels);
  await method.gpu.run([...b.forwardOps, ...session.evalOps]);
  const logits = await session.readLogits();
  b.destroy();
  session.destroy();
  return logits;
}

gpuTest(
  "every method's adapter round-trips: same settings, same tensors, same logits",
  async (gpu) => {
    const model = await tinyModel(gpu, "tiny-t5-v1_0");
    const dir = await Deno.makeTempDir();
    for (
      const [name, o] of [
        ["adept", { promptLength: 3, rank: 2 }],
        ["dept", { promptLength: 3, rank: 2, maxSourceLength: 7 }],
        ["prompt_tuning", { promptLength: 3 }],
      ] as const
    ) {
      const m = await createMethod(model, name, o);
      const rng = new Rng(5);
      const values: Record<string, Float32Array> = {};
      for (const t of m.tensors) values[t.name] = rng.normal(t.param.size);
      m.writeState(values);
      await saveAdapter(join(dir, name), m, { ...meta, sourceLength: 7 });
      const { method: back, adapter } = await loadAdapter(join(dir, name), model);
      assert.deepEqual(back.config, m.config);
      assert.deepEqual(await back.readState(), values);
      assert.deepEqual(await logitsOf(back, "tiny-t5-v1_0"), await logitsOf(m, "tiny-t5-v1_0"));
      assert.equal(adapter.peftConfig.task_type, "SEQ_2_SEQ_LM", "PEFT needs task_type");
      back.destroy();
      m.destroy();
    }
    await Deno.remove(dir, { recursive: true });
  },
);

gpuTest(
  "ADePT and DePT adapters carry their authors' PEFT-fork names; PT is PEFT's own layout",
  async (gpu) => {
    const model = await tinyModel(gpu, "tiny-t5-v1_0");
    const dir = await Deno.makeTempDir();
    const names = async (name: string, o: Record<string, unknown>) => {
      const m = await createMethod(model, name, o);
      await saveAdapter(join(dir, name), m, meta);
      m.destroy();
      using r = await openSafetensors(join(dir, name, ADAPTER_WEIGHTS));
      const cfg = JSON.parse(await Deno.readTextFile(join(dir, name, ADAPTER_CONFIG)));
      return {
        tensors: Object.fromEntries(r.names().sort().map((n) => [n, r.info(n).shape])),
        cfg,
      };
    };
    const adept = await names("adept", { promptLength: 4, rank: 3 });
    assert.deepEqual(adept.tensors, {
      "prompt_embeddings": [4, 64],
      "prompt_encoder.lora_embedding_A": [64, 3],
      "prompt_encoder.lora_embedding_B": [3, 64],
      "prompt_encoder.lora_embedding_a": [3],
      "prompt_encoder.lora_embedding_b": [64],
    });
    assert.equal(adept.cfg.peft_type, "PROMPT_TUNING_LORAX");
    assert.equal(adept.cfg.r, 3);
    const dept = await names("dept", { promptLength: 4, rank: 3, maxSourceLength: 9 });
    assert.deepEqual(dept.tensors, {
      "prompt_embeddings": [4, 64],
      "prompt_encoder.lora_embedding_A": [9, 3],
      "prompt_encoder.lora_embedding_B": [3, 64],
    });
    assert.equal(dept.cfg.peft_type, "PROMPT_TUNING_LORA");
    assert.equal(dept.cfg.max_length, 9);
    assert.equal(dept.cfg.lora_alpha, 8);
    const pt = await names("prompt_tuning", { promptLength: 5 });
    assert.deepEqual(pt.tensors, { prompt_embeddings: [10, 64] });
    // the same keys as the adapter_config.json PEFT 0.21 wrote for the same model
    const peft = JSON.parse(
      await Deno.readTextFile(
        join(PEFT_FIXTURES, "tiny-t5-v1_0/peft_prompt_tuning", ADAPTER_CONFIG),
      ),
    );
    assert.deepEqual(Object.keys(pt.cfg), Object.keys(peft));
    for (
      const k of [
        "num_transformer_submodules",
        "num_virtual_tokens",
        "peft_type",
        "task_type",
        "token_dim",
        "num_layers",
        "num_attention_heads",
      ]
    ) {
      assert.equal(pt.cfg[k], peft[k], k);
    }
    await Deno.remove(dir, { recursive: true });
  },
);

gpuTest("an adapter PEFT wrote loads and gives PEFT's logits", async (gpu) => {
  const model = await tinyModel(gpu, "tiny-t5-v1_0");
  const { method, adapter } = await loadAdapter(
    join(PEFT_FIXTURES, "tiny-t5-v1_0/peft_prompt_tuning"),
    model,
  );
  assert.equal(method.name, "prompt_tuning");
  assert.equal(adapter.meta.vocabSize, undefined, "PEFT records no vocabulary");
  using r = await openSafetensors(
    join(PEFT_FIXTURES, "tiny-t5-v1_0/peft_prompt_tuning.reference.safetensors"),
  );
  const want = await r.readFloat("peft_logits");
  assertClose(await logitsOf(method, "tiny-t5-v1_0"), want, {
    atol: 2e-5,
    rtol: 1e-5,
    label: "logits vs PEFT",
  });
  method.destroy();
});

gpuTest(
  "loading refuses another width, another method and non-finite values, allocating nothing",
  async (gpu) => {
    const model = await tinyModel(gpu, "tiny-t5-v1_0");
    const dir = await Deno.makeTempDir();
    const m = await createMethod(model, "adept", { promptLength: 2, rank: 2 });
    await saveAdapter(dir, m, meta);
    m.destroy();
    const bytes = gpu.allocatedBytes;
    const edit = async (f: (cfg: Record<string, unknown>) => void) => {
      const path = join(dir, ADAPTER_CONFIG);
      const cfg = JSON.parse(await Deno.readTextFile(path));
      f(cfg);
      await Deno.writeTextFile(path, JSON.stringify(cfg));
    };
    await assert.rejects(
      loadAdapter(dir, model, { method: "dept" }),
      /this is a adept adapter, but --method dept/,
    );
    // PEFT-style adapters (no metadata) are checked against token_dim
    const other = join(dir, "other");
    await Deno.mkdir(other);
    const peftDir = join(PEFT_FIXTURES, "tiny-t5-v1_0/peft_prompt_tuning");
    await Deno.copyFile(join(peftDir, ADAPTER_WEIGHTS), join(other, ADAPTER_WEIGHTS));
    const cfg = JSON.parse(await Deno.readTextFile(join(peftDir, ADAPTER_CONFIG)));
    await Deno.writeTextFile(
      join(other, ADAPTER_CONFIG),
      JSON.stringify({ ...cfg, token_dim: 768 }),
    );
    await assert.rejects(
      loadAdapter(other, model),
      (e) =>
        e instanceof PeftError &&
        /made for a model of d_model 768 .* this model has d_model 64/.test(e.message),
    );
    await edit((c) => c.peft_type = "LORA");
    await assert.rejects(
      loadAdapter(dir, model),
      /peft_type "LORA" is not a method of this trainer/,
    );
    await edit((c) => c.peft_type = "PROMPT_TUNING_LORAX");
    // a NaN in the weights
    const saved = await readAdapter(dir);
    saved.tensors.b[5] = NaN;
    const { writeAdapter } = await import("../../src/peft/adapter.ts");
    await writeAdapter(
      dir,
      saved.methodConfig,
      Object.fromEntries(
        Object.entries(saved.tensors).map((
          [k, v],
        ) => [k, {
          shape: k === "A" ? [64, 2] : k === "Bw" ? [2, 64] : k === "prompt" ? [2, 64] : [v.length],
          data: v,
        }]),
      ),
      meta,
    );
    await assert.rejects(loadAdapter(dir, model), /"b"\[5\] is NaN/);
    assert.equal(gpu.allocatedBytes, bytes, "nothing allocated by refused loads");
    await Deno.remove(dir, { recursive: true });
  },
);

gpuTest(
  "the files our writers make equal tests/fixtures/peft/deno_written/ (checked by transformers and PEFT)",
  async (gpu) => {
    const tmp = UPDATE ? WRITTEN : await Deno.makeTempDir();
    const model = await tinyModel(gpu, "tiny-t5-v1_0");
    const pt = await createMethod(model, "prompt_tuning", { promptLength: 5 });
    pt.writeState(await fixtureParams("tiny-t5-v1_0", "prompt_tuning"));
    await saveAdapter(join(tmp, "prompt_tuning"), pt, meta);
    pt.destroy();
    const adept = await createMethod(model, "adept", { promptLength: 5, rank: 3 }) as AdeptMethod;
    adept.writeState(await fixtureParams("tiny-t5-v1_0", "adept"));
    await exportFolded(join(tmp, "adept_folded"), model, adept, meta);
    adept.destroy();
    if (UPDATE) return;
    for (
      const f of [
        "prompt_tuning/adapter_config.json",
        "prompt_tuning/adapter_model.safetensors",
        "adept_folded/model/config.json",
        "adept_folded/model/model.safetensors",
        "adept_folded/prompt/adapter_config.json",
        "adept_folded/prompt/adapter_model.safetensors",
      ]
    ) {
      assert.deepEqual(
        await Deno.readFile(join(tmp, f)),
        await Deno.readFile(join(WRITTEN, f)),
        `${f} changed: regenerate with --update-fixtures and rerun tools/make_peft_fixtures.py --verify-deno`,
      );
    }
    await Deno.remove(tmp, { recursive: true });
  },
);
