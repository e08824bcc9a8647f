/**
 * Dataset readers: parquet, JSONL, JSON, CSV and TSV files from disk, and the parquet splits of a
 * Hub dataset (`nyu-mll/glue`, `aps/super_glue`, ...) downloaded and cached like models.
 *
 * - **Rows** are plain objects, column name → value. Parquet INT64 values (BigInt in `hyparquet`)
 *   become numbers (strings if beyond 2^53), also inside lists and structs; CSV/TSV values are
 *   strings.
 * - **Parquet** is read with `hyparquet`, with `hyparquet-compressors` for ZSTD, GZIP, BROTLI and
 *   LZ4 pages (SNAPPY is built in). Only the requested columns are decoded. The footer and the
 *   page headers are checked first and the decoding runs in a worker with a deadline
 *   (parquet.ts); a row without a value for a requested column is an error naming the row.
 * - **Files** must be regular (a named pipe or a device is refused before it is opened); JSONL is
 *   read in pieces, JSON, CSV and TSV whole (refused as too large past one string's length).
 * - **TSV** is read with quoting off (`quote: false`): GLUE's TSVs contain unbalanced `"`.
 *   CSV follows RFC 4180 (quoted fields, `""` escapes, multi-line fields).
 * - **Hub datasets**: {@link loadHubSplits} fetches `<config>/<split>-*.parquet` (the layout of
 *   the Hub's parquet datasets; `<config>/<split>/*.parquet` and `<config>/*-<split>.parquet`,
 *   the layouts of the `refs/convert/parquet` branch, are accepted too) through `hubDownload`
 *   with `repoType: "dataset"`, so the HF cache, `HF_HUB_OFFLINE` and local folders with the
 *   same layout all work.
 * - **Errors** are {@link DatasetError}s naming the file and, where it applies, the line (JSON
 *   arrays: the element).
 * - **Locations**: {@link readTableLocated} also returns where each row is in its file (the
 *   1-based line a JSONL/CSV/TSV record starts on, the 1-based parquet row, the 0-based JSON
 *   array element), so that errors about a row's contents can name it.
 *
 * @module
 */

import { parse as parseCsv } from "csv-parse/sync";
import { basename, extname } from "node:path";
import {
  decodeUtf8,
  describeIoError,
  FileReadError,
  MAX_STRING_LENGTH,
  openRegularFile,
  readFileChecked,
  readTextFileChecked,
} from "../io/files.ts";
import {
  hubDownload,
  HubError,
  type HubOptions,
  hubSettings,
  type HubSnapshot,
  matchesPattern,
} from "../io/hub.ts";
import { decodeParquetInWorker, ParquetProblem } from "./parquet.ts";

/** One example: column name → value. */
export type Row = Record<string, unknown>;

/**
 * A malformed or unreadable data file, or a missing column. `file` is the path; `line` is the
 * 1-based line (JSONL/CSV/TSV) or row (parquet) when known (JSON array elements are named in the
 * message, not as lines).
 *
 * @example
 * ```ts
 * import { DatasetError, readTable } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/train.jsonl`;
 * await Deno.writeTextFile(path, '{"text": "fine", "label": 1}\n{"text": "oops", "label": 0\n');
 * await assert.rejects(readTable(path), (e) => {
 *   assert.ok(e instanceof DatasetError);
 *   assert.equal(e.file, path);
 *   assert.equal(e.line, 2); // the line of invalid JSON
 *   return true;
 * });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class DatasetError extends Error {
  /** The file at fault. */
  readonly file: string;
  /** 1-based line (text formats) or row (parquet), when known. */
  readonly line?: number;
  /** An error about `file` (and `line`); the message should say what is wrong. */
  constructor(file: string, message: string, options?: ErrorOptions & { line?: number }) {
    super(message, options);
    this.name = "DatasetError";
    this.file = file;
    this.line = options?.line;
  }
}

/** Options of the readers. */
export interface ReadOptions {
  /**
   * Columns every row must have (and, for parquet, the only ones decoded). A missing one is a
   * {@link DatasetError} naming the file and its columns.
   * @default {all columns, none required}
   */
  columns?: readonly string[];
  /**
   * The most time decoding one parquet file may take; past it the decoder is stopped and the
   * file reported (a corrupt page can send the decoder into an endless loop).
   * @default {20 s + 2 s per MiB of file}
   */
  parquetTimeoutMs?: number;
}

/**
 * Options of {@link readCsv}.
 */
export interface ReadCsvOptions extends ReadOptions {
  /**
   * Field delimiter.
   * @default {"\t" for .tsv files, else ","}
   */
  delimiter?: string;
  /**
   * Whether `"` quotes fields (RFC 4180). GLUE's TSVs need false.
   * @default {false for tab-delimited files, else true}
   */
  quoted?: boolean;
}

/**
 * File formats {@link readTable} recognizes by extension.
 */
export const TABLE_EXTENSIONS: readonly string[] = Object.freeze([
  ".parquet",
  ".jsonl",
  ".ndjson",
  ".json",
  ".csv",
  ".tsv",
]);

/** BigInt → number (or string beyond 2^53), recursively through lists and structs. */
function plain(v: unknown): unknown {
  if (typeof v === "bigint") {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v.toString();
  }
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === "object" && !(v instanceof Date) && !ArrayBuffer.isView(v)) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = plain(x);
    return o;
  }
  return v;
}

function requireColumns(
  file: string,
  have: readonly string[],
  want: readonly string[] | undefined,
  at: { line?: number; element?: number } = {},
): void {
  const missing = (want ?? []).filter((c) => !have.includes(c));
  if (missing.length) {
    const { line, element } = at;
    const where = line !== undefined
      ? ` (line ${line})`
      : element !== undefined
      ? ` (element ${element})`
      : "";
    throw new DatasetError(
      file,
      `${file}${where} has no column${missing.length > 1 ? "s" : ""} ${
        missing.map((c) => JSON.stringify(c)).join(", ")
      }; its columns are ${have.map((c) => JSON.stringify(c)).join(", ") || "(none)"}`,
      { line },
    );
  }
}

/** A {@link FileReadError} (or another I/O error) as a DatasetError naming the file. */
function fileError(path: string, e: unknown): DatasetError {
  if (e instanceof DatasetError) return e;
  const why = e instanceof FileReadError ? e.message : `cannot be read (${describeIoError(e)})`;
  return new DatasetError(path, `${path} ${why}`, {
    cause: e,
    line: e instanceof FileReadError ? e.line : undefined,
  });
}

async function readBytes(path: string): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return await readFileChecked(path);
  } catch (e) {
    throw fileError(path, e);
  }
}

async function readText(path: string): Promise<string> {
  try {
    return await readTextFileChecked(path);
  } catch (e) {
    throw fileError(path, e);
  }
}

/** Bytes read at once by {@link textLines}. */
const LINE_CHUNK = 16 * 1024 * 1024;

/**
 * The lines of a UTF-8 text file, read in pieces: a file of any size, as long as each line fits
 * in a string. Invalid UTF-8 is reported with its line and byte offset.
 */
async function* textLines(path: string): AsyncGenerator<{ line: number; text: string }> {
  let file: Deno.FsFile;
  try {
    file = await openRegularFile(path);
  } catch (e) {
    throw fileError(path, e);
  }
  try {
    // The bytes after the last newline so far, as the chunks they came in (no copying until a
    // line ends, so a long line costs its length once).
    let pending: Uint8Array[] = [];
    let pendingLength = 0;
    let line = 1;
    let offset = 0; // of the pending bytes in the file
    const buf = new Uint8Array(LINE_CHUNK);
    for (;;) {
      let n: number | null;
      try {
        n = await file.read(buf);
      } catch (e) {
        throw fileError(path, e);
      }
      const chunk = n === null ? new Uint8Array(0) : buf.slice(0, n);
      const cut = n === null ? chunk.length : chunk.lastIndexOf(10) + 1;
      if (cut === 0 && n !== null) {
        pending.push(chunk);
        pendingLength += chunk.length;
        if (pendingLength > MAX_STRING_LENGTH) {
          throw new DatasetError(
            path,
            `${path}:${line}: the line is longer than the ${MAX_STRING_LENGTH} bytes one ` +
              "JavaScript string can hold",
            { line },
          );
        }
        continue;
      }
      const piece = new Uint8Array(pendingLength + cut);
      let at = 0;
      for (const p of pending) {
        piece.set(p, at);
        at += p.length;
      }
      piece.set(chunk.subarray(0, cut), at);
      const text = decodeUtf8Piece(path, piece, line, offset);
      const parts = text.split("\n");
      if (n !== null || parts.at(-1) === "") parts.pop();
      for (const p of parts) yield { line: line++, text: p };
      offset += piece.length;
      pending = [chunk.subarray(cut)];
      pendingLength = chunk.length - cut;
      if (n === null) return;
    }
  } finally {
    file.close();
  }
}

function decodeUtf8Piece(path: string, bytes: Uint8Array, line: number, offset: number): string {
  try {
    return decodeUtf8(path, bytes, line, offset);
  } catch (e) {
    throw fileError(path, e);
  }
}

/**
 * Rows read from one file, with where each one is in that file (for error messages about a
 * row's contents).
 */
export interface LocatedRows {
  /** The rows. */
  rows: Row[];
  /**
   * What {@link LocatedRows.positions} count: `"line"` for JSONL, CSV and TSV (1-based, the
   * physical line a record starts on, blank lines and multi-line quoted fields counted),
   * `"row"` for parquet (1-based), `"element"` for JSON arrays (0-based index).
   */
  unit: "line" | "row" | "element";
  /** The position of each row, in {@link LocatedRows.unit}s. */
  positions: Int32Array;
}

function counting(n: number, first: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = first + i;
  return a;
}

/**
 * Reads a parquet file (SNAPPY, ZSTD, GZIP, BROTLI, LZ4 or uncompressed pages).
 *
 * @param path The file.
 * @param options Columns to decode (all by default); they must exist.
 * @returns The rows, INT64 values as numbers.
 * @throws {DatasetError} If the file is not parquet, a column is missing or a page is corrupt.
 *
 * @example
 * ```ts
 * import { readParquet } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const path = "tests/fixtures/datasets/rows_snappy.parquet"; // rows in the layout of GLUE's sst2
 * const rows = await readParquet(path, { columns: ["sentence", "label"] });
 * assert.deepEqual(rows[1], { sentence: "contains no wit , only labored gags #1", label: 1 });
 * ```
 */
export async function readParquet(path: string, options: ReadOptions = {}): Promise<Row[]> {
  return (await parquetLocated(path, options)).rows;
}

async function parquetLocated(path: string, options: ReadOptions): Promise<LocatedRows> {
  const bytes = await readBytes(path);
  const buffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes.buffer
    : bytes.slice().buffer;
  const timeoutMs = options.parquetTimeoutMs ?? 20_000 + 2_000 * bytes.length / 2 ** 20;
  let decoded;
  try {
    decoded = await decodeParquetInWorker(buffer, options.columns, { timeoutMs });
  } catch (e) {
    if (!(e instanceof ParquetProblem)) throw e;
    throw new DatasetError(
      path,
      e.row === undefined
        ? `${path} is not a readable parquet file: ${e.message}`
        : `${path}: ${e.message}`,
      { cause: e, line: e.row },
    );
  }
  requireColumns(path, decoded.names, options.columns);
  const rows = decoded.rows ?? [];
  return {
    rows: rows.map((r) => plain(r) as Row),
    unit: "row",
    positions: counting(rows.length, 1),
  };
}

/**
 * Reads JSON Lines: one JSON object per line; blank lines are skipped.
 *
 * @param path The file.
 * @param options Columns every row must have.
 * @returns The rows.
 * @throws {DatasetError} Naming the line of invalid JSON, a non-object or a missing column.
 *
 * @example
 * ```ts
 * import { readJsonl } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/train.jsonl`;
 * await Deno.writeTextFile(path, '{"q": "why?", "a": "because"}\n\n{"q": "how?", "a": "so"}\n');
 * const rows = await readJsonl(path, { columns: ["q", "a"] }); // blank lines skipped
 * assert.deepEqual(rows, [{ q: "why?", a: "because" }, { q: "how?", a: "so" }]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readJsonl(path: string, options: ReadOptions = {}): Promise<Row[]> {
  return (await jsonlLocated(path, options)).rows;
}

async function jsonlLocated(path: string, options: ReadOptions): Promise<LocatedRows> {
  const rows: Row[] = [];
  const lines: number[] = [];
  for await (const { line, text } of textLines(path)) {
    const raw = (line === 1 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).trim();
    if (raw === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw new DatasetError(
        path,
        `${path}:${line}: invalid JSON (${e instanceof Error ? e.message : String(e)}): ${
          raw.length > 80 ? raw.slice(0, 80) + "…" : raw
        }`,
        { cause: e, line },
      );
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new DatasetError(
        path,
        `${path}:${line}: expected a JSON object per line, got ${
          Array.isArray(value) ? "an array" : JSON.stringify(value)
        }`,
        { line },
      );
    }
    requireColumns(path, Object.keys(value), options.columns, { line });
    rows.push(value as Row);
    lines.push(line);
  }
  return { rows, unit: "line", positions: Int32Array.from(lines) };
}

/**
 * Reads a JSON file holding an array of objects.
 *
 * @param path The file.
 * @param options Columns every row must have.
 * @returns The rows.
 * @throws {DatasetError} If it is not valid JSON, not an array of objects, or lacks a column.
 *
 * @example
 * ```ts
 * import { readJson } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const rows = await readJson("tests/fixtures/datasets/rows.json"); // a JSON array of objects
 * assert.equal(rows[0].sentence, "hide new secretions from the parental units #0");
 * ```
 */
export async function readJson(path: string, options: ReadOptions = {}): Promise<Row[]> {
  return (await jsonLocated(path, options)).rows;
}

async function jsonLocated(path: string, options: ReadOptions): Promise<LocatedRows> {
  const text = await readText(path);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new DatasetError(
      path,
      `${path} is not valid JSON (${e instanceof Error ? e.message : String(e)}); ` +
        "for one object per line, name the file .jsonl",
      { cause: e },
    );
  }
  if (!Array.isArray(value)) {
    throw new DatasetError(path, `${path} must hold a JSON array of objects`);
  }
  value.forEach((v, i) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      throw new DatasetError(path, `${path}: element ${i} is not an object`);
    }
    requireColumns(path, Object.keys(v), options.columns, { element: i });
  });
  return { rows: value as Row[], unit: "element", positions: counting(value.length, 0) };
}

/**
 * Reads CSV or TSV with a header line. Tab-delimited files are read without quoting (GLUE's
 * TSVs contain unbalanced `"`); comma-separated ones with RFC 4180 quoting.
 *
 * @param path The file.
 * @param options Delimiter, quoting and required columns.
 * @returns The rows (all values are strings).
 * @throws {DatasetError} Naming the line of a row with the wrong number of fields, or a missing
 *   column.
 *
 * @example
 * ```ts
 * import { readCsv } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/train.tsv`; // .tsv: tab-separated, quotes are text
 * await Deno.writeTextFile(path, 'sentence\tlabel\nit\'s "fine"\t1\n');
 * assert.deepEqual(await readCsv(path), [{ sentence: 'it\'s "fine"', label: "1" }]); // strings
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readCsv(path: string, options: ReadCsvOptions = {}): Promise<Row[]> {
  return (await csvLocated(path, options)).rows;
}

async function csvLocated(path: string, options: ReadCsvOptions): Promise<LocatedRows> {
  const delimiter = options.delimiter ?? (extname(path).toLowerCase() === ".tsv" ? "\t" : ",");
  const quoted = options.quoted ?? delimiter !== "\t";
  const text = await readText(path);
  let parsed: { record: Record<string, string>; info: { lines: number } }[];
  // The header as csv-parse reads it (quotes and all), also when no record follows.
  let header: string[] = [];
  try {
    parsed = parseCsv(text, {
      columns: (names: string[]) => {
        const seen = new Set<string>();
        for (const h of names) {
          if (seen.has(h)) throw new Error(`the header names column ${JSON.stringify(h)} twice`);
          seen.add(h);
        }
        header = names;
        return names;
      },
      delimiter,
      quote: quoted ? '"' : false,
      skip_empty_lines: true,
      relax_quotes: false,
      info: true,
    }) as { record: Record<string, string>; info: { lines: number } }[];
  } catch (e) {
    const line = (e as { lines?: number }).lines;
    throw new DatasetError(
      path,
      `${path}${line ? `:${line}` : ""}: ${e instanceof Error ? e.message : String(e)}${
        quoted ? "" : " (read with quoting off)"
      }`,
      { cause: e, line },
    );
  }
  requireColumns(path, header, options.columns);
  const rows = new Array<Row>(parsed.length);
  const positions = new Int32Array(parsed.length);
  for (let i = 0; i < parsed.length; i++) {
    const { record, info } = parsed[i];
    rows[i] = record;
    // `info.lines` is the line the record ends on; newlines inside (quoted) fields move it.
    let inner = 0;
    for (const k in record) {
      const v = record[k];
      for (let j = v.indexOf("\n"); j >= 0; j = v.indexOf("\n", j + 1)) inner++;
    }
    positions[i] = info.lines - inner;
  }
  return { rows, unit: "line", positions };
}

/**
 * Reads a data file by its extension: `.parquet`, `.jsonl`/`.ndjson`, `.json`, `.csv`, `.tsv`.
 *
 * @param path The file.
 * @param options Required (and, for parquet, decoded) columns.
 * @returns The rows.
 * @throws {DatasetError} For an unknown extension or a malformed file.
 *
 * @example
 * ```ts
 * import { readTable } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const rows = await readTable("tests/fixtures/datasets/rows_zstd.parquet", { columns: ["idx"] });
 * assert.deepEqual(rows[3], { idx: 3 });
 * ```
 */
export async function readTable(path: string, options: ReadOptions = {}): Promise<Row[]> {
  return (await readTableLocated(path, options)).rows;
}

/**
 * {@link readTable}, also returning where each row is in the file: the 1-based line a record
 * starts on (JSONL, CSV, TSV), the 1-based row (parquet) or the 0-based element (JSON arrays).
 *
 * @param path The file.
 * @param options Required (and, for parquet, decoded) columns.
 * @returns The rows and their positions.
 * @throws {DatasetError} For an unknown extension or a malformed file.
 *
 * @example
 * ```ts
 * import { readTableLocated } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/train.csv`;
 * await Deno.writeTextFile(path, 'text,label\n"two\nlines",1\nshort,0\n');
 * const { rows, unit, positions } = await readTableLocated(path);
 * assert.equal(rows.length, 2);
 * assert.equal(unit, "line");
 * assert.deepEqual([...positions], [2, 4]); // the line each record starts on
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function readTableLocated(path: string, options: ReadOptions = {}): Promise<LocatedRows> {
  switch (extname(path).toLowerCase()) {
    case ".parquet":
      return parquetLocated(path, options);
    case ".jsonl":
    case ".ndjson":
      return jsonlLocated(path, options);
    case ".json":
      return jsonLocated(path, options);
    case ".csv":
    case ".tsv":
      return csvLocated(path, options);
    default:
      return Promise.reject(
        new DatasetError(
          path,
          `${basename(path)}: unknown data file type; use one of ${TABLE_EXTENSIONS.join(", ")}`,
        ),
      );
  }
}

/**
 * The glob patterns (hub.ts `matchesPattern` syntax) of one split's parquet shards.
 *
 * @param config The dataset config (`sst2`, `wsc.fixed`, ...).
 * @param split The split (`train`, `validation_matched`, ...).
 * @returns Patterns for the Hub's parquet layouts.
 *
 * @example
 * ```ts
 * import { splitPatterns } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(splitPatterns("sst2", "train")[0], "sst2/train-*.parquet");
 * ```
 */
export function splitPatterns(config: string, split: string): string[] {
  const esc = (s: string) => s.replace(/[*?[]/g, (c) => `[${c}]`);
  const c = esc(config), s = esc(split);
  return [`${c}/${s}-*.parquet`, `${c}/${s}/*.parquet`, `${c}/*-${s}.parquet`];
}

/**
 * Options of {@link loadHubSplits}: Hub settings plus the columns to read.
 */
export interface HubSplitsOptions extends HubOptions, ReadOptions {}

/** The parquet shards of some splits of a Hub dataset config, fetched into the HF cache. */
export interface HubSplitFiles {
  /** The snapshot (its `sha` identifies the data; `source` says if the Hub was asked). */
  snapshot: HubSnapshot;
  /** Absolute paths of each split's shards, in name order. */
  files: Record<string, string[]>;
}

/**
 * Downloads (or finds in the cache, or in a local folder with the Hub's layout) the parquet
 * shards of `splits` of one config of a Hub dataset.
 *
 * @param repo A dataset id such as `nyu-mll/glue`, or a local folder.
 * @param config The config folder, e.g. `sst2` or `wsc.fixed`.
 * @param splits Split names, e.g. `["train", "validation"]`.
 * @param options Hub settings (`repoType` is always `"dataset"`).
 * @returns The snapshot and each split's files.
 * @throws {HubError} When the files cannot be had (offline and not cached, not found, ...),
 *   "offline_miss" too when only some of the splits are in the cache and the Hub was not asked.
 * @throws {DatasetError} When a split has no parquet file.
 *
 * @example (needs the network, or the files in the cache)
 * ```ts ignore
 * import { downloadHubSplits } from "@adept/trainer";
 * const { files } = await downloadHubSplits("aps/super_glue", "boolq", ["train", "validation"]);
 * ```
 */
export async function downloadHubSplits(
  repo: string,
  config: string,
  splits: readonly string[],
  options: HubOptions = {},
): Promise<HubSplitFiles> {
  const patterns = splits.flatMap((s) => splitPatterns(config, s));
  const snapshot = await hubDownload(repo, { ...options, repoType: "dataset", patterns });
  const files: Record<string, string[]> = {};
  for (const split of splits) {
    const mine = splitPatterns(config, split);
    const names = snapshot.files.filter((f) => mine.some((p) => matchesPattern(f, p))).sort();
    if (names.length === 0 && snapshot.source === "cache") {
      // Served from the cache alone: the split may well exist on the Hub.
      const settings = hubSettings(options);
      const why = settings.offline
        ? "Offline mode is on (HF_HUB_OFFLINE or the offline option)"
        : "The Hub could not be reached";
      throw new HubError(
        "offline_miss",
        `${why}, and dataset ${repo}, config ${JSON.stringify(config)}, split ${
          JSON.stringify(split)
        } is not in the cache ${snapshot.dir} (it holds ${
          snapshot.files.join(", ") || "nothing"
        } of this config's requested splits). Run once with network access (without ` +
          `HF_HUB_OFFLINE) to download it into ${settings.cacheDir}.`,
      );
    }
    if (names.length === 0) {
      throw new DatasetError(
        snapshot.dir,
        `dataset ${repo} has no parquet file for config ${JSON.stringify(config)}, split ${
          JSON.stringify(split)
        } (looked for ${mine.join(", ")}); found ${snapshot.files.join(", ") || "nothing"}`,
      );
    }
    files[split] = names.map((n) => snapshot.path(n));
  }
  return { snapshot, files };
}

/**
 * Loads the rows of some splits of one config of a Hub dataset (or a local folder laid out
 * like one). Shards are concatenated in name order.
 *
 * @param repo A dataset id such as `nyu-mll/glue`, or a local folder.
 * @param config The config folder, e.g. `sst2`.
 * @param splits Split names.
 * @param options Hub settings and the columns to read.
 * @returns Rows per split.
 * @throws {HubError} When the files cannot be had.
 * @throws {DatasetError} When a split is missing, a file is malformed or a column is missing.
 *
 * @example (needs the network, or the files in the cache)
 * ```ts ignore
 * import { loadHubSplits } from "@adept/trainer";
 * const { train } = await loadHubSplits("nyu-mll/glue", "sst2", ["train"], {
 *   columns: ["sentence", "label"],
 * });
 * ```
 */
export async function loadHubSplits(
  repo: string,
  config: string,
  splits: readonly string[],
  options: HubSplitsOptions = {},
): Promise<Record<string, Row[]>> {
  const { files } = await downloadHubSplits(repo, config, splits, options);
  const out: Record<string, Row[]> = {};
  for (const split of splits) {
    const rows: Row[] = [];
    for (const f of files[split]) {
      for (const r of await readParquet(f, { columns: options.columns })) rows.push(r);
    }
    out[split] = rows;
  }
  return out;
}
