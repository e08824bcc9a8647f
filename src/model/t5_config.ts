/**
 * A Hugging Face T5 `config.json`, parsed into a typed {@link T5Config} with the defaults
 * transformers applies to fields an export left out.
 *
 * Two architectures are supported, the two this project trains:
 * - **T5 v1.0** (`t5-small`, `t5-base`, ...): ReLU feed-forward, `lm_head` tied to the shared
 *   embedding, decoder output multiplied by `d_model ** -0.5` before the output projection.
 * - **T5 v1.1 / flan-T5** (`google/t5-v1_1-*`, `google/flan-t5-*`, ByT5): gated-GELU
 *   feed-forward with the tanh approximation (`gelu_new`), separate `lm_head`, no rescale.
 *
 * Everything else is refused with an error naming the file, the field and its value, rather than
 * silently computing something transformers would not.
 *
 * Defaults, as in transformers' `T5Config`: `feed_forward_proj` "relu", `num_decoder_layers` =
 * `num_layers`, `relative_attention_max_distance` 128, `tie_word_embeddings` true,
 * `dropout_rate` 0.1, `layer_norm_epsilon` 1e-6, `initializer_factor` 1, `pad_token_id` 0,
 * `eos_token_id` 1, and `decoder_start_token_id` = `pad_token_id` (T5's convention; configs saved
 * by transformers 5.x may leave it to `generation_config.json`).
 *
 * transformers 5.x semantics that older exports do not show: its `T5Config` always reports
 * `tie_word_embeddings: true` and stores `scale_decoder_outputs` instead (false for v1.1); the
 * `lm_head` stays untied when the checkpoint holds an `lm_head.weight` that differs from
 * `shared.weight`. Explicit `dense_act_fn`, `is_gated_act` and `scale_decoder_outputs` override
 * the values derived from `feed_forward_proj` / `tie_word_embeddings`, so they are checked here.
 *
 * @example
 * ```ts
 * import { parseT5Config } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // t5-base's config.json leaves the rest to transformers' defaults
 * const config = parseT5Config({
 *   model_type: "t5",
 *   d_model: 768,
 *   num_heads: 12,
 *   d_kv: 64,
 *   d_ff: 3072,
 *   num_layers: 12,
 *   vocab_size: 32128,
 *   relative_attention_num_buckets: 32,
 * });
 * assert.equal(config.variant, "v1_0"); // feed_forward_proj "relu" by default
 * assert.equal(config.numDecoderLayers, 12); // num_layers
 * assert.equal(config.tieWordEmbeddings, true);
 * ```
 *
 * @module
 */

import { describeIoError, FileReadError, readTextFileChecked } from "../io/files.ts";

/**
 * The supported T5 architectures: `"v1_0"` (ReLU, tied, rescaled) and `"v1_1"` (gated-GELU,
 * untied `lm_head`, as in flan-T5).
 */
export type T5Variant = "v1_0" | "v1_1";

/**
 * A parsed T5 configuration, every field resolved (no optional values). Shapes use the project
 * legend: C = `dModel`, H = `numHeads`, F = `dFf`, V = `vocabSize`.
 */
export interface T5Config {
  /** Always `"t5"`: the only `model_type` accepted. */
  readonly modelType: "t5";
  /** Which of the two supported architectures the config describes. */
  readonly variant: T5Variant;
  /** V: rows of the embedding and of `lm_head` (t5: 32128, more than the tokenizer's 32100). */
  readonly vocabSize: number;
  /** C: model width. */
  readonly dModel: number;
  /** Width of one attention head. */
  readonly dKv: number;
  /** H: attention heads. */
  readonly numHeads: number;
  /** H * dKv: width of the q, k, v projections (need not equal C, e.g. t5-3b). */
  readonly innerDim: number;
  /** F: feed-forward width. */
  readonly dFf: number;
  /** Encoder blocks. */
  readonly numLayers: number;
  /** Decoder blocks (`num_decoder_layers`, default `num_layers`). */
  readonly numDecoderLayers: number;
  /** Relative position buckets (`relative_attention_num_buckets`). */
  readonly relativeAttentionNumBuckets: number;
  /** Relative distance from which all positions share the last bucket (default 128). */
  readonly relativeAttentionMaxDistance: number;
  /**
   * The longest input the checkpoint was made for (`n_positions`, e.g. 512 for t5-base), or
   * `undefined` when the config does not say. T5's relative positions do not enforce it.
   */
  readonly nPositions?: number;
  /** Dropout probability used everywhere in the backbone while training (default 0.1). */
  readonly dropoutRate: number;
  /** Epsilon of T5's RMS LayerNorm (default 1e-6). */
  readonly layerNormEpsilon: number;
  /** Init scale of transformers' `_init_weights` (default 1). */
  readonly initializerFactor: number;
  /** The feed-forward kind: `"relu"` (v1.0) or `"gated-gelu"` (v1.1). */
  readonly feedForwardProj: "relu" | "gated-gelu";
  /** Activation of the feed-forward: `"relu"` or `"gelu_new"` (the tanh approximation). */
  readonly denseActFn: "relu" | "gelu_new";
  /** Whether the feed-forward is gated: `act(x wi_0) * (x wi_1)` instead of `act(x wi)`. */
  readonly isGatedAct: boolean;
  /** Whether `lm_head` is `shared.weight` (v1.0). When false the checkpoint holds `lm_head.weight`. */
  readonly tieWordEmbeddings: boolean;
  /** Whether the decoder output is multiplied by `dModel ** -0.5` before `lm_head` (v1.0). */
  readonly scaleDecoderOutputs: boolean;
  /** Padding id (default 0); padded label positions use -100, not this id. */
  readonly padTokenId: number;
  /** End-of-sequence id (default 1). */
  readonly eosTokenId: number;
  /** First decoder input (default `padTokenId`). */
  readonly decoderStartTokenId: number;
}

/**
 * A `config.json` that cannot be used: unreadable, missing a required field, a field of the wrong
 * type, or an architecture other than T5 v1.0 / v1.1.
 *
 * @example
 * ```ts
 * import { parseT5Config, T5ConfigError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => parseT5Config({ model_type: "mt5" }, { source: "mt5/config.json" }),
 *   (e) => e instanceof T5ConfigError && e.file === "mt5/config.json" && e.field === "model_type",
 * );
 * ```
 */
export class T5ConfigError extends Error {
  /** The file (or other source) the config came from. */
  readonly file: string;
  /** The offending field, when one field is to blame. */
  readonly field: string | undefined;

  /** Builds the error; the message is prefixed with the file name. */
  constructor(file: string, message: string, field?: string, options?: ErrorOptions) {
    super(`${file}: ${message}`, options);
    this.name = "T5ConfigError";
    this.file = file;
    this.field = field;
  }
}

/** Options of {@link parseT5Config}. */
export interface ParseT5ConfigOptions {
  /**
   * Where the config came from, quoted in error messages.
   * @default {"config.json"}
   */
  source?: string;
}

/** The fields a config must have: transformers would silently fall back to t5-small's values. */
const REQUIRED = [
  "d_model",
  "num_heads",
  "d_kv",
  "d_ff",
  "num_layers",
  "vocab_size",
  "relative_attention_num_buckets",
] as const;

/**
 * The largest value accepted for each size: far above every published T5 (t5-11b has d_ff
 * 65,536 and 128 heads; mT5's vocabulary has 250,112 entries), low enough that a corrupt value
 * (1e9 layers, 1e308) is refused here, before anything is sized from it.
 */
export const T5_CONFIG_LIMITS: Readonly<Record<string, number>> = Object.freeze({
  d_model: 65_536,
  num_heads: 1_024,
  d_kv: 65_536,
  d_ff: 1_048_576,
  num_layers: 1_024,
  num_decoder_layers: 1_024,
  vocab_size: 16_777_216,
  relative_attention_num_buckets: 65_536,
  relative_attention_max_distance: 16_777_216,
  n_positions: 16_777_216,
});

/** The most attention width (num_heads × d_kv) accepted. */
const MAX_INNER_DIM = 1_048_576;

/** The largest config.json read: real ones are about 1 kB. */
const MAX_CONFIG_BYTES = 10 * 1024 * 1024;

const SUPPORTED_FFN = {
  "relu": { denseActFn: "relu", isGatedAct: false },
  "gated-gelu": { denseActFn: "gelu_new", isGatedAct: true },
} as const;

function quote(v: unknown): string {
  if (v === undefined) return "undefined";
  const s = JSON.stringify(v);
  return s.length > 80 ? s.slice(0, 77) + "..." : s;
}

type Raw = Record<string, unknown>;

class Reader {
  constructor(readonly raw: Raw, readonly file: string) {}

  fail(field: string, message: string): never {
    throw new T5ConfigError(this.file, message, field);
  }

  /** The field's value for a message, or "missing (default true)" for an absent boolean. */
  shown(field: string): string {
    const v = this.raw[field];
    return v === undefined || v === null ? "missing (default true)" : quote(v);
  }

  int(field: string, min: number, fallback?: number): number {
    const v = this.raw[field];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      this.fail(field, `required field "${field}" is missing`);
    }
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
      this.fail(
        field,
        `field "${field}" must be an integer >= ${min}, got ${quote(v)}`,
      );
    }
    const max = T5_CONFIG_LIMITS[field];
    if (max !== undefined && v > max) {
      this.fail(
        field,
        `field "${field}" is ${quote(v)}, above the limit of ${max} (far beyond any published ` +
          "T5): the file is corrupt or not a T5 config",
      );
    }
    return v;
  }

  num(field: string, fallback: number, ok: (x: number) => boolean, what: string): number {
    const v = this.raw[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) {
      this.fail(field, `field "${field}" must be ${what}, got ${quote(v)}`);
    }
    return v;
  }

  bool(field: string): boolean | undefined {
    const v = this.raw[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean") {
      this.fail(field, `field "${field}" must be true or false, got ${quote(v)}`);
    }
    return v;
  }

  str(field: string): string | undefined {
    const v = this.raw[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") {
      this.fail(field, `field "${field}" must be a string, got ${quote(v)}`);
    }
    return v;
  }

  /** A token id: an integer, or (as transformers allows for eos) a list holding exactly one. */
  tokenId(field: string, fallback: number): number {
    const v = this.raw[field];
    if (Array.isArray(v)) {
      if (v.length !== 1) {
        this.fail(field, `field "${field}" lists ${quote(v)}; only a single id is supported`);
      }
      return new Reader({ [field]: v[0] }, this.file).int(field, 0);
    }
    return this.int(field, 0, fallback);
  }
}

/**
 * Parses the JSON object of a T5 `config.json` into a {@link T5Config}, applying transformers'
 * defaults for missing optional fields. Throws {@link T5ConfigError} naming the source and field
 * when a required field is missing or malformed, when `model_type` is not `"t5"`, or when the
 * feed-forward / tying combination is neither T5 v1.0 nor T5 v1.1.
 *
 * @example Parse the published flan-t5-base config
 * ```ts
 * import { parseT5Config } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const flan = parseT5Config({
 *   model_type: "t5",
 *   d_model: 768,
 *   num_heads: 12,
 *   d_kv: 64,
 *   d_ff: 2048,
 *   num_layers: 12,
 *   vocab_size: 32128,
 *   relative_attention_num_buckets: 32,
 *   feed_forward_proj: "gated-gelu",
 *   tie_word_embeddings: false,
 * });
 * assert.equal(flan.variant, "v1_1");
 * assert.equal(flan.denseActFn, "gelu_new");
 * assert.equal(flan.scaleDecoderOutputs, false);
 * ```
 */
export function parseT5Config(raw: unknown, options: ParseT5ConfigOptions = {}): T5Config {
  const file = options.source ?? "config.json";
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new T5ConfigError(file, `expected a JSON object, got ${quote(raw)}`);
  }
  const r = new Reader(raw as Raw, file);

  const modelType = r.str("model_type");
  if (modelType === undefined) {
    r.fail("model_type", `required field "model_type" is missing (expected "t5")`);
  }
  if (modelType !== "t5") {
    const hint = modelType === "mt5" || modelType === "umt5"
      ? ` (${modelType} shares most of T5 v1.1's layers but has not been checked against ` +
        "transformers here)"
      : "";
    r.fail(
      "model_type",
      `model_type ${quote(modelType)} is not supported; only "t5" (T5 v1.0 such as t5-base, ` +
        `T5 v1.1 / flan-T5) is${hint}`,
    );
  }

  // Required sizes first, in a fixed order, so the first missing one is reported.
  const [dModel, numHeads, dKv, dFf, numLayers, vocabSize, numBuckets] = REQUIRED.map((f) =>
    r.int(f, 1)
  );
  if (numBuckets < 4) {
    r.fail(
      "relative_attention_num_buckets",
      `field "relative_attention_num_buckets" must be at least 4, got ${numBuckets}`,
    );
  }
  if (numHeads * dKv > MAX_INNER_DIM) {
    r.fail(
      "d_kv",
      `num_heads ${numHeads} × d_kv ${dKv} = ${numHeads * dKv} is above the limit of ` +
        `${MAX_INNER_DIM} for the attention width`,
    );
  }
  const numDecoderLayers = r.int("num_decoder_layers", 1, numLayers);
  const maxDistance = r.int("relative_attention_max_distance", 1, 128);
  const nPositions = r.int("n_positions", 1, 0) || undefined;
  const dropoutRate = r.num("dropout_rate", 0.1, (x) => x >= 0 && x < 1, "a number in [0, 1)");
  const layerNormEpsilon = r.num("layer_norm_epsilon", 1e-6, (x) => x > 0, "a positive number");
  const initializerFactor = r.num("initializer_factor", 1, (x) => x > 0, "a positive number");

  // Feed-forward: transformers derives dense_act_fn / is_gated_act from feed_forward_proj, then
  // lets explicit values in the file override them. Only the two T5 kinds are supported.
  const ffn = r.str("feed_forward_proj") ?? "relu";
  const parts = ffn.split("-");
  if ((parts.length > 1 && parts[0] !== "gated") || parts.length > 2) {
    r.fail(
      "feed_forward_proj",
      `feed_forward_proj ${quote(ffn)} is not valid: transformers expects "{ACT}" or ` +
        `"gated-{ACT}", e.g. "relu" or "gated-gelu"`,
    );
  }
  if (!(ffn in SUPPORTED_FFN)) {
    r.fail(
      "feed_forward_proj",
      `feed_forward_proj ${quote(ffn)} is not supported; supported: "relu" (T5 v1.0) and ` +
        `"gated-gelu" (T5 v1.1 / flan-T5)`,
    );
  }
  const feedForwardProj = ffn as keyof typeof SUPPORTED_FFN;
  const { denseActFn, isGatedAct } = SUPPORTED_FFN[feedForwardProj];
  const explicitAct = r.str("dense_act_fn");
  if (explicitAct !== undefined && explicitAct !== denseActFn) {
    r.fail(
      "dense_act_fn",
      `dense_act_fn ${quote(explicitAct)} contradicts feed_forward_proj ${quote(ffn)}, which ` +
        `implies ${quote(denseActFn)} (transformers would use dense_act_fn; not supported)`,
    );
  }
  const explicitGated = r.bool("is_gated_act");
  if (explicitGated !== undefined && explicitGated !== isGatedAct) {
    r.fail(
      "is_gated_act",
      `is_gated_act ${explicitGated} contradicts feed_forward_proj ${quote(ffn)}, which implies ` +
        `${isGatedAct} (transformers would use is_gated_act; not supported)`,
    );
  }

  // Tying and the d_model ** -0.5 rescale. transformers <= 4.x: both follow tie_word_embeddings
  // (default true). transformers 5.x: scale_decoder_outputs (written by 5.x exports) decides the
  // rescale, and lm_head is untied when the checkpoint has its own lm_head.weight.
  const tieField = r.bool("tie_word_embeddings");
  const scaleField = r.bool("scale_decoder_outputs");
  const scaleDecoderOutputs = scaleField ?? (tieField ?? true);
  let variant: T5Variant;
  if (feedForwardProj === "relu") {
    if (!scaleDecoderOutputs || tieField === false) {
      const field = scaleField === false ? "scale_decoder_outputs" : "tie_word_embeddings";
      r.fail(
        field,
        `${field} ${r.shown(field)} with feed_forward_proj "relu" is not supported: T5 v1.0 ` +
          `ties lm_head to the embedding and rescales the decoder output`,
      );
    }
    variant = "v1_0";
  } else {
    if (scaleDecoderOutputs) {
      const field = scaleField === true ? "scale_decoder_outputs" : "tie_word_embeddings";
      r.fail(
        field,
        `${field} ${r.shown(field)} with feed_forward_proj "gated-gelu" is not supported: ` +
          `T5 v1.1 / flan-T5 has an untied lm_head and no decoder-output rescale ` +
          `(its config says "tie_word_embeddings": false)`,
      );
    }
    variant = "v1_1";
  }

  const padTokenId = r.tokenId("pad_token_id", 0);
  const eosTokenId = r.tokenId("eos_token_id", 1);
  const decoderStartTokenId = r.tokenId("decoder_start_token_id", padTokenId);
  for (
    const [field, id] of [
      ["pad_token_id", padTokenId],
      ["eos_token_id", eosTokenId],
      ["decoder_start_token_id", decoderStartTokenId],
    ] as const
  ) {
    if (id >= vocabSize) {
      r.fail(field, `${field} ${id} is outside the vocabulary (vocab_size ${vocabSize})`);
    }
  }

  return {
    modelType: "t5",
    variant,
    vocabSize,
    dModel,
    dKv,
    numHeads,
    innerDim: numHeads * dKv,
    dFf,
    numLayers,
    numDecoderLayers,
    relativeAttentionNumBuckets: numBuckets,
    relativeAttentionMaxDistance: maxDistance,
    ...(nPositions ? { nPositions } : {}),
    dropoutRate,
    layerNormEpsilon,
    initializerFactor,
    feedForwardProj,
    denseActFn,
    isGatedAct,
    tieWordEmbeddings: variant === "v1_0",
    scaleDecoderOutputs: variant === "v1_0",
    padTokenId,
    eosTokenId,
    decoderStartTokenId,
  };
}

/**
 * Reads and parses a T5 `config.json`. `path` is the file or the model folder holding it.
 * Throws {@link T5ConfigError} (naming the file) when it cannot be read, is not JSON, or does
 * not describe a supported T5.
 *
 * @example
 * ```ts
 * import { loadT5Config, T5ConfigError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const config = await loadT5Config("tests/fixtures/t5/tiny-t5-v1_0"); // a folder or the file
 * assert.equal(config.variant, "v1_0");
 * assert.equal(config.dModel, 64);
 * await assert.rejects(loadT5Config("tests/fixtures/t5/no-such-model"), T5ConfigError);
 * ```
 */
export async function loadT5Config(path: string): Promise<T5Config> {
  let file = path;
  let text: string;
  try {
    if ((await Deno.stat(path)).isDirectory) file = `${path.replace(/[\\/]+$/, "")}/config.json`;
    text = await readTextFileChecked(file, { maxBytes: MAX_CONFIG_BYTES });
  } catch (e) {
    const why = e instanceof FileReadError ? e.message : describeIoError(e);
    throw new T5ConfigError(file, `cannot read the config: ${why}`, undefined, { cause: e });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new T5ConfigError(file, `is not valid JSON: ${(e as Error).message}`, undefined, {
      cause: e,
    });
  }
  return parseT5Config(raw, { source: file });
}
