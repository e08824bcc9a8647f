import assert from "node:assert/strict";
import { openSafetensors, type TensorToWrite, writeSafetensors } from "../../src/io/safetensors.ts";
import { loadT5 } from "../../src/model/t5.ts";
import { T5WeightsError } from "../../src/model/t5_weights.ts";
import { startMockHub } from "../support/mock_hub.ts";
import { gpuTest } from "../gpu_support.ts";

const TINY = new URL("../fixtures/t5/tiny-t5-v1_0/", import.meta.url).pathname;

async function tinyTensors(): Promise<Map<string, TensorToWrite>> {
  using r = await openSafetensors(`${TINY}model.safetensors`);
  const out = new Map<string, TensorToWrite>();
  for (const name of r.names()) {
    out.set(name, { shape: r.info(name).shape, data: await r.readFloat(name, { dtype: "f32" }) });
  }
  return out;
}

/** A model folder holding the tiny v1.0 config and the given tensors. */
async function folder(
  tensors: Map<string, TensorToWrite>,
  file = "model.safetensors",
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "t5w_" });
  await Deno.copyFile(`${TINY}config.json`, `${dir}/config.json`);
  await writeSafetensors(`${dir}/${file}`, tensors);
  return dir;
}

async function sameWeights(gpu: Parameters<Parameters<typeof gpuTest>[1]>[0], dir: string) {
  const ref = await loadT5(gpu, TINY);
  const m = await loadT5(gpu, dir);
  for (const name of ["shared.weight", "encoder.block.1.layer.1.DenseReluDense.wo.weight"]) {
    assert.deepEqual(await gpu.read(m.w(name)), await gpu.read(ref.w(name)), name);
  }
  gpu.freeArena(ref.weights);
  gpu.freeArena(m.weights);
}

gpuTest("loadT5() accepts the embedding stored as encoder.embed_tokens.weight", async (gpu) => {
  const t = await tinyTensors();
  t.set("encoder.embed_tokens.weight", t.get("shared.weight")!);
  t.delete("shared.weight");
  const dir = await folder(t);
  try {
    await sameWeights(gpu, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest("loadT5() accepts a tied checkpoint that also carries lm_head.weight", async (gpu) => {
  const t = await tinyTensors();
  t.set("lm_head.weight", t.get("shared.weight")!);
  const dir = await folder(t);
  try {
    await sameWeights(gpu, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest("loadT5() reads a sharded checkpoint through model.safetensors.index.json", async (gpu) => {
  const t = await tinyTensors();
  const names = [...t.keys()];
  const dir = await Deno.makeTempDir({ prefix: "t5w_" });
  try {
    await Deno.copyFile(`${TINY}config.json`, `${dir}/config.json`);
    const halves = [names.slice(0, names.length / 2), names.slice(names.length / 2)];
    const weightMap: Record<string, string> = {};
    for (const [i, part] of halves.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensors(
        `${dir}/${file}`,
        part.map((n) => [n, t.get(n)!] as [string, TensorToWrite]),
      );
      for (const n of part) weightMap[n] = file;
    }
    await Deno.writeTextFile(
      `${dir}/model.safetensors.index.json`,
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    await sameWeights(gpu, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest("loadT5() converts F16 and BF16 checkpoints to f32", async (gpu) => {
  const t = await tinyTensors();
  const half = new Map<string, TensorToWrite>();
  for (const [name, v] of t) {
    const f = v.data as Float32Array;
    if (name.includes("wo")) {
      // bf16: the top 16 bits of each f32
      const u = new Uint16Array(f.length);
      const bits = new Uint32Array(f.buffer, f.byteOffset, f.length);
      for (let i = 0; i < f.length; i++) u[i] = bits[i] >>> 16;
      half.set(name, { dtype: "BF16", shape: v.shape, data: u });
    } else {
      half.set(name, { shape: v.shape, data: Float16Array.from(f) });
    }
  }
  const dir = await folder(half);
  try {
    const m = await loadT5(gpu, dir);
    const shared = t.get("shared.weight")!.data as Float32Array;
    assert.deepEqual(
      await gpu.read(m.w("shared.weight")),
      Float32Array.from(Float16Array.from(shared)),
    );
    const wo = t.get("encoder.block.0.layer.1.DenseReluDense.wo.weight")!.data as Float32Array;
    const got = await gpu.read(
      m.w("encoder.block.0.layer.1.DenseReluDense.wo.weight"),
    ) as Float32Array;
    const bits = new Uint32Array(wo.buffer, wo.byteOffset, wo.length);
    const truncated = new Float32Array(Uint32Array.from(bits, (b) => (b >>> 16) << 16).buffer);
    assert.deepEqual(got, truncated);
    gpu.freeArena(m.weights);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest(
  "a missing or misshapen tensor is named with its file, before any GPU memory is used",
  async (gpu) => {
    const t = await tinyTensors();
    t.delete("decoder.block.1.layer.1.EncDecAttention.k.weight");
    let dir = await folder(t);
    const before = gpu.allocatedBytes;
    try {
      await assert.rejects(loadT5(gpu, dir), (e: Error) => {
        assert.ok(e instanceof T5WeightsError);
        assert.match(
          e.message,
          /model\.safetensors: missing tensor "decoder\.block\.1\.layer\.1\.EncDecAttention\.k\.weight"/,
        );
        return true;
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    const t2 = await tinyTensors();
    t2.set("encoder.final_layer_norm.weight", { shape: [63], data: new Float32Array(63) });
    dir = await folder(t2);
    try {
      await assert.rejects(
        loadT5(gpu, dir),
        /tensor "encoder\.final_layer_norm\.weight" has shape \(63\), the config implies \(64\)/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    const t3 = await tinyTensors();
    t3.delete("shared.weight");
    dir = await folder(t3);
    try {
      await assert.rejects(
        loadT5(gpu, dir),
        /no token embedding found: expected one of shared\.weight/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    assert.equal(gpu.allocatedBytes, before);
  },
);

gpuTest(
  "loadT5() downloads a Hub id into the HF cache, then loads it offline without a request",
  async (gpu) => {
    const files: Record<string, Uint8Array> = {};
    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "reference.json"]) {
      files[f] = await Deno.readFile(`${TINY}${f}`);
    }
    await using hub = startMockHub({ repos: [{ id: "tiny/t5-v1_0", files }] });
    const cache = await Deno.makeTempDir({ prefix: "hfcache_" });
    try {
      const m = await loadT5(gpu, "tiny/t5-v1_0", {
        cacheDir: cache,
        endpoint: hub.url,
        token: false,
      });
      const snap = `${cache}/models--tiny--t5-v1_0/snapshots`;
      const [sha] = [...Deno.readDirSync(snap)].map((e) => e.name);
      const cached = [...Deno.readDirSync(`${snap}/${sha}`)].map((e) => e.name).sort();
      assert.deepEqual(
        cached,
        ["config.json", "model.safetensors"],
        "only the files the model reads",
      );
      gpu.freeArena(m.weights);
      hub.clear();
      const off = await loadT5(gpu, "tiny/t5-v1_0", {
        cacheDir: cache,
        endpoint: hub.url,
        offline: true,
      });
      assert.equal(hub.requests.length, 0);
      assert.equal(off.config.dModel, 64);
      gpu.freeArena(off.weights);
    } finally {
      await Deno.remove(cache, { recursive: true });
    }
  },
);

gpuTest("the backward pass leaves every frozen weight untouched", async (gpu) => {
  const m = await loadT5(gpu, TINY);
  const before = new Map<string, Float32Array>();
  for (const [name, t] of Object.entries(m.weights.tensors)) {
    before.set(name, await gpu.read(t) as Float32Array);
  }
  const s = m.session({ batch: 2, sourceLength: 6, targetLength: 3 });
  s.setBatch({
    inputIds: new Int32Array([5, 6, 7, 8, 9, 1, 10, 11, 1, 0, 0, 0]),
    attentionMask: [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    labels: new Int32Array([12, 13, 1, 14, 1, -100]),
  });
  await s.backward();
  assert.ok(Number.isFinite(await s.readLoss()));
  for (const [name, t] of Object.entries(m.weights.tensors)) {
    assert.deepEqual(await gpu.read(t), before.get(name), `${name} changed`);
  }
  s.destroy();
  gpu.freeArena(m.weights);
});

gpuTest(
  "a session too large for the device fails before allocating, suggesting a smaller batch",
  async (gpu) => {
    const m = await loadT5(gpu, TINY);
    const limit = gpu.limits.maxStorageBufferBindingSize;
    // The attention probabilities (B, H, S, S) f32 of one layer exceed one binding.
    const S = Math.ceil(Math.sqrt(limit / 4 / m.config.numHeads)) + 1;
    const before = gpu.allocatedBytes;
    assert.throws(
      () => m.session({ batch: 1, sourceLength: S, targetLength: 2 }),
      (e: Error) =>
        e.name === "GpuLimitError" && /use a smaller batch or sequence length/.test(e.message) &&
        e.message.includes(`source length ${S}`),
    );
    assert.equal(gpu.allocatedBytes, before);
    assert.ok(m.sessionBytes({ batch: 2, sourceLength: 8, targetLength: 3 }) > 0);
    assert.throws(
      () => m.session({ batch: 0, sourceLength: 8, targetLength: 3 }),
      /batch must be a positive integer, got 0/,
    );
    gpu.freeArena(m.weights);
  },
);

gpuTest(
  "a tied checkpoint whose lm_head.weight differs from the embedding uses that head, as transformers 5 does",
  async (gpu) => {
    const t = await tinyTensors();
    const shared = t.get("shared.weight")!;
    // lm_head = 2 x embedding: the logits must double exactly (power-of-two scaling).
    t.set("lm_head.weight", {
      shape: shared.shape,
      data: Float32Array.from(shared.data as Float32Array, (v) => 2 * v),
    });
    const dir = await folder(t);
    try {
      const ref = await loadT5(gpu, TINY);
      const m = await loadT5(gpu, dir);
      assert.ok(m.weights.tensors["lm_head.weight"], "the head is loaded");
      assert.equal(
        ref.weights.tensors["lm_head.weight"],
        undefined,
        "the fixture uses its embedding",
      );
      const batch = {
        inputIds: new Int32Array([5, 6, 7, 1]),
        attentionMask: [1, 1, 1, 1],
        labels: new Int32Array([8, 9, 1]),
      };
      const logits = [];
      for (const model of [ref, m]) {
        const s = model.session({ batch: 1, sourceLength: 4, targetLength: 3 });
        s.setBatch(batch);
        await s.forward();
        logits.push(await s.readLogits());
        s.destroy();
      }
      assert.deepEqual(logits[1], logits[0].map((v) => 2 * v));
      ref.destroy();
      m.destroy();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest(
  "an untied (v1.1) config whose checkpoint has no lm_head.weight falls back to the embedding",
  async (gpu) => {
    const v11 = new URL("../fixtures/t5/tiny-t5-v1_1/", import.meta.url).pathname;
    using r = await openSafetensors(`${v11}model.safetensors`);
    const t = new Map<string, TensorToWrite>();
    for (const name of r.names()) {
      if (name !== "lm_head.weight") {
        t.set(name, { shape: r.info(name).shape, data: await r.readFloat(name, { dtype: "f32" }) });
      }
    }
    const dir = await Deno.makeTempDir({ prefix: "t5w_" });
    try {
      await Deno.copyFile(`${v11}config.json`, `${dir}/config.json`);
      await writeSafetensors(`${dir}/model.safetensors`, t);
      const m = await loadT5(gpu, dir);
      assert.equal(m.config.tieWordEmbeddings, false);
      assert.equal(m.weights.tensors["lm_head.weight"], undefined);
      m.destroy();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
