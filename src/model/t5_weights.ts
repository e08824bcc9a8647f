/**
 * Loading T5 weights from a Hugging Face checkpoint (safetensors, sharded or not) into one GPU
 * arena, with the names transformers uses.
 *
 * @module
 */

import { join } from "node:path";
import type { Arena, Gpu } from "../gpu/device.ts";
import { DTYPE_BYTES, Tensor, type TensorSpec } from "../gpu/tensor.ts";
import {
  openSafetensors,
  safetensorsDtypeBits,
  SafetensorsError,
  type SafetensorsReader,
  type SafetensorsTensorInfo,
} from "../io/safetensors.ts";
import { type T5Config, T5ConfigError } from "./t5_config.ts";

/** Raised when a checkpoint lacks a tensor or holds one of the wrong shape. */
export class T5WeightsError extends Error {
  /** The checkpoint file at fault (a shard, for sharded checkpoints), when known. */
  readonly file?: string;
  /** The tensor concerned, when one is. */
  readonly tensor?: string;
  /** `message` says what is wrong, naming the file and the tensor. */
  constructor(message: string, options?: ErrorOptions & { file?: string; tensor?: string }) {
    super(message, options);
    this.name = "T5WeightsError";
    this.file = options?.file;
    this.tensor = options?.tensor;
  }
}

/**
 * Element type of the frozen projection matrices on the GPU: `"f16"` halves their memory and
 * the bandwidth of the products that read them (`matmul` widens them to f32 as it loads them
 * and accumulates in f32); it needs the adapter feature `shader-f16`. The embedding tables, the
 * relative position biases and the layer norms stay f32 (see {@link isT5Projection}).
 */
export type T5WeightDtype = "f32" | "f16";

/**
 * Whether a weight is one of the projection matrices {@link T5WeightDtype} `"f16"` keeps in
 * half precision: the attention q, k, v, o, the feed-forward wi (wi_0, wi_1) and wo, and an
 * untied `lm_head.weight`. The embeddings (read by the embedding kernel and the prompt methods,
 * and the tied LM head), the position biases and the layer norms stay f32.
 *
 * @example
 * ```ts
 * import { isT5Projection } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isT5Projection("decoder.block.0.layer.1.EncDecAttention.k.weight"));
 * assert.ok(isT5Projection("encoder.block.3.layer.1.DenseReluDense.wi_0.weight"));
 * assert.ok(isT5Projection("lm_head.weight"));
 * assert.ok(!isT5Projection("shared.weight"));
 * assert.ok(!isT5Projection("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"));
 * assert.ok(!isT5Projection("encoder.final_layer_norm.weight"));
 * ```
 */
export function isT5Projection(name: string): boolean {
  return name === "lm_head.weight" ||
    /\.(SelfAttention|EncDecAttention)\.[qkvo]\.weight$/.test(name) ||
    /\.DenseReluDense\.(wi|wi_0|wi_1|wo)\.weight$/.test(name);
}

/** Options of {@link loadT5Weights} and {@link checkT5Checkpoint}. */
export interface LoadT5WeightsOptions {
  /**
   * The projection matrices' element type on the GPU ({@link T5WeightDtype}); `"f16"` needs
   * `shader-f16`.
   * @default {"f32"}
   */
  weightDtype?: T5WeightDtype;
  /**
   * The `config.json` the config came from, named when a size in it disagrees with the
   * checkpoint.
   * @default {`${dir}/config.json`}
   */
  configFile?: string;
  /**
   * The most bytes of one tensor read into host memory at once while uploading.
   * @default {33_554_432 (32 MiB)}
   */
  chunkBytes?: number;
}

/** The device limits each weight is checked against before anything is allocated. */
export interface T5WeightLimits {
  /** `maxBufferSize`: the largest buffer, so the largest weight. */
  maxBufferSize: number;
  /** `maxStorageBufferBindingSize`: the largest weight a kernel can bind. */
  maxStorageBufferBindingSize: number;
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
export function t5WeightSpecs(
  cfg: T5Config,
  options: { weightDtype?: T5WeightDtype } = {},
): Record<string, TensorSpec> {
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
  if ((options.weightDtype ?? "f32") === "f16") {
    for (const [name, spec] of Object.entries(specs)) {
      if (isT5Projection(name)) spec.dtype = "f16";
    }
  }
  return specs;
}

/** Element count of a tensor compared at once when checking a tied lm_head. */
const COMPARE_ELEMENTS = 1 << 20;

/** Whether two float tensors hold the same f32 bits, read piece by piece. */
async function sameValues(reader: SafetensorsReader, a: string, b: string): Promise<boolean> {
  const [x, y] = [reader.info(a), reader.info(b)];
  if (x.shape.join(",") !== y.shape.join(",")) return false;
  const chunks = (info: SafetensorsTensorInfo) =>
    reader.readFloatChunks(info.name, {
      dtype: "f32",
      maxBytes: COMPARE_ELEMENTS * safetensorsDtypeBits(info.dtype) / 8,
    });
  const ys = chunks(y);
  for await (const cx of chunks(x)) {
    const cy = (await ys.next()).value;
    if (!cy || cy.data.length !== cx.data.length) return false;
    const u = new Uint32Array(cx.data.buffer, cx.data.byteOffset, cx.data.length);
    const v = new Uint32Array(cy.data.buffer, cy.data.byteOffset, cy.data.length);
    for (let i = 0; i < u.length; i++) if (u[i] !== v[i]) return false;
  }
  return true;
}

/** The highest `<stack>.block.<i>.` index in the checkpoint, plus one (0 without blocks). */
function blockCount(names: readonly string[], stack: "encoder" | "decoder"): number {
  const re = new RegExp(`^${stack}\\.block\\.(\\d+)\\.`);
  let n = 0;
  for (const name of names) {
    const m = re.exec(name);
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  return n;
}

/**
 * Checks the config's sizes against what the checkpoint holds, before anything is sized from
 * them: the embedding's (vocab_size, d_model), the number of encoder and decoder blocks, the
 * attention width and heads, the position buckets and the feed-forward kind and width. A
 * mismatch is a {@link T5ConfigError} naming `config.json` and the field.
 */
function checkConfigAgainst(
  reader: SafetensorsReader,
  cfg: T5Config,
  configFile: string,
  embedding: string,
): void {
  const where = reader.path;
  const fail = (field: string, message: string): never => {
    throw new T5ConfigError(configFile, `${message} (checkpoint ${where})`, field);
  };
  const shapeOf = (name: string) => reader.has(name) ? reader.info(name).shape : undefined;
  const emb = shapeOf(embedding)!;
  if (emb.length === 2 && emb[1] !== cfg.dModel) {
    fail("d_model", `d_model is ${cfg.dModel}, but "${embedding}" has shape (${emb.join(", ")})`);
  }
  if (emb.length === 2 && emb[0] !== cfg.vocabSize) {
    fail(
      "vocab_size",
      `vocab_size is ${cfg.vocabSize}, but "${embedding}" has shape (${emb.join(", ")})`,
    );
  }
  const names = reader.names();
  for (
    const [stack, field, want] of [
      ["encoder", "num_layers", cfg.numLayers],
      ["decoder", "num_decoder_layers", cfg.numDecoderLayers],
    ] as const
  ) {
    const have = blockCount(names, stack);
    if (have !== want) {
      fail(
        field,
        `${field} is ${want}, but the checkpoint has ${
          have === 0 ? `no ${stack} blocks` : `${have} ${stack} blocks (${stack}.block.0 to ` +
            `${stack}.block.${have - 1})`
        }`,
      );
    }
  }
  const bias = shapeOf("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
  if (bias?.length === 2 && bias[1] !== cfg.numHeads) {
    fail(
      "num_heads",
      `num_heads is ${cfg.numHeads}, but the relative attention bias has shape ` +
        `(${bias.join(", ")}) (buckets, heads)`,
    );
  }
  if (bias?.length === 2 && bias[0] !== cfg.relativeAttentionNumBuckets) {
    fail(
      "relative_attention_num_buckets",
      `relative_attention_num_buckets is ${cfg.relativeAttentionNumBuckets}, but the relative ` +
        `attention bias has shape (${bias.join(", ")}) (buckets, heads)`,
    );
  }
  const q = shapeOf("encoder.block.0.layer.0.SelfAttention.q.weight");
  if (q?.length === 2 && q[0] !== cfg.innerDim) {
    fail(
      "d_kv",
      `num_heads ${cfg.numHeads} × d_kv ${cfg.dKv} = ${cfg.innerDim}, but ` +
        `"encoder.block.0.layer.0.SelfAttention.q.weight" has shape (${q.join(", ")})`,
    );
  }
  const ffn = "encoder.block.0.layer.1.DenseReluDense";
  const gated = reader.has(`${ffn}.wi_0.weight`), plain = reader.has(`${ffn}.wi.weight`);
  if ((gated && !cfg.isGatedAct) || (plain && cfg.isGatedAct)) {
    fail(
      "feed_forward_proj",
      `feed_forward_proj "${cfg.feedForwardProj}" ${
        cfg.isGatedAct ? "is gated, but the checkpoint has wi.weight" : "is not gated, but the " +
          "checkpoint has wi_0.weight and wi_1.weight"
      }`,
    );
  }
  const wi = shapeOf(`${ffn}.${cfg.isGatedAct ? "wi_0" : "wi"}.weight`);
  if (wi?.length === 2 && wi[0] !== cfg.dFf) {
    fail("d_ff", `d_ff is ${cfg.dFf}, but the feed-forward input has shape (${wi.join(", ")})`);
  }
}

/** What {@link planWeights} settles: the arena's specs and where each one is read from. */
interface WeightPlan {
  specs: Record<string, TensorSpec>;
  source: (name: string) => string;
}

/**
 * Checks the checkpoint against the config and (when given) the device's limits, and decides
 * which tensors to upload; reads nothing but a tied `lm_head.weight` and the embedding (piece by
 * piece) to compare them.
 */
async function planWeights(
  reader: SafetensorsReader,
  cfg: T5Config,
  configFile: string,
  limits?: T5WeightLimits,
  weightDtype: T5WeightDtype = "f32",
): Promise<WeightPlan> {
  const where = reader.path;
  const embedding = EMBEDDING_NAMES.find((n) => reader.has(n));
  if (!embedding) {
    throw new T5WeightsError(
      `${where}: no token embedding found: expected one of ${EMBEDDING_NAMES.join(", ")}`,
      { file: where },
    );
  }
  checkConfigAgainst(reader, cfg, configFile, embedding);
  const specs = t5WeightSpecs(cfg, { weightDtype });
  const source = (name: string) => name === "shared.weight" ? embedding : name;
  // Check everything before allocating, so a bad checkpoint costs no GPU memory.
  const check = (name: string, spec: TensorSpec) => {
    const src = source(name);
    if (!reader.has(src)) {
      throw new T5WeightsError(
        `${where}: missing tensor "${src}" (needed by a T5 with ${cfg.numLayers}+` +
          `${cfg.numDecoderLayers} layers, feed_forward_proj "${cfg.feedForwardProj}", ` +
          `tie_word_embeddings ${cfg.tieWordEmbeddings})`,
        { file: where, tensor: src },
      );
    }
    const info = reader.info(src);
    const tensor = { file: info.file, tensor: src };
    if (info.shape.join(",") !== spec.shape.join(",")) {
      throw new T5WeightsError(
        `${info.file}: tensor "${src}" has shape (${info.shape.join(", ")}), the config ` +
          `implies (${spec.shape.join(", ")})`,
        tensor,
      );
    }
    if (!["F32", "F16", "BF16"].includes(info.dtype)) {
      throw new T5WeightsError(
        `${info.file}: tensor "${src}" has dtype ${info.dtype}; T5 weights must be F32, F16 or BF16`,
        tensor,
      );
    }
    const dtype = spec.dtype ?? "f32";
    const bytes = info.numel * DTYPE_BYTES[dtype];
    for (const limit of ["maxBufferSize", "maxStorageBufferBindingSize"] as const) {
      if (limits && bytes > limits[limit]) {
        throw new T5WeightsError(
          `${info.file}: tensor "${src}" of shape (${
            info.shape.join(", ")
          }) needs ${bytes} bytes ` +
            `as ${dtype} on the GPU, more than the device's ${limit} of ${limits[limit]} bytes`,
          tensor,
        );
      }
    }
  };
  if (reader.has("lm_head.weight") && !specs["lm_head.weight"]) {
    // Tied config: a checkpoint's own lm_head.weight is used when it differs (transformers 5).
    const untied: TensorSpec = { shape: [cfg.vocabSize, cfg.dModel], dtype: weightDtype };
    check("lm_head.weight", untied);
    if (!await sameValues(reader, "lm_head.weight", embedding)) specs["lm_head.weight"] = untied;
  } else if (!reader.has("lm_head.weight")) {
    delete specs["lm_head.weight"];
  }
  // A stack's own embed_tokens is used when it differs from the shared table (transformers 5
  // keeps it untied then): an exported ADePT's encoder holds the folded table.
  for (const stack of ["encoder", "decoder"] as const) {
    const name = `${stack}.embed_tokens.weight`;
    if (name === embedding || !reader.has(name)) continue;
    const own = { shape: [cfg.vocabSize, cfg.dModel] };
    check(name, own);
    if (!await sameValues(reader, name, embedding)) specs[name] = own;
  }
  for (const [name, spec] of Object.entries(specs)) check(name, spec);
  return { specs, source };
}

/**
 * Checks a checkpoint against a config without a GPU: the sizes in `config.json` against the
 * tensors (a {@link T5ConfigError} naming the file and field), then every tensor the model reads
 * (present, shape, dtype) and, when `limits` are given, its size against the device's limits (a
 * {@link T5WeightsError} naming the file and tensor). {@link loadT5Weights} runs the same checks
 * before it allocates anything.
 *
 * @param dir The checkpoint folder (or file, or index).
 * @param cfg The parsed config.
 * @param options The config file to name, and the limits to check against.
 * @throws {T5ConfigError} When a size in the config disagrees with the checkpoint.
 * @throws {T5WeightsError} When a tensor is missing, misshapen, of another dtype or too large.
 * @throws {SafetensorsError} When the checkpoint itself is malformed.
 *
 * @example
 * ```ts
 * import { checkT5Checkpoint, loadT5Config } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = "tests/fixtures/t5/tiny-t5-v1_1";
 * const config = await loadT5Config(dir);
 * await checkT5Checkpoint(dir, config); // fine
 * await assert.rejects(checkT5Checkpoint(dir, { ...config, numLayers: 3 }), /num_layers is 3/);
 * ```
 */
export async function checkT5Checkpoint(
  dir: string,
  cfg: T5Config,
  options: LoadT5WeightsOptions & { limits?: T5WeightLimits } = {},
): Promise<void> {
  using reader = await openSafetensors(dir);
  await planWeights(
    reader,
    cfg,
    options.configFile ?? join(dir, "config.json"),
    options.limits,
    options.weightDtype,
  );
}

/** Bytes uploaded between two waits for the queue, so staging memory stays bounded. */
const SYNC_EVERY_BYTES = 256 * 1024 * 1024;

/**
 * Reads every tensor of {@link t5WeightSpecs} from the checkpoint in `dir` (a
 * `model.safetensors`, or shards listed by `model.safetensors.index.json`) one at a time,
 * converts it to f32 (the projection matrices to f16 with `weightDtype: "f16"`, see
 * {@link T5WeightDtype}) and uploads it into one arena.
 *
 * The embedding may be stored as `shared.weight`, `encoder.embed_tokens.weight` or
 * `decoder.embed_tokens.weight`; a checkpoint that holds an `encoder.` or `decoder.embed_tokens`
 * table different from its shared one keeps it for that stack (an exported ADePT's folded
 * encoder table: `embeddingTable`). The output projection follows transformers 5: a checkpoint's
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
 * // the projections in f16 (where the adapter has shader-f16): 46% fewer bytes here
 * const half = await loadT5Weights(gpu, dir, await loadT5Config(dir), { weightDtype: "f16" });
 * assert.equal(half.tensors["lm_head.weight"].dtype, "f16");
 * assert.equal(half.tensors["shared.weight"].dtype, "f32");
 * assert.ok(half.byteLength < 0.6 * weights.byteLength);
 * gpu.freeArena(weights);
 * gpu.freeArena(half);
 * gpu.destroy();
 * ```
 */
export async function loadT5Weights(
  gpu: Gpu,
  dir: string,
  cfg: T5Config,
  options: LoadT5WeightsOptions = {},
): Promise<Arena<string>> {
  const weightDtype = options.weightDtype ?? "f32";
  checkWeightDtype(gpu, weightDtype);
  using reader = await openSafetensors(dir);
  const { specs, source } = await planWeights(
    reader,
    cfg,
    options.configFile ?? join(dir, "config.json"),
    gpu.limits,
    weightDtype,
  );
  let arena: Arena<string>;
  try {
    arena = gpu.arena("t5", specs);
  } catch (e) {
    throw new T5WeightsError(
      `${reader.path}: the weights (${Object.keys(specs).length} tensors) cannot be allocated ` +
        `on the GPU: ${e instanceof Error ? e.message : String(e)}`,
      { file: reader.path, cause: e },
    );
  }
  let current = "";
  try {
    // Tensor by tensor, piece by piece: host memory holds one piece, never a whole tensor.
    let sinceSync = 0;
    for (const name of Object.keys(specs)) {
      current = source(name);
      const t = arena.tensors[name];
      // An even number of elements per piece: f16 pieces then start on 4-byte boundaries.
      const pair = 2 * safetensorsDtypeBits(reader.info(source(name)).dtype) / 8;
      const chunks = reader.readFloatChunks(source(name), {
        dtype: t.dtype as "f32" | "f16",
        maxBytes: Math.max(
          pair,
          Math.floor((options.chunkBytes ?? 32 * 1024 * 1024) / pair) * pair,
        ),
      });
      for await (const { offset, data } of chunks) {
        const at = t.offset + offset * DTYPE_BYTES[t.dtype];
        const piece = new Tensor(t.buffer, at, [data.length], t.dtype, t.name);
        gpu.write(piece, data);
        sinceSync += data.byteLength;
        if (sinceSync >= SYNC_EVERY_BYTES) {
          gpu.device.queue.submit([]); // flushes the queued writes and frees their staging
          await gpu.sync();
          sinceSync = 0;
        }
      }
    }
    current = "";
    await gpu.flush();
  } catch (e) {
    gpu.freeArena(arena);
    if (e instanceof SafetensorsError || e instanceof T5WeightsError) throw e;
    // A GPU error while uploading: name the checkpoint and the tensor.
    const file = current ? reader.info(current).file : reader.path;
    throw new T5WeightsError(
      `${file}: ${
        current ? `uploading tensor "${current}" failed` : "uploading the weights failed"
      }` +
        `: ${e instanceof Error ? e.message : String(e)}`,
      { file, tensor: current || undefined, cause: e },
    );
  }
  return arena;
}

/** Throws a {@link T5WeightsError} saying why when `gpu` cannot hold weights of `dtype`. */
function checkWeightDtype(gpu: Gpu, dtype: T5WeightDtype): void {
  if (dtype !== "f32" && dtype !== "f16") {
    throw new T5WeightsError(`weightDtype must be "f32" or "f16", got ${JSON.stringify(dtype)}`);
  }
  if (dtype === "f16" && !gpu.hasF16) {
    throw new T5WeightsError(
      `weightDtype "f16" needs the adapter feature shader-f16, which "${gpu.adapter.description}" ` +
        `does not offer (or was not requested: requestGpu's f16 option); load with weightDtype "f32"`,
    );
  }
}

/**
 * Random weights of the right shapes (normal, std `scale`; layer norms at 1): for benchmarks
 * and tests of sizes no checkpoint on disk has. `weightDtype: "f16"` keeps the projection
 * matrices in f16 (the values rounded), as {@link loadT5Weights} does.
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
  options: { seed?: number; scale?: number; weightDtype?: T5WeightDtype } = {},
): Arena<string> {
  checkWeightDtype(gpu, options.weightDtype ?? "f32");
  const specs = t5WeightSpecs(cfg, { weightDtype: options.weightDtype });
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
    gpu.write(t, t.dtype === "f16" ? Float16Array.from(data) : data);
  }
  return arena;
}
