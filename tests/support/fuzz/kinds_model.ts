/**
 * Fuzz kinds of the files src/model reads: config.json against its checkpoint.
 *
 * @module
 */

import { join } from "node:path";
import { loadT5Config, type T5Config } from "../../../src/model/t5_config.ts";
import { checkT5Checkpoint } from "../../../src/model/t5_weights.ts";
import {
  flipBytes,
  type FuzzCase,
  type FuzzKind,
  mixture,
  mutateJson,
  oneOf,
  pick,
  put,
  type Rng,
  truncate,
  WrongResult,
} from "./harness.ts";

const FIXTURES = new URL("../../fixtures/t5/", import.meta.url).pathname;
const SIZES = [
  "vocabSize",
  "dModel",
  "dKv",
  "numHeads",
  "dFf",
  "numLayers",
  "numDecoderLayers",
  "relativeAttentionNumBuckets",
] as const;

/** The sizes of each fixture's config, which a loaded config must keep. */
const BASE: Record<string, T5Config> = {};

export const configKind: FuzzKind = {
  async cases(rng: Rng, count: number): Promise<FuzzCase[]> {
    const bases: [string, unknown, string][] = [];
    for (const v of ["tiny-t5-v1_0", "tiny-t5-v1_1"]) {
      const text = await Deno.readTextFile(join(FIXTURES, v, "config.json"));
      bases.push([v, JSON.parse(text), text]);
    }
    const focus = [
      "d_model",
      "num_heads",
      "d_kv",
      "d_ff",
      "num_layers",
      "num_decoder_layers",
      "vocab_size",
      "relative_attention_num_buckets",
      "feed_forward_proj",
      "tie_word_embeddings",
      "n_positions",
      "eos_token_id",
    ].map((k) => [k]);
    const folder = (variant: string, gen: string, config: string | Uint8Array): FuzzCase => ({
      gen,
      async write(dir) {
        await put(dir, "config.json", config);
        await Deno.symlink(
          join(FIXTURES, variant, "model.safetensors"),
          join(dir, "model.safetensors"),
        );
        await put(dir, "variant", variant);
        return dir;
      },
    });
    return await mixture(rng, count, [
      [6, (r) => {
        const [v, json] = oneOf(r, bases);
        const { json: out, label } = mutateJson(r, json, focus);
        return folder(v, label, JSON.stringify(out));
      }],
      [1, (r) => {
        const [v, , text] = oneOf(r, bases);
        return folder(v, "byte flip", flipBytes(r, new TextEncoder().encode(text), 2));
      }],
      [1, (r) => {
        const [v, , text] = oneOf(r, bases);
        return folder(v, "truncation", truncate(r, new TextEncoder().encode(text)));
      }],
      [1, (r) => {
        // A size far out of range, as the 1e9 and 1e308.
        const [v, json] = oneOf(r, bases);
        const k = oneOf(r, focus.slice(0, 8))[0];
        const out = {
          ...(json as object),
          [k]: oneOf(r, [1e9, 1e308, 2 ** 31, 65536 * 4, pick(r, 9) + 1]),
        };
        return folder(v, "an extreme size", JSON.stringify(out));
      }],
    ]);
  },
  async load(dir: string) {
    const variant = await Deno.readTextFile(join(dir, "variant"));
    BASE[variant] ??= await loadT5Config(join(FIXTURES, variant));
    const cfg = await loadT5Config(dir);
    await checkT5Checkpoint(dir, cfg, {
      limits: { maxBufferSize: 2 ** 31, maxStorageBufferBindingSize: 2 ** 31 },
    });
    for (const k of SIZES) {
      if (cfg[k] !== BASE[variant][k]) {
        throw new WrongResult(`${k} is ${cfg[k]}, but the checkpoint is of ${BASE[variant][k]}`);
      }
    }
  },
};
