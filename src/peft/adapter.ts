/**
 * Saved adapters in the formats other tools read: `adapter_config.json` plus
 * `adapter_model.safetensors`, as Hugging Face PEFT lays them out.
 *
 * - Prompt tuning: exactly what PEFT 0.21 writes for a seq2seq prompt-tuning adapter
 *   (`peft_type` "PROMPT_TUNING", `prompt_embeddings` of (2·M, C): PEFT sizes it for its two
 *   "transformer submodules" and feeds only rows 0..M−1 to the encoder), so
 *   `PeftModel.from_pretrained` loads it, and PEFT's adapters load here.
 * - ADePT and DePT: the tensor names and config fields of their authors' PEFT forks
 *   (`PROMPT_TUNING_LORAX`, github.com/HungerPWAY/ADePT; `PROMPT_TUNING_LORA`,
 *   github.com/ZhengxiangShi/DePT): `prompt_embeddings`, `prompt_encoder.lora_embedding_A`, ...
 *
 * What PEFT has no field for (the vocabulary size, the tokenizer's hash, the task, the step and
 * its scores) is kept in the safetensors metadata under `adept_trainer`. Loading refuses an
 * adapter for another width, vocabulary or method, naming both, and one holding a non-finite
 * value, before anything is allocated.
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic } from "../io/files.ts";
import { openSafetensors, type TensorToWrite, writeSafetensors } from "../io/safetensors.ts";
import type { FrozenT5 } from "../model/t5_graph.ts";
import {
  type MethodConfig,
  methodModule,
  methodNames,
  PeftError,
  type PeftMethod,
  type RandomSource,
} from "./method.ts";
import { checkState } from "./prompt_method.ts";

/** The adapter files in a folder. */
export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";

/** Where an adapter came from and what it fits (kept in the weights' metadata). */
export interface AdapterMeta {
  /** Hub id or folder of the base model. */
  baseModel: string;
  /** The base model's revision (commit sha), when known. */
  baseModelRevision?: string;
  /** d_model of the base model. */
  dModel: number;
  /** Embedding rows of the base model. */
  vocabSize: number;
  /** Attention heads and encoder blocks of the base model (PEFT records them). */
  numHeads?: number;
  numLayers?: number;
  /** The tokenizer's identity hash. */
  tokenizerHash?: string;
  /** The task trained on. */
  task?: string;
  /** Source tokens per example (without the prompt) and target length. */
  sourceLength?: number;
  targetLength?: number;
  /** The training step and its validation metrics. */
  step?: number;
  metrics?: Record<string, number>;
}

/** A saved adapter as read back. */
export interface SavedAdapter {
  /** The method's settings. */
  methodConfig: MethodConfig;
  /** What the metadata says (absent fields for adapters other tools wrote). */
  meta: Partial<AdapterMeta>;
  /** The tensors by the method's own names. */
  tensors: Record<string, Float32Array>;
  /** The raw `adapter_config.json`. */
  peftConfig: Record<string, unknown>;
}

/** The registered method whose adapters carry `peftType`. */
function moduleForPeftType(peftType: unknown, where: string) {
  for (const name of methodNames()) {
    const m = methodModule(name);
    if (m.adapter.peftType === peftType) return m;
  }
  const known = methodNames().map((n) => methodModule(n).adapter.peftType).join(", ");
  throw new PeftError(
    `${where}: peft_type ${JSON.stringify(peftType)} is not a method of this trainer (${known})`,
  );
}

/**
 * Writes `method`'s tensors and config into `dir` (each file atomically).
 *
 * @example
 * ```ts
 * import {
 *   loadT5,
 *   methodModule,
 *   Mt19937,
 *   readAdapter,
 *   requestGpu,
 *   saveAdapter,
 * } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const model = await loadT5(gpu, "tests/fixtures/t5/tiny-t5-v1_1");
 * const adept = methodModule("adept");
 * const config = adept.resolve({ promptLength: 4, rank: 8, promptInit: "random" });
 * const method = await adept.create(model, config, { rng: new Mt19937(1) });
 * const dir = await Deno.makeTempDir();
 * await saveAdapter(dir, method, {
 *   baseModel: "tests/fixtures/t5/tiny-t5-v1_1",
 *   dModel: 64,
 *   vocabSize: 256,
 *   task: "rte",
 * });
 * const saved = await readAdapter(dir); // adapter_config.json + adapter_model.safetensors
 * assert.equal(saved.peftConfig.peft_type, "PROMPT_TUNING_LORAX"); // the ADePT fork's name
 * assert.deepEqual(saved.tensors, await method.readState());
 * await Deno.remove(dir, { recursive: true });
 * method.destroy();
 * model.destroy();
 * gpu.destroy();
 * ```
 */
export async function saveAdapter(
  dir: string,
  method: PeftMethod,
  meta: AdapterMeta,
): Promise<void> {
  const state = await method.readState();
  const tensors: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
  for (const t of method.tensors) tensors[t.name] = { shape: t.param.shape, data: state[t.name] };
  await writeAdapter(dir, method.config, tensors, meta);
}

/**
 * Writes adapter files for a method config and its tensors (by the method's own names), in the
 * registered method's format.
 *
 * @example Hugging Face PEFT's prompt tuning, from host arrays
 * ```ts
 * import { methodModule, writeAdapter } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const config = methodModule("pt").resolve({ promptLength: 2, promptInit: "random" });
 * const prompt = { shape: [2, 4], data: Float32Array.from({ length: 8 }, (_, i) => i) };
 * await writeAdapter(dir, config, { prompt }, { baseModel: "t5-small", dModel: 4, vocabSize: 32 });
 * const peftConfig = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
 * assert.equal(peftConfig.peft_type, "PROMPT_TUNING");
 * assert.equal(peftConfig.num_transformer_submodules, 2); // PEFT's seq2seq layout: rows twice
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeAdapter(
  dir: string,
  c: MethodConfig,
  values: Record<string, { shape: readonly number[]; data: Float32Array }>,
  meta: AdapterMeta,
): Promise<void> {
  const fmt = methodModule(c.method).adapter;
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, { shape, data }] of Object.entries(values)) {
    const saved = fmt.tensorNames[name] ?? name;
    if (name === "prompt" && fmt.promptCopies > 1) {
      // PEFT's seq2seq layout: one block of M rows per "transformer submodule"; only the first
      // is read (the others get copies).
      const rows = new Float32Array(data.length * fmt.promptCopies);
      for (let k = 0; k < fmt.promptCopies; k++) rows.set(data, k * data.length);
      tensors[saved] = { shape: [shape[0] * fmt.promptCopies, shape[1]], data: rows };
    } else tensors[saved] = { shape, data };
  }
  const text = c.promptInit === "text";
  const peftConfig: Record<string, unknown> = {
    base_model_name_or_path: meta.baseModel,
    inference_mode: true,
    num_attention_heads: meta.numHeads ?? null,
    num_layers: meta.numLayers ?? null,
    num_transformer_submodules: fmt.promptCopies,
    num_virtual_tokens: c.promptLength,
    peft_type: fmt.peftType,
    prompt_tuning_init: text ? "TEXT" : "RANDOM",
    prompt_tuning_init_text: text ? c.promptInitText : null,
    revision: meta.baseModelRevision ?? null,
    task_type: "SEQ_2_SEQ_LM",
    token_dim: meta.dModel,
    tokenizer_name_or_path: text ? meta.baseModel : null,
    ...fmt.configFields(c as never, meta),
  };
  const sorted = Object.fromEntries(Object.keys(peftConfig).sort().map((k) => [k, peftConfig[k]]));
  await Deno.mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, ADAPTER_WEIGHTS), tensors, {
    metadata: {
      format: "pt",
      adept_trainer: JSON.stringify({ formatVersion: 1, methodConfig: c, ...meta }),
    },
  });
  await writeFileAtomic(join(dir, ADAPTER_CONFIG), JSON.stringify(sorted, null, 2));
}

/**
 * Reads an adapter folder: ours, PEFT's prompt tuning, or the ADePT / DePT forks'. The tensors
 * come back by the method's own names (`prompt`, `A`, ...).
 *
 * @example An adapter Hugging Face PEFT wrote
 * ```ts
 * import { readAdapter } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const saved = await readAdapter("tests/fixtures/peft/tiny-t5-v1_0/peft_prompt_tuning");
 * assert.equal(saved.methodConfig.method, "prompt_tuning");
 * assert.equal(saved.methodConfig.promptLength, 5);
 * assert.equal(saved.tensors.prompt.length, 5 * 64); // the M rows the encoder reads
 * assert.equal(saved.meta.dModel, 64);
 * ```
 */
export async function readAdapter(dir: string): Promise<SavedAdapter> {
  const cfgPath = join(dir, ADAPTER_CONFIG);
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(cfgPath));
  } catch (e) {
    throw new PeftError(`${cfgPath}: cannot read the adapter config: ${(e as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new PeftError(`${cfgPath}: expected a JSON object`);
  }
  const peftConfig = raw as Record<string, unknown>;
  const mod = moduleForPeftType(peftConfig.peft_type, cfgPath);
  const fmt = mod.adapter;
  const weights = join(dir, ADAPTER_WEIGHTS);
  using r = await openSafetensors(weights);
  let meta: Partial<AdapterMeta> & { methodConfig?: MethodConfig } = {};
  if (r.metadata.adept_trainer) {
    try {
      meta = JSON.parse(r.metadata.adept_trainer);
    } catch {
      throw new PeftError(`${weights}: the adept_trainer metadata is not valid JSON`);
    }
  }
  const settings = meta.methodConfig ?? fmt.settingsFrom(peftConfig, cfgPath);
  const methodConfig = mod.resolve({ ...settings, method: undefined });
  const M = methodConfig.promptLength;
  const tensors: Record<string, Float32Array> = {};
  for (const [ours, saved] of Object.entries(fmt.tensorNames)) {
    if (!r.has(saved)) {
      throw new PeftError(`${weights}: the ${mod.name} tensor "${saved}" (${ours}) is missing`);
    }
    let v = await r.readFloat(saved, { dtype: "f32" }) as Float32Array;
    if (ours === "prompt") {
      const rows = r.info(saved).shape[0];
      if (rows % M !== 0 || rows < M) {
        throw new PeftError(
          `${weights}: "${saved}" has ${rows} rows, not a multiple of num_virtual_tokens ${M}`,
        );
      }
      v = v.slice(0, v.length / rows * M); // the rows the encoder reads
    }
    tensors[ours] = v;
  }
  return {
    methodConfig,
    meta: { ...meta, dModel: meta.dModel ?? peftConfig.token_dim as number },
    tensors,
    peftConfig,
  };
}

/**
 * Loads an adapter onto a model: the method is rebuilt from the saved settings and its tensors
 * written. Refuses an adapter made for another width, vocabulary or (with `method`) method, and
 * one holding a non-finite value, before anything is allocated.
 *
 * @example
 * ```ts
 * import { loadAdapter, loadT5, requestGpu } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const gpu = await requestGpu({ log: false });
 * const model = await loadT5(gpu, "tests/fixtures/t5/tiny-t5-v1_0");
 * // an adapter written by Hugging Face PEFT for this model (or a run's best/ folder)
 * const dir = "tests/fixtures/peft/tiny-t5-v1_0/peft_prompt_tuning";
 * const { method, adapter } = await loadAdapter(dir, model);
 * assert.equal(method.name, "prompt_tuning");
 * assert.deepEqual((await method.readState()).prompt, adapter.tensors.prompt);
 * method.destroy();
 * model.destroy();
 * gpu.destroy();
 * ```
 */
export async function loadAdapter(
  dir: string,
  model: FrozenT5,
  options: { method?: string; rng?: RandomSource } = {},
): Promise<{ method: PeftMethod; adapter: SavedAdapter }> {
  const adapter = await readAdapter(dir);
  const { methodConfig: mc, meta, tensors } = adapter;
  const want = model.config;
  const where = join(dir, ADAPTER_CONFIG);
  if (options.method && methodModule(options.method).name !== mc.method) {
    throw new PeftError(
      `${where}: this is a ${mc.method} adapter, but --method ${options.method} was asked for`,
    );
  }
  const dModel = meta.dModel, vocab = meta.vocabSize;
  if (dModel !== want.dModel || (vocab !== undefined && vocab !== want.vocabSize)) {
    throw new PeftError(
      `${where}: the adapter was made for a model of d_model ${dModel}${
        vocab !== undefined ? ` and vocabulary ${vocab}` : ""
      } (${meta.baseModel ?? "base model unknown"}); this model has d_model ${want.dModel} and ` +
        `vocabulary ${want.vocabSize}. Load it onto the model it was trained on`,
    );
  }
  const mod = methodModule(mc.method);
  checkState(mc.method, mod.shapes(mc as never, want.dModel), tensors, join(dir, ADAPTER_WEIGHTS));
  const method = await mod.create(model, mc as never, {
    rng: options.rng ?? { nextUint32: () => 0x9e3779b9 },
    initTextIds: [want.eosTokenId], // overwritten below
  });
  method.writeState(tensors, join(dir, ADAPTER_WEIGHTS));
  return { method, adapter };
}
