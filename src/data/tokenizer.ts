/**
 * Hugging Face `tokenizer.json` tokenizers (T5 Unigram, GPT-2 byte-level BPE, Llama BPE with
 * byte fallback, ...) with the batch encoding a seq2seq trainer needs.
 *
 * - **Loading**: {@link loadTokenizer} takes a Hub model id (through `hubDownload`, so the HF
 *   cache and offline mode apply), a local folder, or a `tokenizer.json` path, and reads
 *   `tokenizer_config.json` beside it when there is one.
 * - **Exactness**: encoding is done by `@huggingface/tokenizers` (pure JS), whose ids equal Rust
 *   `tokenizers`' on the project's fixtures of every family, hard cases included. Its
 *   sentencepiece `Precompiled` normalizer is an approximation, so this module swaps in the
 *   exact one ({@link PrecompiledCharsmap}) wherever a `tokenizer.json` uses it.
 * - **Truncation keeps the special tokens**, as Rust `tokenizers` and `transformers` do with
 *   `truncation=True`: the content is cut to `maxLength` minus the tokens the post-processor
 *   adds, then the template is applied (T5: content, then `</s>`; Llama: `<s>`, then content).
 * - **Padding** is on the right with {@link TextTokenizer.padId}; attention masks are 1 on the
 *   tokens and 0 on the padding.
 * - **Decoding** skips special tokens by default and ignores negative ids (the -100 of padded
 *   labels).
 * - **Identity**: {@link TextTokenizer.hash} is the sha256 of `tokenizer.json` and
 *   `tokenizer_config.json`, used to key tokenized-dataset caches.
 *
 * @module
 */

import { SequenceNormalizer, Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import {
  checkRegularFile,
  describeIoError,
  FileReadError,
  readTextFileChecked,
} from "../io/files.ts";
import { hubDownload, HubError, type HubOptions } from "../io/hub.ts";
import { CharsmapRuleError, PrecompiledCharsmap } from "./precompiled_charsmap.ts";
import {
  parseTokenizerJson,
  TokenizerJsonProblem,
  validateTokenizerConfig,
  validateTokenizerJson,
} from "./tokenizer_json.ts";

/**
 * The version of `@huggingface/tokenizers` this module encodes with: the version deno.json's
 * import map pins (tests/data/pipeline_version_test.ts checks that they agree). Part of the
 * tokenized-dataset cache key, since a new version may give other ids for the same
 * `tokenizer.json`. Update it together with deno.json.
 */
export const TOKENIZERS_LIBRARY_VERSION = "0.2.0";

/**
 * A tokenizer that cannot be loaded or built: no `tokenizer.json` (a slow, sentencepiece-only
 * tokenizer), invalid JSON, a model `@huggingface/tokenizers` cannot build, a malformed
 * `precompiled_charsmap`, or a post-processor that drops its sequence or adds tokens missing from
 * the vocabulary. `source` is the file or repository at fault. (A Hub failure is a `HubError`.)
 *
 * @example
 * ```ts
 * import { createTokenizer, TokenizerError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => createTokenizer("{", "{}", { source: "broken/tokenizer.json" }),
 *   (e) => e instanceof TokenizerError && e.source === "broken/tokenizer.json",
 * );
 * ```
 */
export class TokenizerError extends Error {
  /** The `tokenizer.json` (or the Hub id or folder) at fault. */
  readonly source: string;
  /** An error about `source`; the message says what is wrong and, where it can, how to fix it. */
  constructor(source: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TokenizerError";
    this.source = source;
  }
}

/** The parsed `tokenizer.json` (only the fields this module reads are typed). */
export interface TokenizerJson {
  /** The model (`Unigram`, `BPE`, `WordPiece`, ...) with its vocabulary. */
  model: { type?: string; vocab?: unknown; [key: string]: unknown };
  /** Tokens added on top of the model's vocabulary. */
  added_tokens?: { id: number; content: string; special?: boolean }[];
  /** The normalizer configuration, if any. */
  normalizer?: Record<string, unknown> | null;
  /** The post-processor configuration (templates that add special tokens), if any. */
  post_processor?: Record<string, unknown> | null;
  /** Padding settings saved with the tokenizer, if any. */
  padding?: { pad_id?: number; pad_token?: string } | null;
  /** Other fields (`pre_tokenizer`, `decoder`, `truncation`, ...), passed to the library. */
  [key: string]: unknown;
}

/**
 * The subset of `tokenizer_config.json` this module reads. Tokens may be strings or
 * `{content: string}` objects, as `transformers` writes them.
 */
export interface TokenizerConfig {
  /** End-of-sequence token. */
  eos_token?: string | { content: string } | null;
  /** Beginning-of-sequence token. */
  bos_token?: string | { content: string } | null;
  /** Padding token. */
  pad_token?: string | { content: string } | null;
  /** Unknown token. */
  unk_token?: string | { content: string } | null;
  /** Whether `decode` cleans up spaces before punctuation (transformers' default is true). */
  clean_up_tokenization_spaces?: boolean;
  /** Other fields, passed to the library (`additional_special_tokens`, ...). */
  [key: string]: unknown;
}

/**
 * Options of {@link TextTokenizer.encode}.
 */
export interface EncodeOptions {
  /**
   * Add the post-processor's special tokens (T5: `</s>` at the end; Llama: `<s>` in front).
   * @default {true}
   */
  addSpecialTokens?: boolean;
  /**
   * Truncate to at most this many ids, special tokens included and kept (the content is cut).
   * @default {no truncation}
   */
  maxLength?: number;
}

/**
 * Options of {@link TextTokenizer.encodeBatch}.
 */
export interface EncodeBatchOptions extends EncodeOptions {
  /**
   * Pad every row to exactly `maxLength` (true) or only to the longest row (false).
   * Without `maxLength`, rows are padded to the longest.
   * @default {true}
   */
  padToMaxLength?: boolean;
}

/** A padded batch: row-major `[rows, length]` arrays. */
export interface EncodedBatch {
  /** Token ids, `pad` after each row's tokens. Shape `[rows, length]`. */
  ids: Int32Array;
  /** 1 on tokens, 0 on padding. Shape `[rows, length]`. */
  attentionMask: Int32Array;
  /** Tokens per row (before padding). Shape `[rows]`. */
  lengths: Int32Array;
  /** Number of rows. */
  rows: number;
  /** Padded row length. */
  length: number;
}

/**
 * Options of {@link TextTokenizer.decode}.
 */
export interface DecodeOptions {
  /**
   * Drop special tokens (`<pad>`, `</s>`, ...).
   * @default {true}
   */
  skipSpecialTokens?: boolean;
  /**
   * Remove spaces before punctuation (` .` → `.`) as `transformers` does.
   * @default {tokenizer_config.json's clean_up_tokenization_spaces, else true}
   */
  cleanUpTokenizationSpaces?: boolean;
}

/**
 * Options of {@link createTokenizer}.
 */
export interface CreateTokenizerOptions {
  /** Where the tokenizer came from, for messages. @default {"tokenizer.json"} */
  source?: string;
  /**
   * The identity hash; computed from the JSON when not given.
   * @default {sha256 of the tokenizer JSON and the config JSON}
   */
  hash?: string;
}

/** The library's tokenizer, with the fields this module reaches into. */
interface HfInternals {
  normalizer: unknown;
  post_processor: ((a: string[], b: null, add: boolean) => { tokens: string[] }) | null;
  added_tokens_map?: Map<string, { id: number }>;
  model: { unk_token_id?: number; vocab: unknown };
}

function tokenContent(t: unknown): string | undefined {
  if (typeof t === "string") return t;
  if (t && typeof t === "object" && typeof (t as { content?: unknown }).content === "string") {
    return (t as { content: string }).content;
  }
  return undefined;
}

type NormalizeFn = (text: string) => string;

/** Builds the normalizer with exact `Precompiled` parts; the library handles the others. */
function buildNormalizer(config: Record<string, unknown> | null | undefined): NormalizeFn | null {
  if (!config) return null;
  if (config.type === "Precompiled") {
    // validateTokenizerJson has checked that it is a string that parses.
    const exact = new PrecompiledCharsmap(config.precompiled_charsmap as string);
    return (t) => exact.normalize(t);
  }
  if (config.type === "Sequence" && Array.isArray(config.normalizers)) {
    const parts = (config.normalizers as Record<string, unknown>[]).map(buildNormalizer)
      .filter((p): p is NormalizeFn => p !== null);
    return (t) => parts.reduce((s, f) => f(s), t);
  }
  const lib = new SequenceNormalizer({ type: "Sequence", normalizers: [config] } as never) as {
    normalize(t: string): string;
  };
  return (t) => lib.normalize(t);
}

function usesPrecompiled(config: unknown): boolean {
  if (!config || typeof config !== "object") return false;
  const c = config as Record<string, unknown>;
  if (c.type === "Precompiled") return true;
  return c.type === "Sequence" && Array.isArray(c.normalizers) &&
    c.normalizers.some(usesPrecompiled);
}

/**
 * Makes the library's model faster without changing a single id:
 *
 * - Every model's `encode(pretokens)` handles each pre-token on its own, so segmentations are
 *   memoized per pre-token (the library's Unigram builds a lattice for every word; its BPE has
 *   a 10k-entry cache).
 * - Llama-style BPE has no pre-tokenizer: a whole sentence (spaces turned into "▁") is one
 *   pre-token, merged char by char in one queue, and never cached. When no vocabulary token has
 *   a "▁" after another character (true of Llama-2's 32k), no merge can cross the start of a
 *   "▁word", so each sentence is cut there first and the words are merged (and memoized) one by
 *   one: the same merges, in the same order within each word.
 */
function accelerateModel(json: TokenizerJson, model: unknown): void {
  const m = model as { encode?: (tokens: string[]) => string[] };
  if (typeof m.encode !== "function") return;
  const type = json.model.type;
  if (type !== "Unigram" && type !== "BPE") return;
  const encode = m.encode.bind(model);
  let split = false;
  if (type === "BPE") {
    const crossing = /[^\u2581]\u2581/;
    const vocab = json.model.vocab;
    const merges = json.model.merges;
    split = !!vocab && typeof vocab === "object" && Array.isArray(merges) &&
      !Object.keys(vocab).some((t) => crossing.test(t)) &&
      !merges.some((x) =>
        crossing.test(Array.isArray(x) ? x.join("") : String(x).replace(" ", ""))
      );
  }
  const wordStart = /(?<=[^\u2581])(?=\u2581)/;
  const cache = new Map<string, string[]>();
  const one = (t: string, out: string[]) => {
    let r = cache.get(t);
    if (r === undefined) {
      r = encode([t]);
      if (t.length <= 64) {
        if (cache.size >= 200_000) cache.clear();
        cache.set(t, r);
      }
    }
    for (const x of r) out.push(x);
  };
  m.encode = (tokens: string[]) => {
    const out: string[] = [];
    for (const t of tokens) {
      if (split && t.length > 16 && t.includes("\u2581")) {
        for (const w of t.split(wordStart)) one(w, out);
      } else one(t, out);
    }
    return out;
  };
}

function sha256Hex(...parts: string[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p).update("\0");
  return h.digest("hex");
}

/**
 * A loaded tokenizer. Create one with {@link loadTokenizer} or {@link createTokenizer}.
 *
 * @example
 * ```ts
 * import { loadTokenizer } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const tok = await loadTokenizer("tests/fixtures/tokenizers/t5"); // a small T5 Unigram
 * const ids = tok.encode("sentence: hello");
 * assert.equal(ids.at(-1), tok.eosId); // ends with </s>
 * assert.equal(tok.decode(ids), "sentence: hello"); // special tokens skipped
 * const b = tok.encodeBatch(["a", "b c d e f g h i j"], { maxLength: 8 }); // truncated, padded
 * assert.equal(b.ids.length, b.rows * b.length);
 * assert.deepEqual([b.rows, b.length], [2, 8]);
 * assert.equal(b.ids[15], tok.eosId); // truncation keeps EOS
 * ```
 */
export class TextTokenizer {
  /** sha256 (hex) of `tokenizer.json` and `tokenizer_config.json`: the tokenizer's identity. */
  readonly hash: string;
  /** Where it was loaded from. */
  readonly source: string;
  /** The model type in `tokenizer.json` (`Unigram`, `BPE`, ...). */
  readonly modelType: string;
  /** One more than the largest id (model vocabulary and added tokens). */
  readonly vocabSize: number;
  /** Padding id: the config's pad token, else `<pad>`, else the end-of-sequence id, else 0. */
  readonly padId: number;
  /** End-of-sequence id (`</s>`), if the tokenizer has one. */
  readonly eosId: number | undefined;
  /** Beginning-of-sequence id (`<s>`), if the tokenizer has one. */
  readonly bosId: number | undefined;
  /** Unknown-token id, if the model has one. */
  readonly unkId: number | undefined;
  /** Ids the post-processor puts before a single sequence (Llama: `[<s>]`). */
  readonly prefixIds: readonly number[];
  /** Ids the post-processor puts after a single sequence (T5: `[</s>]`). */
  readonly suffixIds: readonly number[];
  readonly #tok: HfTokenizer;
  readonly #cleanUp: boolean;

  /**
   * Wraps a `@huggingface/tokenizers` tokenizer. Prefer {@link createTokenizer}.
   *
   * @param json The parsed `tokenizer.json`.
   * @param config The parsed `tokenizer_config.json` (or `{}`).
   * @param options Source and hash.
   */
  constructor(json: TokenizerJson, config: TokenizerConfig, options: CreateTokenizerOptions = {}) {
    this.source = options.source ?? "tokenizer.json";
    let modelType: string;
    try {
      // With the types Rust infers from the fields written out, for the library.
      const checked = validateTokenizerJson(json, this.source);
      modelType = checked.modelType;
      json = checked.json as TokenizerJson;
    } catch (e) {
      if (!(e instanceof TokenizerJsonProblem)) throw e;
      throw new TokenizerError(this.source, e.message, { cause: e });
    }
    try {
      validateTokenizerConfig(config ?? {}, `the tokenizer_config.json beside ${this.source}`);
    } catch (e) {
      if (!(e instanceof TokenizerJsonProblem)) throw e;
      throw new TokenizerError(this.source, e.message, { cause: e });
    }
    const full = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null };
    try {
      this.#tok = new HfTokenizer({ ...full, added_tokens: [], ...json }, config ?? {});
    } catch (e) {
      // After validation, the library's own errors ("Unknown ... type") are in words; a
      // JavaScript error from inside it is not.
      const why = e instanceof TypeError || e instanceof RangeError
        ? "a field has a value it cannot use"
        : e instanceof Error
        ? e.message
        : String(e);
      throw new TokenizerError(
        this.source,
        `${this.source}: @huggingface/tokenizers cannot build this tokenizer (model ${modelType}): ${why}`,
        { cause: e },
      );
    }
    const internals = this.#tok as unknown as HfInternals;
    if (usesPrecompiled(json.normalizer)) {
      try {
        internals.normalizer = buildNormalizer(json.normalizer);
      } catch (e) {
        throw new TokenizerError(
          this.source,
          `${this.source}: normalizer: ${e instanceof Error ? e.message : String(e)}`,
          { cause: e },
        );
      }
    }
    if (modelType === "WordLevel") {
      // The library reads WordLevel's unk_token from tokenizer_config.json only; Rust uses the
      // model's (an unknown word becomes it).
      const unk = (internals.model as { tokens_to_ids?: Map<string, number> }).tokens_to_ids
        ?.get(json.model.unk_token as string);
      if (unk !== undefined) internals.model.unk_token_id = unk;
    }
    accelerateModel(json, internals.model);
    this.hash = options.hash ?? sha256Hex(JSON.stringify(json), JSON.stringify(config ?? {}));
    this.modelType = modelType;
    this.#cleanUp = config?.clean_up_tokenization_spaces ?? true;

    // From the file, not the library's get_vocab(), which walks every id up to the largest: a
    // valid file whose ids have holes (one token at id 1e9) would take a minute.
    let maxId = -1;
    const vocab = json.model.vocab;
    if (Array.isArray(vocab)) maxId = vocab.length - 1;
    else {for (const id of Object.values(vocab as Record<string, number>)) {
        maxId = Math.max(maxId, id);
      }}
    for (const t of json.added_tokens ?? []) maxId = Math.max(maxId, t.id);
    this.vocabSize = maxId + 1;

    // Special tokens of a single-sequence template, found by running the post-processor on a
    // placeholder token.
    const placeholder = "\u0000adept-sequence\u0000";
    let prefix: string[] = [], suffix: string[] = [];
    if (internals.post_processor) {
      const out = internals.post_processor([placeholder], null, true).tokens;
      const at = out.indexOf(placeholder);
      if (at < 0) {
        throw new TokenizerError(
          this.source,
          `${this.source}: the post-processor drops the sequence it is given`,
        );
      }
      if (out.lastIndexOf(placeholder) !== at) {
        throw new TokenizerError(
          this.source,
          `${this.source}: the post-processor's template repeats the sequence; only templates ` +
            "that hold it once are supported",
        );
      }
      prefix = out.slice(0, at);
      suffix = out.slice(at + 1);
    }
    const idOf = (t: string) => {
      const id = this.tokenToId(t);
      if (id === undefined) {
        throw new TokenizerError(
          this.source,
          `${this.source}: the post-processor adds ${JSON.stringify(t)}, which is not in the ` +
            "vocabulary",
        );
      }
      return id;
    };
    this.prefixIds = Object.freeze(prefix.map(idOf));
    this.suffixIds = Object.freeze(suffix.map(idOf));

    const byConfig = (t: unknown) => {
      const c = tokenContent(t);
      return c === undefined ? undefined : this.tokenToId(c);
    };
    this.unkId = byConfig(config?.unk_token) ?? internals.model.unk_token_id;
    this.eosId = byConfig(config?.eos_token) ?? this.suffixIds.at(-1) ?? this.tokenToId("</s>");
    this.bosId = byConfig(config?.bos_token) ?? this.prefixIds[0] ?? this.tokenToId("<s>");
    // The authors' rule: without a pad token, pad with EOS. Padded positions are masked (and
    // -100 in labels), so with neither, id 0 serves.
    this.padId = byConfig(config?.pad_token) ?? json.padding?.pad_id ??
      this.tokenToId("<pad>") ?? this.eosId ?? 0;
  }

  /**
   * The id of a token string (vocabulary or added token).
   *
   * @param token The token, e.g. `"</s>"` or `"▁the"`.
   * @returns Its id, or undefined.
   */
  tokenToId(token: string): number | undefined {
    const added = (this.#tok as unknown as HfInternals).added_tokens_map?.get(token);
    return added?.id ?? this.#tok.token_to_id(token);
  }

  /**
   * The token string of an id.
   *
   * @param id A token id.
   * @returns The token, or undefined.
   */
  idToToken(id: number): string | undefined {
    return this.#tok.id_to_token(id);
  }

  /**
   * The ids of `text` without special tokens, untruncated.
   *
   * @param text The text.
   * @returns The content ids.
   */
  encodeContent(text: string): number[] {
    let encoded;
    try {
      encoded = this.#tok.encode(text, { add_special_tokens: false });
    } catch (e) {
      if (!(e instanceof CharsmapRuleError)) throw e;
      throw new TokenizerError(this.source, `${this.source}: normalizer: ${e.message}`, {
        cause: e,
      });
    }
    const { ids, tokens } = encoded as { ids: number[]; tokens: string[] };
    for (let i = 0; i < ids.length; i++) {
      if (!Number.isInteger(ids[i]) || ids[i] < 0) {
        // Rust refuses to encode it too ("Encountered an unknown token but unk_id is missing").
        throw new TokenizerError(
          this.source,
          `${this.source}: ${JSON.stringify(tokens[i])} is not in the vocabulary, and the ` +
            "model has no unknown token (unk_id / unk_token) to stand for it",
        );
      }
    }
    return ids;
  }

  /**
   * Encodes one text. With `maxLength`, the content is truncated so that the result, special
   * tokens included, has at most `maxLength` ids.
   *
   * @param text The text.
   * @param options Special tokens and truncation.
   * @returns The ids.
   * @throws {RangeError} If `maxLength` cannot hold the special tokens.
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const content = this.encodeContent(text);
    const add = options.addSpecialTokens ?? true;
    const pre = add ? this.prefixIds : [];
    const post = add ? this.suffixIds : [];
    let keep = content.length;
    if (options.maxLength !== undefined) {
      const room = this.#room(options.maxLength, pre.length + post.length);
      if (keep > room) keep = room;
    }
    const out = new Array<number>(pre.length + keep + post.length);
    let k = 0;
    for (const id of pre) out[k++] = id;
    for (let i = 0; i < keep; i++) out[k++] = content[i];
    for (const id of post) out[k++] = id;
    return out;
  }

  /** Content ids that fit in `maxLength` next to `special` special tokens. */
  #room(maxLength: number, special: number): number {
    if (!Number.isInteger(maxLength) || maxLength < special || maxLength < 1) {
      throw new RangeError(
        `maxLength must be an integer of at least ${Math.max(1, special)} (the special tokens ` +
          `${this.source} adds), got ${maxLength}`,
      );
    }
    return maxLength - special;
  }

  /**
   * Encodes texts into padded, row-major `Int32Array`s with attention masks.
   *
   * @param texts The texts.
   * @param options Truncation, padding and special tokens.
   * @returns The padded batch.
   */
  encodeBatch(texts: readonly string[], options: EncodeBatchOptions = {}): EncodedBatch {
    const rows = texts.map((t) => this.encode(t, options));
    const longest = rows.reduce((m, r) => Math.max(m, r.length), 0);
    const length = options.maxLength !== undefined && (options.padToMaxLength ?? true)
      ? options.maxLength
      : longest;
    const ids = new Int32Array(rows.length * length).fill(this.padId);
    const attentionMask = new Int32Array(rows.length * length);
    const lengths = new Int32Array(rows.length);
    rows.forEach((r, i) => {
      ids.set(r, i * length);
      attentionMask.fill(1, i * length, i * length + r.length);
      lengths[i] = r.length;
    });
    return { ids, attentionMask, lengths, rows: rows.length, length };
  }

  /**
   * Decodes ids to text. Negative ids (the -100 of ignored label positions) are dropped.
   *
   * @param ids Token ids.
   * @param options Whether to skip special tokens and clean up spaces.
   * @returns The text.
   */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    // Negative ids (the -100 of labels) and ids with no token are skipped, as Rust skips them.
    const list: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] >= 0 && this.idToToken(ids[i]) !== undefined) list.push(ids[i]);
    }
    if (list.length === 0) return "";
    return this.#tok.decode(list, {
      skip_special_tokens: options.skipSpecialTokens ?? true,
      clean_up_tokenization_spaces: options.cleanUpTokenizationSpaces ?? this.#cleanUp,
    });
  }

  /**
   * The longest encoding (special tokens included) among `texts`: the authors' maximum target
   * length, `max(len(tokenizer.encode(label)) for label in labels)`.
   *
   * @param texts The label strings.
   * @returns The largest number of ids.
   */
  maxEncodedLength(texts: Iterable<string>): number {
    let m = 0;
    for (const t of texts) m = Math.max(m, this.encode(t).length);
    return m;
  }
}

/**
 * Builds a tokenizer from a parsed or raw `tokenizer.json` (and `tokenizer_config.json`).
 *
 * @param json `tokenizer.json` as text or parsed.
 * @param config `tokenizer_config.json` as text or parsed.
 * @param options Source name for messages, identity hash.
 * @returns The tokenizer.
 * @throws {TokenizerError} If the JSON is invalid or not a tokenizer the library supports.
 *
 * @example
 * ```ts
 * import { createTokenizer } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const tok = createTokenizer({
 *   model: { type: "WordLevel", vocab: { "<pad>": 0, "</s>": 1, "hello": 2 }, unk_token: "<pad>" },
 *   pre_tokenizer: { type: "Whitespace" },
 * });
 * assert.deepEqual(tok.encode("hello hello"), [2, 2]);
 * ```
 */
export function createTokenizer(
  json: string | TokenizerJson,
  config: string | TokenizerConfig = {},
  options: CreateTokenizerOptions = {},
): TextTokenizer {
  const source = options.source ?? "tokenizer.json";
  const parse = <T>(v: string | T, what: string): T => {
    if (typeof v !== "string") return v;
    try {
      return parseTokenizerJson(v) as T;
    } catch (e) {
      throw new TokenizerError(
        source,
        `${what} is not valid JSON: ${e instanceof Error ? e.message : e}`,
        { cause: e },
      );
    }
  };
  const hash = options.hash ??
    (typeof json === "string" && typeof config === "string" ? sha256Hex(json, config) : undefined);
  return new TextTokenizer(
    parse<TokenizerJson>(json, source),
    parse<TokenizerConfig>(config, `tokenizer_config.json beside ${source}`),
    { source, hash },
  );
}

/**
 * Options of {@link loadTokenizer}: Hub settings (revision, cache, token, offline, ...).
 */
export type LoadTokenizerOptions = HubOptions;

/**
 * Loads `tokenizer.json` (and `tokenizer_config.json` when present) from a Hub model id, a local
 * folder, or a path to a `tokenizer.json` file.
 *
 * @param repoOrPath `org/name`, a folder, or a `.json` file.
 * @param options Hub settings, passed to `hubDownload`.
 * @returns The tokenizer; its {@link TextTokenizer.hash} covers both files.
 * @throws {HubError} When the Hub or the cache cannot provide the files.
 * @throws {TokenizerError} When there is no `tokenizer.json` or it cannot be parsed.
 *
 * @example A Hub model id (needs the network, or the files in the cache)
 * ```ts ignore
 * import { loadTokenizer } from "@adept/trainer";
 * const tok = await loadTokenizer("google-t5/t5-base");
 * const batch = tok.encodeBatch(["sentence: hello"], { maxLength: 256 });
 * ```
 *
 * @example A local folder, or a tokenizer.json path
 * ```ts
 * import { loadTokenizer } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const tok = await loadTokenizer("tests/fixtures/tokenizers/t5");
 * const same = await loadTokenizer("tests/fixtures/tokenizers/t5/tokenizer.json");
 * assert.equal(tok.hash, same.hash); // tokenizer_config.json beside it is read too
 * assert.deepEqual([tok.modelType, tok.padId, tok.eosId], ["Unigram", 0, 1]);
 * ```
 */
export async function loadTokenizer(
  repoOrPath: string,
  options: LoadTokenizerOptions = {},
): Promise<TextTokenizer> {
  let jsonPath: string;
  let configPath: string | undefined;
  const stat = await Deno.stat(repoOrPath).catch(() => null);
  if (stat && !stat.isFile && !stat.isDirectory) {
    throw new TokenizerError(repoOrPath, `${repoOrPath} ${await notRegular(repoOrPath)}`);
  }
  if (stat?.isDirectory) {
    // A tokenizer.json that is a named pipe or a device would be skipped by the folder scan.
    const inside = join(repoOrPath, "tokenizer.json");
    if ((await Deno.lstat(inside).catch(() => null)) !== null) {
      try {
        await checkRegularFile(inside);
      } catch (e) {
        throw readError(inside, e);
      }
    }
  }
  if (stat?.isFile) {
    jsonPath = repoOrPath;
    const sibling = join(dirname(repoOrPath), "tokenizer_config.json");
    if (basename(repoOrPath) !== "tokenizer_config.json" && await isFile(sibling)) {
      configPath = sibling;
    }
  } else {
    let snap;
    try {
      snap = await hubDownload(repoOrPath, {
        ...options,
        patterns: ["tokenizer.json", "tokenizer_config.json"],
      });
    } catch (e) {
      if (e instanceof HubError && e.kind === "not_found" && /matches/.test(e.message)) {
        throw noTokenizerJson(repoOrPath, e);
      }
      throw e;
    }
    if (!snap.files.includes("tokenizer.json")) throw noTokenizerJson(repoOrPath);
    jsonPath = snap.path("tokenizer.json");
    if (snap.files.includes("tokenizer_config.json")) {
      configPath = snap.path("tokenizer_config.json");
    }
  }
  const read = async (path: string) => {
    try {
      return await readTextFileChecked(path, { maxBytes: MAX_TOKENIZER_BYTES });
    } catch (e) {
      throw readError(path, e);
    }
  };
  const text = await read(jsonPath);
  const configText = configPath ? await read(configPath) : "{}";
  return createTokenizer(text, configText, { source: jsonPath });
}

/** The largest tokenizer.json read (real ones: 2 MB for T5, 17 MB for the largest vocabularies). */
const MAX_TOKENIZER_BYTES = 256 * 1024 * 1024;

/** Why a path that exists is not a regular file, in words. */
async function notRegular(path: string): Promise<string> {
  try {
    await checkRegularFile(path);
    return "cannot be read";
  } catch (e) {
    return e instanceof FileReadError ? e.message : `cannot be read (${describeIoError(e)})`;
  }
}

/** A file that cannot be read, as a TokenizerError naming it. */
function readError(path: string, e: unknown): TokenizerError {
  const why = e instanceof FileReadError ? e.message : `cannot be read (${describeIoError(e)})`;
  return new TokenizerError(path, `${path} ${why}`, { cause: e });
}

async function isFile(path: string): Promise<boolean> {
  return (await Deno.stat(path).catch(() => null))?.isFile ?? false;
}

function noTokenizerJson(repoOrPath: string, cause?: unknown): TokenizerError {
  return new TokenizerError(
    repoOrPath,
    `${repoOrPath} has no tokenizer.json. Only Hugging Face "fast" tokenizers are supported; ` +
      "convert a sentencepiece or vocab-file tokenizer with transformers " +
      "(AutoTokenizer.from_pretrained(...).save_pretrained(dir)) and pass that folder.",
    { cause },
  );
}
