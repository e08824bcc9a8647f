/**
 * Tokenized datasets, and their on-disk cache.
 *
 * {@link tokenizeExamples} turns examples into a {@link TokenizedSplit}: ragged id lists stored
 * flat (`Int32Array` ids + `N + 1` offsets), sources truncated to the source length and targets to
 * the target length, both ending with the tokenizer's EOS (truncation keeps it). Padding is left
 * to batching, so a 393k-example MNLI costs its tokens, not `N × 256` ints.
 *
 * {@link prepareTask} loads a task's three splits tokenized. It first resolves where the data is
 * (one Hub revision lookup, or none offline) and builds a key from the tokenizer's identity
 * (sha256 of `tokenizer.json` + `tokenizer_config.json`), the version of the code that turns it
 * into ids (`@huggingface/tokenizers`, {@link TOKENIZERS_LIBRARY_VERSION}), the version of this
 * pipeline's own rules ({@link DATA_PIPELINE_VERSION}: templates, splits, normalizer), the task
 * and its formatting rules, the data's identity (dataset commit sha, or the SHA-256 of local
 * files' contents), the split seed and caps, and the source/target lengths. A cache hit reads
 * one safetensors file and skips reading and tokenizing the data; a miss tokenizes and writes
 * the file atomically (temporary file + rename, by `writeSafetensors`).
 *
 * Cache folder: `tokenizedCacheDir` option, else `$ADEPT_CACHE_DIR/tokenized`, else
 * `$XDG_CACHE_HOME/adept/tokenized`, else `~/.cache/adept/tokenized`. One file per key:
 * `<task>-<key prefix>.safetensors` with, per split, `<split>.source_ids`,
 * `<split>.source_offsets`, `<split>.target_ids`, `<split>.target_offsets` (I32) and the target
 * strings as UTF-8 (`<split>.target_text` U8 + `<split>.target_text_offsets` I32), and in the
 * metadata the key and `key_input`, the JSON it is the sha256 of.
 *
 * @module
 */

import { join } from "node:path";
import { createHash } from "node:crypto";
import { openSafetensors, type TensorToWrite, writeSafetensors } from "../io/safetensors.ts";
import { DatasetError } from "./datasets.ts";
import {
  type Example,
  loadTaskExamples,
  maxTargetLength,
  resolveTaskData,
  type Task,
  type TaskDataOptions,
} from "./tasks.ts";
import type { SplitName } from "./splits.ts";
import { type TextTokenizer, TOKENIZERS_LIBRARY_VERSION } from "./tokenizer.ts";

/**
 * The version of the data pipeline's own output, part of every tokenized-dataset cache key.
 *
 * **Bump it whenever formatting, splitting or tokenization output changes**: a built-in task's
 * template or label rule (`tasks.ts`: `wscText`, `markSpan`, `removeMarkup`, `stsbTarget`,
 * `fillTemplate`, ...), the split rules (`splits.ts`, `randperm.ts`, custom-task splits), the
 * target-length rule, truncation, or the tokenizer wrapper and its exact normalizer
 * (`tokenizer.ts`, `precompiled_charsmap.ts`). Otherwise caches written by the old code are
 * still hit and serve stale ids. (The `@huggingface/tokenizers` version is keyed separately.)
 * tests/data/pipeline_version_test.ts records a digest of these outputs on the committed
 * fixtures next to this number and fails when they change without a bump.
 */
export const DATA_PIPELINE_VERSION = 1;

/**
 * One tokenized split: ragged sequences stored flat.
 * Sequence `i`'s source ids are `sourceIds[sourceOffsets[i] .. sourceOffsets[i + 1]]`.
 */
export interface TokenizedSplit {
  /** Number of examples, N. */
  readonly size: number;
  /** Longest source allowed (S), EOS included; every source has at most this many ids. */
  readonly sourceLength: number;
  /** Longest target allowed (T), EOS included. */
  readonly targetLength: number;
  /** All source ids, concatenated. */
  readonly sourceIds: Int32Array;
  /** Source start offsets, shape `[N + 1]`. */
  readonly sourceOffsets: Int32Array;
  /** All target ids, concatenated. */
  readonly targetIds: Int32Array;
  /** Target start offsets, shape `[N + 1]`. */
  readonly targetOffsets: Int32Array;
  /** The target strings before tokenization (labels such as "1", "3.8"). */
  readonly targets: readonly string[];
}

/**
 * Lengths for {@link tokenizeExamples}.
 */
export interface TokenizeOptions {
  /** Source length S (EOS included). */
  sourceLength: number;
  /** Target length T (EOS included). */
  targetLength: number;
}

/** A growable Int32Array. */
class IntBuffer {
  data = new Int32Array(1024);
  length = 0;
  push(ids: readonly number[]): void {
    if (this.length + ids.length > this.data.length) {
      let n = this.data.length * 2;
      while (n < this.length + ids.length) n *= 2;
      const d = new Int32Array(n);
      d.set(this.data.subarray(0, this.length));
      this.data = d;
    }
    for (let i = 0; i < ids.length; i++) this.data[this.length + i] = ids[i];
    this.length += ids.length;
  }
  finish(): Int32Array {
    return this.data.slice(0, this.length);
  }
}

/**
 * Tokenizes examples: sources truncated to `sourceLength`, targets to `targetLength`, special
 * tokens kept (T5: both end with `</s>`). Repeated targets (labels) are encoded once.
 *
 * @param tokenizer The tokenizer.
 * @param examples The examples.
 * @param options Source and target lengths.
 * @returns The tokenized split.
 *
 * @example
 * ```ts
 * import { loadTokenizer, tokenizeExamples } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const tok = await loadTokenizer("tests/fixtures/tokenizers/t5");
 * const examples = [
 *   { source: "sentence: hi", target: "1" },
 *   { source: "sentence: no", target: "0" },
 * ];
 * const split = tokenizeExamples(tok, examples, { sourceLength: 256, targetLength: 2 });
 * assert.equal(split.size, 2);
 * const first = split.sourceIds.subarray(split.sourceOffsets[0], split.sourceOffsets[1]);
 * assert.deepEqual([...first], tok.encode("sentence: hi")); // unpadded, ending with EOS
 * assert.deepEqual(split.targets, ["1", "0"]);
 * ```
 */
export function tokenizeExamples(
  tokenizer: TextTokenizer,
  examples: readonly Example[],
  options: TokenizeOptions,
): TokenizedSplit {
  const n = examples.length;
  const src = new IntBuffer();
  const tgt = new IntBuffer();
  const sourceOffsets = new Int32Array(n + 1);
  const targetOffsets = new Int32Array(n + 1);
  const targets = new Array<string>(n);
  const memo = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const ex = examples[i];
    src.push(tokenizer.encode(ex.source, { maxLength: options.sourceLength }));
    sourceOffsets[i + 1] = src.length;
    let t = memo.get(ex.target);
    if (t === undefined) {
      t = tokenizer.encode(ex.target, { maxLength: options.targetLength });
      if (memo.size < 10_000) memo.set(ex.target, t);
    }
    tgt.push(t);
    targetOffsets[i + 1] = tgt.length;
    targets[i] = ex.target;
  }
  return {
    size: n,
    sourceLength: options.sourceLength,
    targetLength: options.targetLength,
    sourceIds: src.finish(),
    sourceOffsets,
    targetIds: tgt.finish(),
    targetOffsets,
    targets,
  };
}

/**
 * The targets as the authors score them: each example's label ids decoded with special tokens
 * skipped (strip them with metrics.ts `pyStrip` before scoring). Equal to
 * {@link TokenizedSplit.targets} unless a target was truncated or does not survive
 * tokenization (unknown characters, normalization).
 *
 * @param split The tokenized split.
 * @param tokenizer The tokenizer it was made with.
 * @returns One decoded string per example.
 *
 * @example
 * ```ts
 * import { decodeTargets, loadTokenizer, pyStrip, tokenizeExamples } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const tok = await loadTokenizer("tests/fixtures/tokenizers/t5");
 * const examples = [{ source: "q", target: "1" }, { source: "q", target: "a long answer" }];
 * const test = tokenizeExamples(tok, examples, { sourceLength: 8, targetLength: 3 });
 * const refs = decodeTargets(test, tok).map(pyStrip); // what the metrics compare against
 * assert.equal(refs[0], "1");
 * assert.equal(refs[1], pyStrip(tok.decode(tok.encode("a long answer", { maxLength: 3 })))); // cut
 * ```
 */
export function decodeTargets(split: TokenizedSplit, tokenizer: TextTokenizer): string[] {
  const out = new Array<string>(split.size);
  for (let i = 0; i < split.size; i++) {
    out[i] = tokenizer.decode(
      split.targetIds.subarray(split.targetOffsets[i], split.targetOffsets[i + 1]),
    );
  }
  return out;
}

/** A task's three splits, tokenized. */
export interface TokenizedTask {
  /** The task. */
  readonly task: Task;
  /** Training split. */
  readonly train: TokenizedSplit;
  /** Validation split. */
  readonly validation: TokenizedSplit;
  /** Test split. */
  readonly test: TokenizedSplit;
  /** Source length S. */
  readonly sourceLength: number;
  /** Target length T. */
  readonly targetLength: number;
  /** Whether it came from the cache. */
  readonly fromCache: boolean;
  /** The cache key (sha256 hex). */
  readonly key: string;
  /** The cache file (written or read), or undefined when caching is off. */
  readonly cacheFile?: string;
}

/**
 * Options of {@link prepareTask}.
 */
export interface PrepareTaskOptions extends TaskDataOptions {
  /**
   * Folder of the tokenized-dataset cache; `false` disables it. (`cacheDir` is the HF hub
   * cache, as in every Hub option.)
   * @default {$ADEPT_CACHE_DIR/tokenized, else $XDG_CACHE_HOME/adept/tokenized, else ~/.cache/adept/tokenized}
   */
  tokenizedCacheDir?: string | false;
  /** Ignore an existing cache file and rebuild it. @default {false} */
  refresh?: boolean;
  /** Source length S. @default {the task's (256; MultiRC 348)} */
  sourceLength?: number;
  /**
   * Target length T.
   * @default {the task's maxTargetLength, else from its labels, else 20 (tasks.ts GENERATION_MAX_LENGTH)}
   */
  targetLength?: number;
  /** Called with messages about what happens (cache hit, reading, tokenizing). */
  onMessage?: (message: string) => void;
  /**
   * Called with a one-line warning when a cache file exists but cannot be used (corrupt, from
   * other inputs) and is rebuilt.
   * @default {console.warn}
   */
  onWarning?: (message: string) => void;
}

/**
 * The default folder of tokenized-dataset caches.
 *
 * @param env Where variables are read from.
 * @returns The folder.
 *
 * @example
 * ```ts
 * import { defaultTokenizedCacheDir } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = defaultTokenizedCacheDir({ ADEPT_CACHE_DIR: "/data/adept" });
 * assert.equal(dir, "/data/adept/tokenized");
 * assert.equal(defaultTokenizedCacheDir({ HOME: "/me" }), "/me/.cache/adept/tokenized");
 * ```
 */
export function defaultTokenizedCacheDir(
  env: Readonly<Record<string, string | undefined>> = Deno.env.toObject(),
): string {
  if (env.ADEPT_CACHE_DIR) return join(env.ADEPT_CACHE_DIR, "tokenized");
  const base = env.XDG_CACHE_HOME ||
    join(env.HOME ?? env.USERPROFILE ?? ".", ".cache");
  return join(base, "adept", "tokenized");
}

const FORMAT = "adept-tokenized-v1";
const SPLITS: readonly SplitName[] = ["train", "validation", "test"];
const utf8 = new TextEncoder();

function packStrings(strings: readonly string[]): { bytes: Uint8Array; offsets: Int32Array } {
  const parts = strings.map((s) => utf8.encode(s));
  const offsets = new Int32Array(parts.length + 1);
  for (let i = 0; i < parts.length; i++) offsets[i + 1] = offsets[i] + parts[i].length;
  const bytes = new Uint8Array(offsets[parts.length]);
  parts.forEach((p, i) => bytes.set(p, offsets[i]));
  return { bytes, offsets };
}

/**
 * Writes tokenized splits to one safetensors file, atomically.
 *
 * @param path The file.
 * @param splits The splits by name.
 * @param metadata String metadata to store (e.g. the cache key).
 *
 * @example
 * ```ts
 * import { loadTokenizer, tokenizeExamples, writeTokenizedSplits } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const tok = await loadTokenizer("tests/fixtures/tokenizers/t5");
 * const lengths = { sourceLength: 8, targetLength: 2 };
 * const train = tokenizeExamples(tok, [{ source: "sentence: hi", target: "1" }], lengths);
 * const test = tokenizeExamples(tok, [{ source: "sentence: no", target: "0" }], lengths);
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/rte.safetensors`;
 * await writeTokenizedSplits(path, { train, test }, { key: "sha256 of the inputs" });
 * assert.ok((await Deno.stat(path)).size > 0);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeTokenizedSplits(
  path: string,
  splits: Readonly<Record<string, TokenizedSplit>>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const tensors: [string, TensorToWrite][] = [];
  const lengths: Record<string, [number, number]> = {};
  for (const [name, s] of Object.entries(splits)) {
    const text = packStrings(s.targets);
    tensors.push(
      [`${name}.source_ids`, { shape: [s.sourceIds.length], data: s.sourceIds }],
      [`${name}.source_offsets`, { shape: [s.size + 1], data: s.sourceOffsets }],
      [`${name}.target_ids`, { shape: [s.targetIds.length], data: s.targetIds }],
      [`${name}.target_offsets`, { shape: [s.size + 1], data: s.targetOffsets }],
      [`${name}.target_text`, { shape: [text.bytes.length], data: text.bytes }],
      [`${name}.target_text_offsets`, { shape: [s.size + 1], data: text.offsets }],
    );
    lengths[name] = [s.sourceLength, s.targetLength];
  }
  await writeSafetensors(path, tensors, {
    metadata: { ...metadata, format: FORMAT, lengths: JSON.stringify(lengths) },
  });
}

/**
 * Reads splits written by {@link writeTokenizedSplits}, checking their consistency.
 *
 * @param path The file.
 * @returns The splits by name and the file's metadata.
 * @throws {DatasetError} If the file is not a tokenized-dataset file or is inconsistent.
 * @throws {SafetensorsError} If it is not a readable safetensors file.
 *
 * @example
 * ```ts
 * import {
 *   loadTokenizer,
 *   readTokenizedSplits,
 *   tokenizeExamples,
 *   writeTokenizedSplits,
 * } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const tok = await loadTokenizer("tests/fixtures/tokenizers/t5");
 * const train = tokenizeExamples(tok, [{ source: "sentence: hi", target: "1" }], {
 *   sourceLength: 8,
 *   targetLength: 2,
 * });
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/rte.safetensors`;
 * await writeTokenizedSplits(path, { train }, { key: "k" });
 * const { splits, metadata } = await readTokenizedSplits(path);
 * assert.equal(metadata.key, "k");
 * assert.deepEqual(splits.train.sourceIds, train.sourceIds);
 * assert.deepEqual(splits.train.targets, ["1"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readTokenizedSplits(
  path: string,
): Promise<{ splits: Record<string, TokenizedSplit>; metadata: Record<string, string> }> {
  using reader = await openSafetensors(path);
  const metadata = { ...reader.metadata };
  const bad = (message: string): never => {
    throw new DatasetError(path, `${path}: ${message}`);
  };
  if (metadata.format !== FORMAT) {
    bad(`not a tokenized-dataset file (format ${JSON.stringify(metadata.format ?? null)})`);
  }
  let lengths: unknown;
  try {
    lengths = JSON.parse(metadata.lengths ?? "");
  } catch {
    bad('its metadata "lengths" is not JSON');
  }
  if (typeof lengths !== "object" || lengths === null || Array.isArray(lengths)) {
    bad('its metadata "lengths" must map each split to [source length, target length]');
  }
  const tensor = async (name: string, dtype: "I32" | "U8") => {
    if (!reader.has(name)) bad(`it has no tensor ${JSON.stringify(name)}`);
    const info = reader.info(name);
    if (info.dtype !== dtype || info.shape.length !== 1) {
      bad(`${name} must be a 1-D ${dtype} tensor, got ${info.dtype} of shape [${info.shape}]`);
    }
    return (await reader.read(name)).data;
  };
  const splits: Record<string, TokenizedSplit> = {};
  for (const [name, pair] of Object.entries(lengths as Record<string, unknown>)) {
    if (
      !Array.isArray(pair) || pair.length !== 2 ||
      !pair.every((x) => Number.isSafeInteger(x) && x >= 1)
    ) {
      bad(
        `its metadata "lengths" for split ${JSON.stringify(name)} must be two positive ` +
          `integers, got ${JSON.stringify(pair)}`,
      );
    }
    const [sourceLength, targetLength] = pair as [number, number];
    const sourceIds = await tensor(`${name}.source_ids`, "I32") as Int32Array;
    const sourceOffsets = await tensor(`${name}.source_offsets`, "I32") as Int32Array;
    const targetIds = await tensor(`${name}.target_ids`, "I32") as Int32Array;
    const targetOffsets = await tensor(`${name}.target_offsets`, "I32") as Int32Array;
    const textOffsets = await tensor(`${name}.target_text_offsets`, "I32") as Int32Array;
    const text = await tensor(`${name}.target_text`, "U8") as Uint8Array;
    const size = sourceOffsets.length - 1;
    for (
      const [what, offsets, data, max] of [
        ["source", sourceOffsets, sourceIds, sourceLength],
        ["target", targetOffsets, targetIds, targetLength],
        ["target text", textOffsets, text, Infinity],
      ] as const
    ) {
      const problem = checkIndex(offsets, data.length, size, max);
      if (problem) bad(`split ${JSON.stringify(name)}: the ${what} index ${problem}`);
    }
    for (const [what, ids] of [["source", sourceIds], ["target", targetIds]] as const) {
      const i = ids.findIndex((id) => id < 0);
      if (i >= 0) bad(`split ${JSON.stringify(name)}: ${what} id ${ids[i]} at ${i} is negative`);
    }
    const targets = new Array<string>(size);
    for (let i = 0; i < size; i++) {
      try {
        targets[i] = strictUtf8.decode(text.subarray(textOffsets[i], textOffsets[i + 1]));
      } catch {
        bad(`split ${JSON.stringify(name)}: target ${i} is not valid UTF-8`);
      }
    }
    splits[name] = {
      size,
      sourceLength,
      targetLength,
      sourceIds,
      sourceOffsets,
      targetIds,
      targetOffsets,
      targets,
    };
  }
  return { splits, metadata };
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * What is wrong with one offsets index (undefined when nothing is): `size + 1` offsets from 0,
 * never decreasing, ending at the data's length, no sequence longer than `max`.
 */
function checkIndex(
  offsets: Int32Array,
  dataLength: number,
  size: number,
  max: number,
): string | undefined {
  if (size < 0 || offsets.length !== size + 1) {
    return `has ${offsets.length} offsets, where ${size + 1} (examples + 1) are needed`;
  }
  if (offsets[0] !== 0) return `starts at ${offsets[0]} instead of 0`;
  for (let i = 0; i < size; i++) {
    const n = offsets[i + 1] - offsets[i];
    if (n < 0) return `decreases at example ${i} (${offsets[i]} then ${offsets[i + 1]})`;
    if (n > max) return `gives example ${i} ${n} ids, more than the length limit ${max}`;
  }
  if (offsets[size] !== dataLength) {
    return `ends at ${offsets[size]}, but the data holds ${dataLength}`;
  }
  return undefined;
}

/**
 * A cache file's splits, or why it cannot serve this key: unreadable, malformed (see
 * {@link readTokenizedSplits}), made from other inputs, a split missing or of other lengths, or
 * an id outside the tokenizer's vocabulary.
 */
async function readCache(
  file: string,
  key: string,
  vocabSize: number,
  sourceLength: number,
  targetLength: number,
): Promise<{ splits: Record<string, TokenizedSplit> } | { why: string }> {
  let read;
  try {
    read = await readTokenizedSplits(file);
  } catch (e) {
    const m = e instanceof Error ? e.message : String(e);
    return { why: m.startsWith(`${file}: `) ? m.slice(file.length + 2) : m };
  }
  const { splits, metadata } = read;
  const why = cacheMismatch(splits, metadata, key, vocabSize, sourceLength, targetLength);
  return why === undefined ? { splits } : { why };
}

function cacheMismatch(
  splits: Record<string, TokenizedSplit>,
  metadata: Record<string, string>,
  key: string,
  vocabSize: number,
  sourceLength: number,
  targetLength: number,
): string | undefined {
  if (metadata.key !== key) return "it was made from other inputs (its key differs)";
  for (const name of SPLITS) {
    const s = splits[name];
    if (!s) return `it has no ${name} split`;
    if (s.sourceLength !== sourceLength || s.targetLength !== targetLength) {
      return `its ${name} split has lengths ${s.sourceLength}/${s.targetLength}, not ` +
        `${sourceLength}/${targetLength}`;
    }
    for (const ids of [s.sourceIds, s.targetIds]) {
      const i = ids.findIndex((id) => id >= vocabSize);
      if (i >= 0) {
        return `its ${name} split has id ${ids[i]}, outside the vocabulary (${vocabSize})`;
      }
    }
  }
  return undefined;
}

/**
 * Loads a task's train/validation/test splits tokenized, from the cache when the same
 * tokenizer, task, data, seed and lengths were prepared before by the same pipeline version;
 * otherwise reads the data, formats, splits and tokenizes it, and writes the cache.
 *
 * @param task A built-in or custom task.
 * @param tokenizer The tokenizer.
 * @param options Cache, lengths, Hub settings, seed and caps.
 * @returns The tokenized task.
 * @throws {HubError} When the data cannot be had from the Hub or the cache.
 * @throws {DatasetError} For malformed data files or missing columns.
 *
 * @example A built-in task (downloads GLUE and the tokenizer on first use)
 * ```ts ignore
 * import { getTask, loadTokenizer, prepareTask } from "@adept/trainer";
 *
 * const tok = await loadTokenizer("google-t5/t5-base");
 * const data = await prepareTask(getTask("sst2"), tok);
 * console.log(data.train.size, data.targetLength, data.fromCache);
 * ```
 *
 * @example A custom task over a local file, tokenized once and then read from the cache
 * ```ts
 * import { customTask, loadTokenizer, prepareTask } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const rows = Array.from({ length: 40 }, (_, i) => ({ text: `review ${i}`, label: i % 2 }));
 * await Deno.writeTextFile(`${dir}/train.jsonl`, rows.map((r) => JSON.stringify(r)).join("\n"));
 * const train = `${dir}/train.jsonl`;
 * const task = customTask({ train, source: "review: {text}", target: "label" });
 * const tok = await loadTokenizer("tests/fixtures/tokenizers/t5");
 * const options = { tokenizedCacheDir: `${dir}/cache`, labels: ["0", "1"] };
 * const data = await prepareTask(task, tok, options);
 * assert.equal(data.train.size + data.validation.size + data.test.size, 40);
 * assert.equal(data.fromCache, false);
 * assert.equal((await prepareTask(task, tok, options)).fromCache, true);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function prepareTask(
  task: Task,
  tokenizer: TextTokenizer,
  options: PrepareTaskOptions = {},
): Promise<TokenizedTask> {
  const log = options.onMessage ?? (() => {});
  const warn = options.onWarning ?? ((m: string) => console.warn(`warning: ${m}`));
  const data = await resolveTaskData(task, options);
  const sourceLength = options.sourceLength ?? task.maxSourceLength;
  // Never measured on the data: the option, the task's value, its labels, else 20.
  const targetLength = options.targetLength ??
    maxTargetLength(task, (t) => tokenizer.encode(t).length);
  const keyInput = JSON.stringify({
    format: FORMAT,
    pipeline: DATA_PIPELINE_VERSION,
    tokenizersLibrary: TOKENIZERS_LIBRARY_VERSION,
    tokenizer: tokenizer.hash,
    task: task.name,
    fingerprint: task.fingerprint,
    data: data.identity,
    seed: options.seed ?? 42,
    maxSamples: options.maxSamples ?? {},
    sourceLength,
    targetLength,
  });
  const key = createHash("sha256").update(keyInput).digest("hex");
  const dir = options.tokenizedCacheDir === false
    ? undefined
    : options.tokenizedCacheDir ?? defaultTokenizedCacheDir(options.env ?? Deno.env.toObject());
  const safeName = task.name.replace(/[^A-Za-z0-9_.-]/g, "_");
  const file = dir ? join(dir, `${safeName}-${key.slice(0, 24)}.safetensors`) : undefined;
  const result = (
    [train, validation, test]: TokenizedSplit[],
    fromCache: boolean,
  ): TokenizedTask => ({
    task,
    train,
    validation,
    test,
    sourceLength,
    targetLength,
    fromCache,
    key,
    cacheFile: file,
  });

  if (file && !options.refresh) {
    const stat = await Deno.lstat(file).catch(() => null);
    if (stat) {
      const got = await readCache(file, key, tokenizer.vocabSize, sourceLength, targetLength);
      if ("splits" in got) {
        log(`${task.name}: tokenized splits from the cache ${file}`);
        return result(SPLITS.map((s) => got.splits[s]), true);
      }
      warn(
        `${task.name}: rebuilding the tokenized cache ${file}: ${got.why}`.replace(/\s+/g, " "),
      );
    }
  }

  log(`${task.name}: reading ${Object.values(data.files).flat().length} data file(s)`);
  const examples = await loadTaskExamples(task, { ...options, data });
  const t0 = performance.now();
  const lengths = { sourceLength, targetLength };
  const [train, validation, test] = SPLITS.map((s) =>
    tokenizeExamples(tokenizer, examples[s], lengths)
  );
  const n = train.size + validation.size + test.size;
  log(`${task.name}: tokenized ${n} examples in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (file && dir) {
    await Deno.mkdir(dir, { recursive: true });
    await writeTokenizedSplits(file, { train, validation, test }, {
      key,
      key_input: keyInput,
      task: task.name,
      tokenizer: tokenizer.hash,
      data: data.identity.length > 2000 ? data.identity.slice(0, 2000) + "…" : data.identity,
    });
  }
  return result([train, validation, test], false);
}
