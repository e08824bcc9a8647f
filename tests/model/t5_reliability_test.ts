// Configs whose sizes are absurd or disagree with the checkpoint are refused by file and field
// before anything is sized from them; weights stream to the GPU in bounded pieces, checked
// against the device's limits first; a sharded checkpoint's lm_head.weight is used even when
// the index omits it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { openSafetensors, type TensorToWrite, writeSafetensors } from "../../src/io/safetensors.ts";
import {
  loadT5Config,
  parseT5Config,
  T5_CONFIG_LIMITS,
  type T5Config,
  T5ConfigError,
} from "../../src/model/t5_config.ts";
import { checkT5Checkpoint, loadT5Weights, T5WeightsError } from "../../src/model/t5_weights.ts";
import type { Gpu } from "../../src/gpu/device.ts";
import { gpuTest } from "../gpu_support.ts";
import { withTempDir } from "../support/temp.ts";

const FIXTURES = new URL("../fixtures/t5/", import.meta.url).pathname;
const V10 = join(FIXTURES, "tiny-t5-v1_0");
const V11 = join(FIXTURES, "tiny-t5-v1_1");

function configError(e: unknown, file: string, field: string, needle: RegExp): boolean {
  assert.ok(e instanceof T5ConfigError, `expected a T5ConfigError, got ${e}`);
  assert.equal(e.file, file);
  assert.equal(e.field, field);
  assert.match(e.message, needle);
  return true;
}

Deno.test("every size in config.json is bounded: 1e9 or 1e308 is refused at once, naming the file and field", async () => {
  const raw = JSON.parse(await Deno.readTextFile(join(V10, "config.json")));
  for (const field of Object.keys(T5_CONFIG_LIMITS)) {
    for (const v of [1e9, 1e308]) {
      const t0 = performance.now();
      assert.throws(
        () => parseT5Config({ ...raw, [field]: v }, { source: "x/config.json" }),
        (e) => configError(e, "x/config.json", field, new RegExp(`above the limit of`)),
      );
      assert.ok(performance.now() - t0 < 100);
    }
  }
  assert.throws(
    () => parseT5Config({ ...raw, num_heads: 1024, d_kv: 65536 }, { source: "c.json" }),
    (e) => configError(e, "c.json", "d_kv", /num_heads 1024 × d_kv 65536 = 67108864 is above/),
  );
});

Deno.test("a config whose sizes disagree with the checkpoint is refused before any spec is built, naming config.json and the field", async () => {
  const cfg = await loadT5Config(V10);
  const cfg11 = await loadT5Config(V11);
  const configFile = join(V10, "config.json");
  const cases: [Partial<T5Config>, string, RegExp][] = [
    [
      { numLayers: 1_000_000_000 },
      "num_layers",
      /num_layers is 1000000000, but the checkpoint has 2 encoder blocks \(encoder\.block\.0 to encoder\.block\.1\)/,
    ],
    [
      { numDecoderLayers: 3 },
      "num_decoder_layers",
      /num_decoder_layers is 3, but the checkpoint has 2 decoder blocks/,
    ],
    [{ dModel: 65 }, "d_model", /d_model is 65, but "shared\.weight" has shape \(256, 64\)/],
    [{ vocabSize: 32128 }, "vocab_size", /vocab_size is 32128, but "shared\.weight" has shape/],
    [
      { numHeads: 8, innerDim: 8 * 16 },
      "num_heads",
      /num_heads is 8, but the relative attention bias has shape \(32, 4\)/,
    ],
    [
      { dKv: 32, innerDim: 4 * 32 },
      "d_kv",
      /num_heads 4 × d_kv 32 = 128, but .*q\.weight" has shape \(64, 64\)/,
    ],
    [{ dFf: 1 << 20 }, "d_ff", /d_ff is 1048576, but the feed-forward input has shape \(128, 64\)/],
    [
      { relativeAttentionNumBuckets: 64 },
      "relative_attention_num_buckets",
      /is 64, but the relative attention bias has shape \(32, 4\)/,
    ],
    [
      { isGatedAct: true, feedForwardProj: "gated-gelu" },
      "feed_forward_proj",
      /"gated-gelu" is gated, but the checkpoint has wi\.weight/,
    ],
  ];
  for (const [change, field, needle] of cases) {
    const t0 = performance.now();
    await assert.rejects(
      checkT5Checkpoint(V10, { ...cfg, ...change }),
      (e) => configError(e, configFile, field, needle),
    );
    assert.ok(performance.now() - t0 < 2000, `${field}: ${performance.now() - t0} ms`);
  }
  await assert.rejects(
    checkT5Checkpoint(V11, { ...cfg11, isGatedAct: false, feedForwardProj: "relu" }),
    (e) =>
      configError(
        e,
        join(V11, "config.json"),
        "feed_forward_proj",
        /is not gated, but the checkpoint has wi_0/,
      ),
  );
  await checkT5Checkpoint(V10, cfg);
  await checkT5Checkpoint(V11, cfg11);
});

Deno.test("each weight is checked against the device's buffer and binding limits first, naming the file and tensor", async () => {
  const cfg = await loadT5Config(V10);
  await assert.rejects(
    checkT5Checkpoint(V10, cfg, {
      limits: { maxBufferSize: 1 << 30, maxStorageBufferBindingSize: 60_000 },
    }),
    (e) => {
      assert.ok(e instanceof T5WeightsError);
      assert.equal(e.file, join(V10, "model.safetensors"));
      assert.equal(e.tensor, "shared.weight");
      assert.match(
        e.message,
        /model\.safetensors: tensor "shared\.weight" of shape \(256, 64\) needs 65536 bytes as f32 on the GPU, more than the device's maxStorageBufferBindingSize of 60000 bytes/,
      );
      return true;
    },
  );
});

async function tensorsOf(dir: string): Promise<Map<string, TensorToWrite>> {
  using r = await openSafetensors(dir);
  const out = new Map<string, TensorToWrite>();
  for (const n of r.names()) out.set(n, { shape: r.info(n).shape, data: await r.readFloat(n) });
  return out;
}

gpuTest(
  "weights streamed to the GPU in small pieces equal the file's, tensor for tensor",
  async (gpu) => {
    const cfg = await loadT5Config(V11);
    const want = await tensorsOf(V11);
    const arena = await loadT5Weights(gpu, V11, cfg, { chunkBytes: 1000 });
    try {
      for (const [name, t] of Object.entries(arena.tensors)) {
        assert.deepEqual(await gpu.read(t), want.get(name)!.data, name);
      }
    } finally {
      gpu.freeArena(arena);
    }
  },
);

gpuTest(
  "a shard's lm_head.weight that the index omits is used, as transformers uses it",
  async (gpu) => {
    for (const dir of [V10, V11]) {
      const cfg = await loadT5Config(dir);
      const t = await tensorsOf(dir);
      const head = Float32Array.from({ length: cfg.vocabSize * cfg.dModel }, (_, i) => (i % 7) / 7);
      t.set("lm_head.weight", { shape: [cfg.vocabSize, cfg.dModel], data: head });
      await withTempDir(async (out) => {
        const names = [...t.keys()];
        const weightMap: Record<string, string> = {};
        for (const [i, part] of [names.slice(0, 10), names.slice(10)].entries()) {
          const file = `model-${i + 1}.safetensors`;
          await writeSafetensors(
            join(out, file),
            part.map((n): [string, TensorToWrite] => [n, t.get(n)!]),
          );
          for (const n of part) if (n !== "lm_head.weight") weightMap[n] = file;
        }
        await Deno.writeTextFile(
          join(out, "model.safetensors.index.json"),
          JSON.stringify({ weight_map: weightMap }),
        );
        const arena = await loadT5Weights(gpu, out, cfg);
        try {
          assert.ok("lm_head.weight" in arena.tensors, dir);
          assert.deepEqual(await gpu.read(arena.tensors["lm_head.weight"]), head);
        } finally {
          gpu.freeArena(arena);
        }
      });
    }
  },
);

Deno.test("a GPU that cannot allocate or upload the weights gives a T5WeightsError naming the checkpoint and tensor", async () => {
  const cfg = await loadT5Config(V10);
  const limits = { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30 };
  const noMemory = {
    limits,
    arena: () => {
      throw new Error("out of memory allocating t5 (1 MB)");
    },
  } as unknown as Gpu;
  await assert.rejects(loadT5Weights(noMemory, V10, cfg), (e) => {
    assert.ok(e instanceof T5WeightsError);
    assert.equal(e.file, join(V10, "model.safetensors"));
    assert.match(e.message, /cannot be allocated on the GPU: out of memory allocating t5/);
    return true;
  });
  let freed = false;
  const failing = {
    limits,
    arena: (_name: string, specs: Record<string, { shape: number[] }>) => ({
      tensors: Object.fromEntries(
        Object.entries(specs).map((
          [k, s],
        ) => [k, { buffer: {}, offset: 0, shape: s.shape, dtype: "f32", name: k }]),
      ),
    }),
    write: (t: { name: string }) => {
      if (t.name === "encoder.block.1.layer.1.DenseReluDense.wo.weight") {
        throw new Error("device lost");
      }
    },
    freeArena: () => (freed = true),
  } as unknown as Gpu;
  await assert.rejects(loadT5Weights(failing, V10, cfg), (e) => {
    assert.ok(e instanceof T5WeightsError);
    assert.equal(e.tensor, "encoder.block.1.layer.1.DenseReluDense.wo.weight");
    assert.match(
      e.message,
      /model\.safetensors: uploading tensor "encoder\.block\.1\.layer\.1\.DenseReluDense\.wo\.weight" failed: device lost/,
    );
    return true;
  });
  assert.ok(freed, "the arena is freed");
});
