/**
 * Loading T5 weights from a Hugging Face checkpoint (safetensors, sharded or not) into one GPU
 * arena, with the names transformers uses.
 *
 * @module
 */

import type { Arena, Gpu } from "../gpu/device.ts";
import type { TensorSpec } from "../gpu/tensor.ts";
import { openSafetensors } from "../io/safetensors.ts";
import type { T5Config } from "./t5_config.ts";

/** Raised when a checkpoint lacks a tensor or holds one of the wrong shape. */
export class T5WeightsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "T5WeightsError";
  }
}

/** Where the embedding may be stored, in the order transformers' checkpoints use. */
export const EMBEDDING_NAMES = [
  "shared.weight",
  "encoder.embed_tokens.weight",
  "decoder.embed_tokens.weight",
] as const;

/**
 * The frozen tensors a T5 model reads, with their shapes, by transformers' names, in the order
 * the arena lays them out: each self-attention's q, k and v side by side, and the cross-attention
 * k and v of every decoder layer side by side after the decoder, so that the graph can run each
 * group as one product (`T5Graph`) where the views are contiguous.
 *
 * @example
 * ```ts
 * import { loadT5Config, t5WeightSpecs } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const specs = t5WeightSpecs(await loadT5Config("tests/fixtures/t5/tiny-t5-v1_1"));
 * assert.deepEqual(specs["shared.weight"].shape, [256, 64]); // (V, C)
 * assert.deepEqual(specs["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"].shape, [128, 64]);
 * assert.ok("lm_head.weight" in specs); // v1.1: untied
 * ```
 */
export function t5WeightSpecs(cfg: T5Config): Record<string, TensorSpec> {
  const { dModel: c, dKv, numHeads: h, dFf: f, vocabSize: v } = cfg;
  const hd = h * dKv;
  const specs: Record<string, TensorSpec> = { "shared.weight": { shape: [v, c] } };
  const attn = (prefix: string) => {
    specs[`${prefix}.q.weight`] = { shape: [hd, c] };
    specs[`${prefix}.k.weight`] = { shape: [hd, c] };
    specs[`${prefix}.v.weight`] = { shape: [hd, c] };
    specs[`${prefix}.o.weight`] = { shape: [c, hd] };
  };
  const ffn = (prefix: string) => {
    if (cfg.isGatedAct) {
      specs[`${prefix}.wi_0.weight`] = { shape: [f, c] };
      specs[`${prefix}.wi_1.weight`] = { shape: [f, c] };
    } else {
      specs[`${prefix}.wi.weight`] = { shape: [f, c] };
    }
    specs[`${prefix}.wo.weight`] = { shape: [c, f] };
  };
  for (
    const [stack, layers] of [["encoder", cfg.numLayers], [
      "decoder",
      cfg.numDecoderLayers,
    ]] as const
  ) {
    specs[`${stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight`] = {
      shape: [cfg.relativeAttentionNumBuckets, h],
    };
    for (let l = 0; l < layers; l++) {
      const b = `${stack}.block.${l}.layer`;
      attn(`${b}.0.SelfAttention`);
      specs[`${b}.0.layer_norm.weight`] = { shape: [c] };
      if (stack === "decoder") {
        // q and o here; k and v of every layer follow the decoder, side by side
        specs[`${b}.1.EncDecAttention.q.weight`] = { shape: [hd, c] };
        specs[`${b}.1.EncDecAttention.o.weight`] = { shape: [c, hd] };
        specs[`${b}.1.layer_norm.weight`] = { shape: [c] };
      }
      const ff = stack === "decoder" ? 2 : 1;
      ffn(`${b}.${ff}.DenseReluDense`);
      specs[`${b}.${ff}.layer_norm.weight`] = { shape: [c] };
    }
    specs[`${stack}.final_layer_norm.weight`] = { shape: [c] };
  }
  for (let l = 0; l < cfg.numDecoderLayers; l++) {
    const a = `decoder.block.${l}.layer.1.EncDecAttention`;
    specs[`${a}.k.weight`] = { shape: [hd, c] };
    specs[`${a}.v.weight`] = { shape: [hd, c] };
  }
  if (!cfg.tieWordEmbeddings) specs["lm_head.weight"] = { shape: [v, c] };
  return specs;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * Reads every tensor of {@link t5WeightSpecs} from the checkpoint in `dir` (a
 * `model.safetensors`, or shards listed by `model.safetensors.index.json`) one at a time,
 * converts it to f32 and uploads it into one arena.
 *
 * The embedding may be stored as `shared.weight`, `encoder.embed_tokens.weight` or
 * `decoder.embed_tokens.weight`. The output projection follows transformers 5: a checkpoint's
 * `lm_head.weight` is used when the config is untied or when it differs from the embedding (a
 * tied checkpoint that carries a copy of the embedding uses the embedding); an untied config
 * whose checkpoint has no `lm_head.weight` falls back to the embedding, as transformers ties it.
 * The model uses `lm_head.weight` exactly when the returned arena holds it.
 *
 * @throws {T5WeightsError} naming the file and the tensor when one is missing or misshapen.
 *
 * @example
 * ```ts
 * import { loadT5Config, loadT5Weights, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const dir = "tests/fixtures/t5/tiny-t5-v1_1";
 * const weights = await loadT5Weights(gpu, dir, await loadT5Config(dir)); // one arena
 * assert.deepEqual(weights.tensors["lm_head.weight"].shape, [256, 64]);
 * gpu.freeArena(weights);
 * gpu.destroy();
 * ```
 */
export async function loadT5Weights(
  gpu: Gpu,
  dir: string,
  cfg: T5Config,
): Promise<Arena<string>> {
  const specs = t5WeightSpecs(cfg);
  using reader = await openSafetensors(dir);
  const where = reader.path;
  const embedding = EMBEDDING_NAMES.find((n) => reader.has(n));
  if (!embedding) {
    throw new T5WeightsError(
      `${where}: no token embedding found: expected one of ${EMBEDDING_NAMES.join(", ")}`,
    );
  }
  const source = (name: string) => name === "shared.weight" ? embedding : name;
  if (reader.has("lm_head.weight")) {
    if (!specs["lm_head.weight"]) {
      const [head, emb] = [
        await reader.readFloat("lm_head.weight", { dtype: "f32" }),
        await reader.readFloat(embedding, { dtype: "f32" }),
      ];
      if (!sameBits(head, emb)) specs["lm_head.weight"] = { shape: [cfg.vocabSize, cfg.dModel] };
    }
  } else {
    delete specs["lm_head.weight"];
  }
  // Check everything before allocating, so a bad checkpoint costs no GPU memory.
  for (const [name, spec] of Object.entries(specs)) {
    const src = source(name);
    if (!reader.has(src)) {
      throw new T5WeightsError(
        `${where}: missing tensor "${src}" (needed by a T5 with ${cfg.numLayers}+` +
          `${cfg.numDecoderLayers} layers, feed_forward_proj "${cfg.feedForwardProj}", ` +
          `tie_word_embeddings ${cfg.tieWordEmbeddings})`,
      );
    }
    const info = reader.info(src);
    if (info.shape.join(",") !== spec.shape.join(",")) {
      throw new T5WeightsError(
        `${info.file}: tensor "${src}" has shape (${info.shape.join(", ")}), the config ` +
          `implies (${spec.shape.join(", ")})`,
      );
    }
    if (!["F32", "F16", "BF16"].includes(info.dtype)) {
      throw new T5WeightsError(
        `${info.file}: tensor "${src}" has dtype ${info.dtype}; T5 weights must be F32, F16 or BF16`,
      );
    }
  }
  const arena = gpu.arena("t5", specs);
  for (const name of Object.keys(specs)) {
    gpu.write(arena.tensors[name], await reader.readFloat(source(name), { dtype: "f32" }));
  }
  await gpu.flush();
  return arena;
}

/**
 * Random weights of the right shapes (normal, std `scale`; layer norms at 1): for benchmarks
 * and tests of sizes no checkpoint on disk has.
 *
 * @example
 * ```ts
 * import { loadT5Config, randomT5Weights, requestGpu, T5Model } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const config = await loadT5Config("tests/fixtures/t5/tiny-t5-v1_1"); // or any parsed config
 * const model = new T5Model(gpu, config, randomT5Weights(gpu, config, { seed: 1 }));
 * const norm = await gpu.read(model.w("encoder.final_layer_norm.weight"));
 * assert.ok(norm.every((x) => x === 1));
 * const session = model.session({ batch: 1, sourceLength: 4, targetLength: 2 });
 * session.setBatch({
 *   inputIds: Int32Array.of(13, 8, 1, 0),
 *   attentionMask: [1, 1, 1, 0],
 *   labels: Int32Array.of(209, 1),
 * });
 * await session.forward();
 * assert.ok(Number.isFinite(await session.readLoss()));
 * session.destroy();
 * model.destroy();
 * gpu.destroy();
 * ```
 */
export function randomT5Weights(
  gpu: Gpu,
  cfg: T5Config,
  options: { seed?: number; scale?: number } = {},
): Arena<string> {
  const specs = t5WeightSpecs(cfg);
  const arena = gpu.arena("t5", specs);
  let s = (options.seed ?? 1) >>> 0;
  const scale = options.scale ?? 0.05;
  for (const [name, t] of Object.entries(arena.tensors)) {
    const data = new Float32Array(t.size);
    if (name.endsWith("layer_norm.weight")) {
      data.fill(1);
    } else {
      for (let i = 0; i < data.length; i++) {
        // xorshift32, then a sum of uniforms as a cheap near-normal
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        const u1 = (s >>> 0) / 4294967296;
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        const u2 = (s >>> 0) / 4294967296;
        data[i] = (u1 + u2 - 1) * 2.449 * scale;
      }
    }
    gpu.write(t, data);
  }
  return arena;
}
