import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  loadT5Config,
  parseT5Config,
  type T5Config,
  T5ConfigError,
} from "../../src/model/t5_config.ts";

const HUB = new URL("../fixtures/hub-configs/", import.meta.url);
const SAVED5 = new URL("../fixtures/t5/transformers5-saved/", import.meta.url);
const HERE = new URL(".", import.meta.url);

/** A fixture's file system path. */
function path(name: string, base: URL): string {
  return fileURLToPath(new URL(name, base));
}

/** The smallest config that parses: the seven required fields and model_type. */
function minimal(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_type: "t5",
    d_model: 64,
    num_heads: 4,
    d_kv: 16,
    d_ff: 128,
    num_layers: 2,
    vocab_size: 256,
    relative_attention_num_buckets: 32,
    ...extra,
  };
}

/** Asserts that parsing throws a T5ConfigError naming `field` and containing every `parts`. */
function assertRefused(raw: unknown, field: string | undefined, ...parts: string[]): T5ConfigError {
  let caught: unknown;
  try {
    parseT5Config(raw, { source: "models/x/config.json" });
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof T5ConfigError, `expected a T5ConfigError, got ${caught}`);
  assert.equal(caught.file, "models/x/config.json");
  assert.equal(caught.field, field);
  assert.ok(caught.message.startsWith("models/x/config.json: "), caught.message);
  for (const p of parts) assert.ok(caught.message.includes(p), `"${p}" not in: ${caught.message}`);
  return caught;
}

Deno.test("loadT5Config() gives t5-base transformers' defaults: relu, tied, rescaled, 12 decoder layers, distance 128", async () => {
  const c = await loadT5Config(path("t5-base.config.json", HUB));
  const expected: T5Config = {
    modelType: "t5",
    variant: "v1_0",
    vocabSize: 32128,
    dModel: 768,
    dKv: 64,
    numHeads: 12,
    innerDim: 768,
    dFf: 3072,
    numLayers: 12,
    numDecoderLayers: 12,
    relativeAttentionNumBuckets: 32,
    relativeAttentionMaxDistance: 128,
    nPositions: 512,
    dropoutRate: 0.1,
    layerNormEpsilon: 1e-6,
    initializerFactor: 1,
    feedForwardProj: "relu",
    denseActFn: "relu",
    isGatedAct: false,
    tieWordEmbeddings: true,
    scaleDecoderOutputs: true,
    padTokenId: 0,
    eosTokenId: 1,
    decoderStartTokenId: 0,
  };
  assert.deepEqual(c, expected);
});

Deno.test("loadT5Config() reads flan-t5-base as T5 v1.1: gated-gelu (gelu_new), untied, no rescale", async () => {
  const c = await loadT5Config(path("flan-t5-base.config.json", HUB));
  assert.equal(c.variant, "v1_1");
  assert.equal(c.feedForwardProj, "gated-gelu");
  assert.equal(c.denseActFn, "gelu_new");
  assert.equal(c.isGatedAct, true);
  assert.equal(c.tieWordEmbeddings, false);
  assert.equal(c.scaleDecoderOutputs, false);
  assert.equal(c.dFf, 2048);
  assert.equal(c.numDecoderLayers, 12);
  assert.equal(c.relativeAttentionMaxDistance, 128);
  assert.equal(c.vocabSize, 32128);
  assert.equal(c.decoderStartTokenId, 0);
});

Deno.test("loadT5Config() reads configs saved by transformers 5.x (tie_word_embeddings true, scale_decoder_outputs false)", async () => {
  const v10 = await loadT5Config(path("tiny-t5-v1_0.config.json", SAVED5));
  assert.equal(v10.variant, "v1_0");
  assert.equal(v10.tieWordEmbeddings, true);
  assert.equal(v10.scaleDecoderOutputs, true);
  const v11 = await loadT5Config(path("tiny-t5-v1_1.config.json", SAVED5));
  assert.equal(v11.variant, "v1_1");
  assert.equal(v11.tieWordEmbeddings, false);
  assert.equal(v11.scaleDecoderOutputs, false);
  assert.equal(v11.denseActFn, "gelu_new");
});

Deno.test("loadT5Config() accepts a model folder and reports unreadable or non-JSON files by name", async () => {
  const folder = path("../fixtures/t5/tiny-t5-v1_0/", HERE);
  assert.equal((await loadT5Config(folder)).variant, "v1_0");

  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(loadT5Config(dir), (e: unknown) => {
      assert.ok(e instanceof T5ConfigError);
      assert.equal(e.file, `${dir}/config.json`);
      assert.match(e.message, /cannot read the config/);
      return true;
    });
    await Deno.writeTextFile(`${dir}/config.json`, "{ not json");
    await assert.rejects(loadT5Config(dir), (e: unknown) => {
      assert.ok(e instanceof T5ConfigError);
      assert.match(e.message, /config\.json: is not valid JSON/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseT5Config() applies transformers' defaults to a config that gives only the required fields", () => {
  const c = parseT5Config(minimal());
  assert.equal(c.variant, "v1_0");
  assert.equal(c.numDecoderLayers, 2);
  assert.equal(c.relativeAttentionMaxDistance, 128);
  assert.equal(c.dropoutRate, 0.1);
  assert.equal(c.layerNormEpsilon, 1e-6);
  assert.equal(c.initializerFactor, 1);
  assert.equal(c.feedForwardProj, "relu");
  assert.equal(c.denseActFn, "relu");
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.scaleDecoderOutputs, true);
  assert.deepEqual([c.padTokenId, c.eosTokenId, c.decoderStartTokenId], [0, 1, 0]);
  // null means "use the default" in transformers too.
  assert.equal(parseT5Config(minimal({ num_decoder_layers: null })).numDecoderLayers, 2);
  assert.equal(parseT5Config(minimal({ num_decoder_layers: 4 })).numDecoderLayers, 4);
  // decoder_start_token_id follows pad_token_id when absent (transformers 5.x exports omit it).
  const c2 = parseT5Config(minimal({ pad_token_id: 5, decoder_start_token_id: undefined }));
  assert.equal(c2.decoderStartTokenId, 5);
  assert.equal(parseT5Config(minimal({ eos_token_id: [1] })).eosTokenId, 1);
});

Deno.test("parseT5Config() names the file and the field when a required field is missing", () => {
  for (
    const field of [
      "d_model",
      "num_heads",
      "d_kv",
      "d_ff",
      "num_layers",
      "vocab_size",
      "relative_attention_num_buckets",
    ]
  ) {
    const raw = minimal();
    delete raw[field];
    assertRefused(raw, field, `required field "${field}" is missing`);
  }
  const raw = minimal();
  delete raw.model_type;
  assertRefused(raw, "model_type", `"model_type" is missing`);
});

Deno.test("parseT5Config() quotes malformed values", () => {
  assertRefused(minimal({ d_model: "768" }), "d_model", `must be an integer >= 1, got "768"`);
  assertRefused(minimal({ num_heads: 0 }), "num_heads", "got 0");
  assertRefused(minimal({ d_ff: 3.5 }), "d_ff", "got 3.5");
  assertRefused(minimal({ dropout_rate: 1 }), "dropout_rate", "[0, 1)", "got 1");
  assertRefused(minimal({ layer_norm_epsilon: -1 }), "layer_norm_epsilon", "got -1");
  assertRefused(minimal({ tie_word_embeddings: "yes" }), "tie_word_embeddings", `got "yes"`);
  assertRefused(minimal({ eos_token_id: [1, 2] }), "eos_token_id", "[1,2]");
  assertRefused(minimal({ pad_token_id: 256 }), "pad_token_id", "outside the vocabulary");
  assertRefused(minimal({ relative_attention_num_buckets: 2 }), "relative_attention_num_buckets");
  assertRefused([1, 2], undefined, "expected a JSON object");
  assertRefused(null, undefined, "expected a JSON object");
});

Deno.test("parseT5Config() refuses model types other than t5, naming model_type and its value", () => {
  for (const type of ["mt5", "umt5", "longt5", "bart"]) {
    assertRefused(minimal({ model_type: type }), "model_type", `model_type "${type}"`);
  }
  assertRefused(minimal({ model_type: "mt5" }), "model_type", "not been checked");
});

Deno.test("parseT5Config() refuses feed-forward kinds other than relu and gated-gelu", () => {
  for (const ffn of ["gated-silu", "gelu", "gated-gelu_new", "silu"]) {
    assertRefused(
      minimal({ feed_forward_proj: ffn, tie_word_embeddings: false }),
      "feed_forward_proj",
      `feed_forward_proj "${ffn}" is not supported`,
    );
  }
  assertRefused(minimal({ feed_forward_proj: "fast-gelu" }), "feed_forward_proj", "not valid");
  assertRefused(minimal({ feed_forward_proj: "gated-gelu-x" }), "feed_forward_proj", "not valid");
});

Deno.test("parseT5Config() refuses dense_act_fn or is_gated_act that contradict feed_forward_proj", () => {
  assertRefused(
    minimal({ feed_forward_proj: "gated-gelu", tie_word_embeddings: false, dense_act_fn: "gelu" }),
    "dense_act_fn",
    `dense_act_fn "gelu"`,
    `"gelu_new"`,
  );
  assertRefused(minimal({ is_gated_act: true }), "is_gated_act", "is_gated_act true");
  // Consistent explicit values (as flan-t5's config has them) are fine.
  const ok = parseT5Config(
    minimal({
      feed_forward_proj: "gated-gelu",
      tie_word_embeddings: false,
      dense_act_fn: "gelu_new",
      is_gated_act: true,
    }),
  );
  assert.equal(ok.variant, "v1_1");
});

Deno.test("parseT5Config() refuses tying/rescale combinations that are neither T5 v1.0 nor v1.1", () => {
  assertRefused(minimal({ tie_word_embeddings: false }), "tie_word_embeddings", "false");
  assertRefused(minimal({ scale_decoder_outputs: false }), "scale_decoder_outputs", "relu");
  assertRefused(
    minimal({ feed_forward_proj: "gated-gelu" }),
    "tie_word_embeddings",
    "missing (default true)",
    "gated-gelu",
  );
  assertRefused(
    minimal({
      feed_forward_proj: "gated-gelu",
      tie_word_embeddings: false,
      scale_decoder_outputs: true,
    }),
    "scale_decoder_outputs",
    "true",
  );
});
