/**
 * Reading and writing [safetensors](https://github.com/huggingface/safetensors) files.
 *
 * The format is an 8-byte little-endian header length `N`, `N` bytes of JSON describing every
 * tensor (`dtype`, `shape`, `data_offsets` relative to the data region) plus an optional
 * `__metadata__` string map, then the raw little-endian tensor bytes.
 *
 * - {@link openSafetensors} validates the whole header first (bounded: the header length must fit
 *   in the file and stay under {@link MAX_HEADER_BYTES}), then reads tensors one at a time with
 *   positioned reads. It never loads the whole file, works for files above 2 GiB, and opens
 *   sharded checkpoints (`model.safetensors.index.json`) as one logical file.
 * - {@link writeSafetensors} writes files that Python `safetensors` reads, byte-identical to what
 *   `safetensors.torch.save_file` writes for the same tensors and (single-key) metadata, and
 *   writes them atomically (temporary file + rename).
 *
 * Every problem raises a {@link SafetensorsError} that names the file, the tensor and the
 * offending value.
 *
 * @example Read a checkpoint tensor by tensor
 * ```ts
 * import { openSafetensors } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // A folder (model.safetensors or its index), a file, or an index.json.
 * using st = await openSafetensors("tests/fixtures/t5/tiny-t5-v1_1");
 * for (const name of st.names()) {
 *   const w = await st.readFloat(name); // Float32Array, converted from F16/BF16 if needed
 *   assert.equal(w.length, st.info(name).shape.reduce((a, b) => a * b, 1));
 * }
 * ```
 *
 * @module
 */

import { basename, dirname, isAbsolute, join, resolve, sep as SEPARATOR } from "node:path";
import {
  checkRegularFile,
  describeIoError,
  FileReadError,
  openRegularFile,
  readTextFileChecked,
} from "./files.ts";

/** The largest JSON header accepted, as in the Rust crate (`MAX_HEADER_SIZE`). */
export const MAX_HEADER_BYTES = 100_000_000;

/** The largest `model.safetensors.index.json` accepted. */
const MAX_INDEX_BYTES = 100_000_000;

/** One read() returns at most this many bytes on Linux; we never ask for more at once. */
const MAX_READ_CHUNK = 1 << 30;

/**
 * Element types of the safetensors format, in the order of the Rust `Dtype` enum (which is the
 * order Python `safetensors` uses to lay tensors out: largest first, so offsets stay aligned).
 */
export const SAFETENSORS_DTYPES = [
  "BOOL",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
  "U8",
  "I8",
  "F8_E5M2",
  "F8_E4M3",
  "F8_E8M0",
  "I16",
  "U16",
  "F16",
  "BF16",
  "I32",
  "U32",
  "F32",
  "C64",
  "F64",
  "I64",
  "U64",
] as const;

/** A safetensors element type such as `"F32"`, `"BF16"` or `"I64"`. */
export type SafetensorsDtype = typeof SAFETENSORS_DTYPES[number];

const DTYPE_BITS: Readonly<Record<SafetensorsDtype, number>> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
};

/** The typed array that holds each integer dtype as {@link SafetensorsReader.read} returns it. */
const INT_ARRAYS = new Map<SafetensorsDtype, new (buffer: ArrayBuffer) => SafetensorsData>([
  ["BOOL", Uint8Array],
  ["U8", Uint8Array],
  ["I8", Int8Array],
  ["I16", Int16Array],
  ["U16", Uint16Array],
  ["I32", Int32Array],
  ["U32", Uint32Array],
  ["I64", BigInt64Array],
  ["U64", BigUint64Array],
]);

const DTYPE_RANK = new Map<string, number>(SAFETENSORS_DTYPES.map((d, i) => [d, i]));

/**
 * Bits per element of a safetensors dtype (4 and 6 for the packed FP4/FP6 types).
 *
 * @example
 * ```ts
 * import { safetensorsDtypeBits } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(safetensorsDtypeBits("BF16"), 16);
 * assert.equal(safetensorsDtypeBits("F8_E4M3"), 8);
 * assert.equal(safetensorsDtypeBits("I64"), 64);
 * ```
 */
export function safetensorsDtypeBits(dtype: SafetensorsDtype): number {
  return DTYPE_BITS[dtype];
}

/**
 * Raised for every problem with a safetensors file or index: truncated files, corrupt headers,
 * bad offsets, unknown dtypes, missing tensors, unsafe shard names. The message names the file
 * and (where there is one) the tensor, and quotes the offending value.
 *
 * @example
 * ```ts
 * import { openSafetensors, SafetensorsError } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/broken.safetensors`;
 * await Deno.writeFile(path, new Uint8Array([1, 2, 3])); // shorter than the 8-byte length
 * await assert.rejects(
 *   openSafetensors(path),
 *   (e) => e instanceof SafetensorsError && e.file === path,
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class SafetensorsError extends Error {
  /** The file (or index) the problem is in. */
  readonly file: string;
  /** The tensor concerned, if any. */
  readonly tensor?: string;
  /** `message` is prefixed with the file and, if given, the tensor. */
  constructor(file: string, message: string, tensor?: string, options?: ErrorOptions) {
    super(`${file}: ${tensor === undefined ? "" : `tensor ${q(tensor)}: `}${message}`, options);
    this.name = "SafetensorsError";
    this.file = file;
    this.tensor = tensor;
  }
}

/** Where one tensor lives and what it holds. */
export interface SafetensorsTensorInfo {
  /** Tensor name as written in the header. */
  readonly name: string;
  /** Element type as stored in the file. */
  readonly dtype: SafetensorsDtype;
  /** Dimensions (`[]` for a scalar). */
  readonly shape: readonly number[];
  /** Number of elements (product of `shape`). */
  readonly numel: number;
  /** Bytes the tensor occupies in the file. */
  readonly byteLength: number;
  /** The file holding it (a shard for sharded checkpoints). */
  readonly file: string;
  /** Absolute byte offset of its data in `file`. */
  readonly offset: number;
}

/**
 * The floating-point type tensors are converted to by {@link SafetensorsReader.readFloat}.
 */
export type ComputeDtype = "f32" | "f16";

/**
 * Typed arrays {@link SafetensorsReader.read} returns.
 */
export type SafetensorsData =
  | Float32Array<ArrayBuffer>
  | Float16Array<ArrayBuffer>
  | Float64Array<ArrayBuffer>
  | BigInt64Array<ArrayBuffer>
  | BigUint64Array<ArrayBuffer>
  | Int32Array<ArrayBuffer>
  | Uint32Array<ArrayBuffer>
  | Int16Array<ArrayBuffer>
  | Uint16Array<ArrayBuffer>
  | Int8Array<ArrayBuffer>
  | Uint8Array<ArrayBuffer>;

/** A tensor read from a file: its stored dtype, shape and (possibly converted) data. */
export interface SafetensorsTensor<T extends SafetensorsData = SafetensorsData> {
  /** Tensor name. */
  name: string;
  /** Element type as stored in the file (the data may have been converted). */
  dtype: SafetensorsDtype;
  /** Dimensions. */
  shape: number[];
  /** The elements, in row-major order. */
  data: T;
}

/**
 * Options of {@link SafetensorsReader.read} and {@link SafetensorsReader.readFloat}.
 */
export interface ReadTensorOptions {
  /**
   * What floating-point tensors (F16, BF16, F32, F64, F8_*) are converted to. Integer and BOOL
   * tensors ignore it.
   * @default {"f32"}
   */
  dtype?: ComputeDtype;
}

/** Options of {@link SafetensorsReader.readFloatChunks}. */
export interface ReadChunksOptions extends ReadTensorOptions {
  /**
   * The most bytes of the file read at once (rounded down to whole elements, at least one).
   * @default {67_108_864 (64 MiB)}
   */
  maxBytes?: number;
}

/** One piece of a tensor from {@link SafetensorsReader.readFloatChunks}. */
export interface FloatChunk {
  /** The index of its first element in the whole tensor. */
  offset: number;
  /** Its elements, converted. */
  data: Float32Array<ArrayBuffer> | Float16Array<ArrayBuffer>;
}

/** An open safetensors file, or a sharded checkpoint opened as one logical file. */
export interface SafetensorsReader extends Disposable {
  /** The path that was opened (file, index or folder, resolved to the file or index). */
  readonly path: string;
  /** The files tensors are read from (one, or every shard). */
  readonly files: readonly string[];
  /** `__metadata__` of the file; for shards, the union over all shards. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Tensor names, in file order (index order for shards). */
  names(): string[];
  /** Whether a tensor exists. */
  has(name: string): boolean;
  /** Dtype, shape and location of a tensor; throws {@link SafetensorsError} if missing. */
  info(name: string): SafetensorsTensorInfo;
  /** The tensor's raw little-endian bytes, copied into a fresh buffer. */
  readBytes(name: string): Promise<Uint8Array<ArrayBuffer>>;
  /**
   * A floating-point tensor converted to `Float32Array` (default) or `Float16Array`. Throws for
   * integer tensors.
   */
  readFloat(name: string, options?: { dtype?: "f32" }): Promise<Float32Array<ArrayBuffer>>;
  /** A floating-point tensor converted to `Float16Array`. */
  readFloat(name: string, options: { dtype: "f16" }): Promise<Float16Array<ArrayBuffer>>;
  /** A floating-point tensor converted to the requested dtype. */
  readFloat(
    name: string,
    options?: ReadTensorOptions,
  ): Promise<Float32Array<ArrayBuffer> | Float16Array<ArrayBuffer>>;
  /**
   * Any tensor: floats converted to the compute dtype, integers and BOOL as their natural typed
   * array (I64 as BigInt64Array, BOOL as Uint8Array, ...).
   */
  read(name: string, options?: ReadTensorOptions): Promise<SafetensorsTensor>;
  /**
   * A floating-point tensor converted piece by piece: each piece holds whole elements read from
   * at most `maxBytes` bytes of the file, so a tensor of many GiB streams through a bounded
   * buffer (to the GPU, for example) instead of being held whole in host memory.
   */
  readFloatChunks(name: string, options?: ReadChunksOptions): AsyncGenerator<FloatChunk>;
  /** Closes every file handle. Further reads throw. */
  close(): void;
}

/**
 * Options of {@link openSafetensors}.
 */
export interface OpenSafetensorsOptions {
  /**
   * The largest JSON header accepted, in bytes.
   * @default {100_000_000}
   */
  maxHeaderBytes?: number;
}

/** Quotes a value for an error message. */
function q(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 200 ? v.slice(0, 200) + "…" : v);
  if (typeof v === "bigint") return `${v}`;
  if (v === undefined) return "undefined";
  if (v instanceof NonIntegerLiteral) return v.source;
  let s: string;
  try {
    // A number written as 2.0 is shown as written, unquoted.
    s = JSON.stringify(v, (_k, x) => x instanceof NonIntegerLiteral ? `\uE000${x.source}\uE000` : x)
      ?.replace(/"\uE000([^\uE000]*)\uE000"/g, "$1") ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 200 ? s.slice(0, 200) + "…" : s;
}

/** A file handle with a read queue: seek + read pairs must not interleave. */
class OpenFile {
  readonly path: string;
  readonly size: number;
  #handle: Deno.FsFile | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(path: string, handle: Deno.FsFile, size: number) {
    this.path = path;
    this.#handle = handle;
    this.size = size;
  }

  /** Fills `dst` from byte `offset` (queued, so concurrent calls are safe). */
  readAt(offset: number, dst: Uint8Array, what: () => string): Promise<void> {
    const run = this.#queue.then(() => this.#readAt(offset, dst, what));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #readAt(offset: number, dst: Uint8Array, what: () => string): Promise<void> {
    const h = this.#handle;
    if (!h) throw new SafetensorsError(this.path, `cannot read ${what()}: the file was closed`);
    try {
      await h.seek(offset, Deno.SeekMode.Start);
      let done = 0;
      while (done < dst.length) {
        const n = await h.read(
          dst.subarray(done, done + Math.min(dst.length - done, MAX_READ_CHUNK)),
        );
        if (n === null || n === 0) {
          throw new SafetensorsError(
            this.path,
            `the file ended after ${done} of the ${dst.length} bytes of ${what()} at offset ` +
              `${offset}: the file is truncated or was changed after it was opened`,
          );
        }
        done += n;
      }
    } catch (e) {
      if (e instanceof SafetensorsError) throw e;
      throw new SafetensorsError(this.path, `reading ${what()} failed: ${errMsg(e)}`, undefined, {
        cause: e,
      });
    }
  }

  close(): void {
    const h = this.#handle;
    this.#handle = undefined;
    if (h) {
      try {
        h.close();
      } catch {
        // already closed
      }
    }
  }
}

/** Sets an own property, even one named `__proto__`, without touching the prototype. */
function setOwn(obj: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A validated header entry. */
interface Entry {
  info: SafetensorsTensorInfo;
  file: OpenFile;
}

/** The result of parsing and validating a header. */
interface ParsedHeader {
  metadata: Record<string, string>;
  tensors: SafetensorsTensorInfo[];
}

/**
 * Parses and validates a JSON header. `dataStart` is the absolute offset of the data region and
 * `dataLength` its length in bytes.
 */
function parseHeader(
  file: string,
  headerBytes: Uint8Array,
  dataStart: number,
  dataLength: number,
): ParsedHeader {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError(file, "the header is not valid UTF-8: the file is corrupt");
  }
  let json: unknown;
  try {
    json = JSON.parse(text, keepNumberLiterals);
  } catch (e) {
    throw new SafetensorsError(
      file,
      `the header is not valid JSON (${errMsg(e)}); it starts with ${q(text.slice(0, 60))}`,
    );
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new SafetensorsError(
      file,
      `the header must be a JSON object, got ${Array.isArray(json) ? "an array" : q(json)}`,
    );
  }
  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (value === null) continue;
      if (typeof value !== "object" || Array.isArray(value)) {
        throw new SafetensorsError(file, `__metadata__ must be a map of strings, got ${q(value)}`);
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== "string") {
          throw new SafetensorsError(
            file,
            `__metadata__ must be a map of strings, but key ${q(k)} holds ${q(v)}`,
          );
        }
        setOwn(metadata, k, v);
      }
      continue;
    }
    tensors.push(parseEntry(file, name, value, dataStart, dataLength));
  }
  checkCoverage(file, tensors, dataStart, dataLength);
  // File order = data order (stable for empty tensors).
  tensors.sort((a, b) => a.offset - b.offset);
  return { metadata, tensors };
}

/**
 * A number written with a fraction or an exponent (`2.0`, `1e3`). Python `safetensors` (Rust
 * serde) refuses such literals where it expects an integer (shape, data_offsets); JSON.parse
 * alone would turn `2.0` into the integer 2. Messages show it as written.
 */
class NonIntegerLiteral {
  constructor(readonly source: string) {}
}

/** A JSON.parse reviver that keeps integer literals as numbers and marks the others. */
function keepNumberLiterals(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value === "number" && context?.source !== undefined && /[.eE]/.test(context.source)) {
    return new NonIntegerLiteral(context.source);
  }
  return value;
}

/**
 * Checks that the tensors tile the data region exactly, as Python `safetensors` does: sorted by
 * `data_offsets`, each starts where the previous one ends (the first at 0), and the last ends at
 * the end of the file. A gap or trailing bytes mean the header and the data disagree (a corrupt
 * header length, a shifted table): every tensor would be read from the wrong bytes.
 */
function checkCoverage(
  file: string,
  tensors: readonly SafetensorsTensorInfo[],
  dataStart: number,
  dataLength: number,
): void {
  const sorted = [...tensors].sort((a, b) =>
    (a.offset - b.offset) || (a.byteLength - b.byteLength)
  );
  let end = 0;
  let previous: SafetensorsTensorInfo | undefined;
  const span = (t: SafetensorsTensorInfo) =>
    `[${t.offset - dataStart}, ${t.offset - dataStart + t.byteLength}]`;
  for (const t of sorted) {
    const begin = t.offset - dataStart;
    if (begin < end) {
      throw new SafetensorsError(
        file,
        `tensors ${q(previous!.name)} (data_offsets ${span(previous!)}) and ${q(t.name)} ` +
          `(data_offsets ${span(t)}) overlap`,
      );
    }
    if (begin > end) {
      throw new SafetensorsError(
        file,
        `invalid offset: its data_offsets ${span(t)} leave bytes ${end} to ${begin} of the data ` +
          `region unused (${previous ? `after tensor ${q(previous.name)}` : "at its start"}); ` +
          "the tensors must cover the data region without gaps",
        t.name,
      );
    }
    end = begin + t.byteLength;
    if (t.byteLength > 0 || !previous) previous = t;
  }
  if (end !== dataLength) {
    throw new SafetensorsError(
      file,
      `incomplete metadata, file not fully covered: the tensors cover ${end} of the data ` +
        `region's ${dataLength} bytes, so ${dataLength - end} bytes after them belong to no ` +
        "tensor (a wrong header length, or bytes appended to the file)",
    );
  }
}

function parseEntry(
  file: string,
  name: string,
  value: unknown,
  dataStart: number,
  dataLength: number,
): SafetensorsTensorInfo {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new SafetensorsError(
      file,
      `the header entry must be an object with dtype, shape and data_offsets, got ${q(value)}`,
      name,
    );
  }
  const v = value as Record<string, unknown>;
  const dtype = v.dtype;
  if (typeof dtype !== "string" || !DTYPE_RANK.has(dtype)) {
    throw new SafetensorsError(
      file,
      dtype === undefined
        ? "the header entry has no dtype"
        : `unknown dtype ${q(dtype)} (known: ${SAFETENSORS_DTYPES.join(", ")})`,
      name,
    );
  }
  const shape = v.shape;
  if (shape === undefined) throw new SafetensorsError(file, "the header entry has no shape", name);
  if (
    !Array.isArray(shape) ||
    !shape.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0)
  ) {
    throw new SafetensorsError(
      file,
      `shape ${q(shape)} must be an array of non-negative integers`,
      name,
    );
  }
  const offs = v.data_offsets;
  if (offs === undefined) {
    throw new SafetensorsError(file, "the header entry has no data_offsets", name);
  }
  if (
    !Array.isArray(offs) || offs.length !== 2 ||
    !offs.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)
  ) {
    throw new SafetensorsError(
      file,
      `data_offsets ${q(offs)} must be two non-negative integers [begin, end]`,
      name,
    );
  }
  const [begin, end] = offs as [number, number];
  if (end < begin) {
    throw new SafetensorsError(file, `data_offsets [${begin}, ${end}] end before they begin`, name);
  }
  if (end > dataLength) {
    throw new SafetensorsError(
      file,
      `data_offsets [${begin}, ${end}] go beyond the end of the data region (${dataLength} ` +
        `bytes): the file is truncated or the header is corrupt`,
      name,
    );
  }
  let numel = 1;
  if (!shape.includes(0)) {
    for (const d of shape as number[]) {
      numel *= d;
      if (!Number.isSafeInteger(numel)) {
        throw new SafetensorsError(file, `shape ${q(shape)} has too many elements`, name);
      }
    }
  } else numel = 0;
  const bits = DTYPE_BITS[dtype as SafetensorsDtype];
  const needBits = numel * bits;
  const needed = needBits / 8;
  if (!Number.isSafeInteger(needBits) || needBits % 8 !== 0 || needed !== end - begin) {
    throw new SafetensorsError(
      file,
      `data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but dtype ${dtype} with shape ` +
        `[${(shape as number[]).join(", ")}] needs ${
          needBits % 8 === 0 ? needed : `${needBits} bits (not a whole number of bytes)`
        }`,
      name,
    );
  }
  return {
    name,
    dtype: dtype as SafetensorsDtype,
    shape: Object.freeze([...(shape as number[])]),
    numel,
    byteLength: end - begin,
    file,
    offset: dataStart + begin,
  };
}

/** Opens one .safetensors file and validates its header. The handle is closed on failure. */
async function openOne(
  path: string,
  maxHeaderBytes: number,
): Promise<{ file: OpenFile; header: ParsedHeader }> {
  let handle: Deno.FsFile;
  try {
    handle = await openRegularFile(path); // a named pipe would block a plain open
  } catch (e) {
    throw fileError(path, e);
  }
  let size: number;
  try {
    const st = await handle.stat();
    if (!st.isFile) {
      handle.close();
      throw new SafetensorsError(path, "is not a regular file (it changed after it was checked)");
    }
    size = st.size;
  } catch (e) {
    try {
      handle.close();
    } catch { /* closed */ }
    if (e instanceof SafetensorsError) throw e;
    throw new SafetensorsError(path, `cannot stat the file (${describeIoError(e)})`, undefined, {
      cause: e,
    });
  }
  const file = new OpenFile(path, handle, size);
  try {
    if (size < 8) {
      throw new SafetensorsError(
        path,
        `the file is ${size} bytes long, too short for the 8-byte header length: the file is ` +
          "truncated or not a safetensors file",
      );
    }
    const prefix = new Uint8Array(8);
    await file.readAt(0, prefix, () => "the header length");
    const n = new DataView(prefix.buffer).getBigUint64(0, true);
    if (n > BigInt(size - 8)) {
      throw new SafetensorsError(
        path,
        `header length ${n} goes beyond the end of the file (${size} bytes, so at most ${
          size - 8
        } bytes of header): the file is truncated or not a safetensors file`,
      );
    }
    if (n > BigInt(maxHeaderBytes)) {
      throw new SafetensorsError(
        path,
        `header length ${n} exceeds the limit of ${maxHeaderBytes} bytes`,
      );
    }
    const headerLen = Number(n);
    if (headerLen < 2) {
      throw new SafetensorsError(path, `header length ${headerLen} is too small for a JSON object`);
    }
    const headerBytes = new Uint8Array(headerLen);
    await file.readAt(8, headerBytes, () => "the header");
    const dataStart = 8 + headerLen;
    const header = parseHeader(path, headerBytes, dataStart, size - dataStart);
    return { file, header };
  } catch (e) {
    file.close();
    throw e;
  }
}

/** A {@link FileReadError} (or another I/O error) as a SafetensorsError naming the file. */
function fileError(path: string, e: unknown): SafetensorsError {
  if (e instanceof SafetensorsError) return e;
  const why = e instanceof FileReadError ? e.message : `cannot be read (${describeIoError(e)})`;
  return new SafetensorsError(path, why, undefined, { cause: e });
}

/** Validates a shard name from an index: relative, no `..`, no backslash, no NUL. */
function checkRelativeName(index: string, name: string, what: string): void {
  const bad = name === "" || name.includes("\0") || name.includes("\\") || isAbsolute(name) ||
    /^[a-zA-Z]:/.test(name) || name.split("/").some((s) => s === ".." || s === "");
  if (bad) {
    throw new SafetensorsError(
      index,
      `${what} ${q(name)} is not a plain relative path inside the model folder ` +
        "(absolute paths, '..', backslashes and empty segments are refused)",
    );
  }
}

/**
 * The real folders a shard may resolve into: the model folder itself and, when the model folder
 * is inside a Hugging Face cache snapshot (`<repo>/snapshots/<sha>/...`), that repo's `blobs/`
 * (cache files are symlinks into it).
 */
async function allowedRoots(folder: string): Promise<string[]> {
  const roots = [await Deno.realPath(folder)];
  const parts = resolve(folder).split(SEPARATOR);
  const i = parts.lastIndexOf("snapshots");
  if (i > 0 && i < parts.length - 1) {
    const blobs = [...parts.slice(0, i), "blobs"].join(SEPARATOR);
    try {
      roots.push(await Deno.realPath(blobs));
    } catch {
      // no blobs folder: nothing extra allowed
    }
  }
  return roots;
}

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(SEPARATOR) ? root : root + SEPARATOR);
}

class Reader implements SafetensorsReader {
  readonly path: string;
  readonly files: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
  #entries: Map<string, Entry>;
  #open: OpenFile[];
  #closed = false;

  constructor(
    path: string,
    open: OpenFile[],
    entries: Map<string, Entry>,
    metadata: Record<string, string>,
  ) {
    this.path = path;
    this.#open = open;
    this.files = Object.freeze(open.map((f) => f.path));
    this.#entries = entries;
    this.metadata = Object.freeze(metadata);
  }

  names(): string[] {
    return [...this.#entries.keys()];
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  #entry(name: string): Entry {
    const e = this.#entries.get(name);
    if (!e) {
      const some = [...this.#entries.keys()].slice(0, 5).map(q).join(", ");
      throw new SafetensorsError(
        this.path,
        `no such tensor (the checkpoint has ${this.#entries.size} tensors${
          some ? `, e.g. ${some}` : ""
        })`,
        name,
      );
    }
    if (this.#closed) throw new SafetensorsError(this.path, "the reader was closed", name);
    return e;
  }

  info(name: string): SafetensorsTensorInfo {
    return this.#entry(name).info;
  }

  async readBytes(name: string): Promise<Uint8Array<ArrayBuffer>> {
    const { info, file } = this.#entry(name);
    const out = allocate(info, () => new Uint8Array(info.byteLength));
    await file.readAt(info.offset, out, () => `tensor ${q(name)}`);
    return out;
  }

  async *readFloatChunks(
    name: string,
    options: ReadChunksOptions = {},
  ): AsyncGenerator<FloatChunk> {
    const { info, file } = this.#entry(name);
    const target = this.#floatTarget(info, options);
    const size = DTYPE_BITS[info.dtype] / 8;
    const max = options.maxBytes ?? 64 * 1024 * 1024;
    if (!(max > 0)) {
      throw new SafetensorsError(this.path, `maxBytes must be positive, got ${q(max)}`, name);
    }
    const per = Math.max(1, Math.floor(max / size));
    for (let first = 0; first < info.numel; first += per) {
      const n = Math.min(per, info.numel - first);
      const bytes = allocate(info, () => new Uint8Array(n * size));
      await file.readAt(info.offset + first * size, bytes, () => `tensor ${q(name)}`);
      yield {
        offset: first,
        data: allocate(info, () => convertFloat(info.dtype, bytes, n, target)),
      };
    }
  }

  #floatTarget(info: SafetensorsTensorInfo, options: ReadTensorOptions): ComputeDtype {
    const target = options.dtype ?? "f32";
    if (target !== "f32" && target !== "f16") {
      throw new SafetensorsError(
        this.path,
        `unknown compute dtype ${q(target)} (f32 or f16)`,
        info.name,
      );
    }
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new SafetensorsError(
        info.file,
        `dtype ${info.dtype} is not a floating-point type this reader converts (` +
          `${[...FLOAT_DTYPES].join(", ")}); use read() or readBytes()`,
        info.name,
      );
    }
    return target;
  }

  readFloat(name: string, options?: { dtype?: "f32" }): Promise<Float32Array<ArrayBuffer>>;
  readFloat(name: string, options: { dtype: "f16" }): Promise<Float16Array<ArrayBuffer>>;
  readFloat(
    name: string,
    options?: ReadTensorOptions,
  ): Promise<Float32Array<ArrayBuffer> | Float16Array<ArrayBuffer>>;
  async readFloat(
    name: string,
    options: ReadTensorOptions = {},
  ): Promise<Float32Array<ArrayBuffer> | Float16Array<ArrayBuffer>> {
    const { info } = this.#entry(name);
    const target = this.#floatTarget(info, options);
    const bytes = await this.readBytes(name);
    return allocate(info, () => convertFloat(info.dtype, bytes, info.numel, target));
  }

  async read(name: string, options: ReadTensorOptions = {}): Promise<SafetensorsTensor> {
    const { info } = this.#entry(name);
    const base = { name, dtype: info.dtype, shape: [...info.shape] };
    if (FLOAT_DTYPES.has(info.dtype)) {
      return { ...base, data: await this.readFloat(name, options) };
    }
    const TypedArray = INT_ARRAYS.get(info.dtype);
    if (!TypedArray) {
      throw new SafetensorsError(
        info.file,
        `dtype ${info.dtype} has no typed-array form; use readBytes()`,
        name,
      );
    }
    return { ...base, data: new TypedArray((await this.readBytes(name)).buffer) };
  }

  close(): void {
    this.#closed = true;
    for (const f of this.#open) f.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Runs an allocation of host memory for a tensor; a failure (a RangeError from V8 for a tensor
 * of many GiB) becomes a SafetensorsError naming the file and the tensor.
 */
function allocate<T>(info: SafetensorsTensorInfo, make: () => T): T {
  try {
    return make();
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new SafetensorsError(
      info.file,
      `${info.byteLength} bytes (${info.dtype}, shape [${info.shape.join(", ")}]) do not fit in ` +
        "host memory at once; read it in pieces (readFloatChunks)",
      info.name,
      { cause: e },
    );
  }
}

const FLOAT_DTYPES: ReadonlySet<SafetensorsDtype> = new Set<SafetensorsDtype>([
  "F32",
  "F16",
  "BF16",
  "F64",
  "F8_E4M3",
  "F8_E5M2",
  "F8_E8M0",
]);

let fp8Tables: Record<"F8_E4M3" | "F8_E5M2" | "F8_E8M0", Float32Array> | undefined;

/** Decoding tables for the three 8-bit float formats (OCP FP8 E4M3FN, E5M2, E8M0). */
function fp8(): Record<"F8_E4M3" | "F8_E5M2" | "F8_E8M0", Float32Array> {
  if (fp8Tables) return fp8Tables;
  const e4m3 = new Float32Array(256), e5m2 = new Float32Array(256), e8m0 = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    const s = b & 0x80 ? -1 : 1;
    // E4M3FN: bias 7, no infinities, S.1111.111 is NaN.
    {
      const e = (b >> 3) & 0xf, m = b & 7;
      e4m3[b] = e === 15 && m === 7
        ? NaN
        : s * (e === 0 ? (m / 8) * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7));
    }
    // E5M2: IEEE-like, bias 15.
    {
      const e = (b >> 2) & 0x1f, m = b & 3;
      e5m2[b] = e === 31
        ? (m === 0 ? s * Infinity : NaN)
        : s * (e === 0 ? (m / 4) * 2 ** -14 : (1 + m / 4) * 2 ** (e - 15));
    }
    // E8M0: unsigned power of two, 0xFF is NaN.
    e8m0[b] = b === 255 ? NaN : 2 ** (b - 127);
  }
  fp8Tables = { F8_E4M3: e4m3, F8_E5M2: e5m2, F8_E8M0: e8m0 };
  return fp8Tables;
}

/** Converts little-endian float bytes to the compute dtype. `bytes` owns a fresh buffer. */
function convertFloat(
  dtype: SafetensorsDtype,
  bytes: Uint8Array<ArrayBuffer>,
  n: number,
  target: ComputeDtype,
): Float32Array<ArrayBuffer> | Float16Array<ArrayBuffer> {
  const buf = bytes.buffer;
  if (dtype === "F16") {
    const h = new Float16Array(buf, 0, n);
    if (target === "f16") return h;
    const out = new Float32Array(n);
    out.set(h);
    return out;
  }
  let f: Float32Array<ArrayBuffer>;
  switch (dtype) {
    case "F32":
      f = new Float32Array(buf, 0, n);
      break;
    case "BF16": {
      const u16 = new Uint16Array(buf, 0, n);
      const u32 = new Uint32Array(n);
      for (let i = 0; i < n; i++) u32[i] = u16[i] << 16;
      f = new Float32Array(u32.buffer);
      break;
    }
    case "F64": {
      f = new Float32Array(n);
      f.set(new Float64Array(buf, 0, n));
      break;
    }
    case "F8_E4M3":
    case "F8_E5M2":
    case "F8_E8M0": {
      const t = fp8()[dtype];
      f = new Float32Array(n);
      for (let i = 0; i < n; i++) f[i] = t[bytes[i]];
      break;
    }
    default:
      throw new Error(`unreachable: ${dtype}`);
  }
  if (target === "f32") return f;
  const h = new Float16Array(n);
  h.set(f);
  return h;
}

/**
 * Opens a safetensors checkpoint for tensor-by-tensor reading.
 *
 * `path` may be a `.safetensors` file, a sharded checkpoint's `*.safetensors.index.json`, or a
 * folder holding `model.safetensors` or `model.safetensors.index.json`. All headers are read
 * and validated up front; tensor data is only read on request. Shard names in an index must be
 * plain relative paths that resolve (after symlinks) inside the model folder, or inside the
 * Hugging Face cache `blobs/` folder when the model folder is a cache snapshot.
 *
 * Close the reader (`using`, or `close()`) to release the file handles.
 *
 * @example
 * ```ts
 * import { openSafetensors } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * using st = await openSafetensors("tests/fixtures/safetensors/python.safetensors");
 * assert.deepEqual(st.metadata, { format: "pt" });
 * const { dtype, shape } = st.info("bf16.matrix");
 * assert.deepEqual([dtype, shape], ["BF16", [7, 3]]);
 * const w = await st.readFloat("bf16.matrix"); // Float32Array, converted from BF16
 * const half = await st.readFloat("bf16.matrix", { dtype: "f16" }); // Float16Array
 * assert.equal(w.length, 21);
 * assert.ok(half instanceof Float16Array);
 * const ids = await st.read("i64.ids"); // integers keep their type
 * assert.ok(ids.data instanceof BigInt64Array);
 * assert.equal(ids.data[3], 32127n);
 * ```
 */
export async function openSafetensors(
  path: string,
  options: OpenSafetensorsOptions = {},
): Promise<SafetensorsReader> {
  const maxHeaderBytes = options.maxHeaderBytes ?? MAX_HEADER_BYTES;
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch (e) {
    throw new SafetensorsError(path, `cannot open: ${describeIoError(e)}`, undefined, {
      cause: e,
    });
  }
  if (stat.isDirectory) {
    for (const candidate of ["model.safetensors", "model.safetensors.index.json"]) {
      const p = join(path, candidate);
      let found = true;
      try {
        await Deno.lstat(p);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw fileError(p, e);
        found = false;
      }
      if (found) return await openSafetensors(p, options);
    }
    throw new SafetensorsError(
      path,
      "the folder has neither model.safetensors nor model.safetensors.index.json",
    );
  }
  if (!stat.isFile) {
    try {
      await checkRegularFile(path);
    } catch (e) {
      throw fileError(path, e);
    }
  }
  if (path.endsWith(".json")) return await openIndex(path, maxHeaderBytes);
  const { file, header } = await openOne(path, maxHeaderBytes);
  const entries = new Map<string, Entry>();
  for (const info of header.tensors) entries.set(info.name, { info, file });
  return new Reader(path, [file], entries, header.metadata);
}

async function openIndex(index: string, maxHeaderBytes: number): Promise<SafetensorsReader> {
  let text: string;
  try {
    text = await readTextFileChecked(index, { maxBytes: MAX_INDEX_BYTES });
  } catch (e) {
    throw fileError(index, e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(index, `the index is not valid JSON (${errMsg(e)})`);
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new SafetensorsError(
      index,
      `the index must be an object with a "weight_map" object (tensor name → shard file), ` +
        `got weight_map ${q(weightMap)}`,
    );
  }
  const map = weightMap as Record<string, unknown>;
  const shardNames: string[] = [];
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== "string") {
      throw new SafetensorsError(index, `weight_map value ${q(shard)} is not a file name`, tensor);
    }
    checkRelativeName(index, shard, `shard name (for tensor ${q(tensor)})`);
    if (!shardNames.includes(shard)) shardNames.push(shard);
  }
  const folder = dirname(index);
  const roots = await allowedRoots(folder);
  const opened = new Map<string, { file: OpenFile; header: ParsedHeader }>();
  try {
    for (const shard of shardNames) {
      const p = join(folder, shard);
      let real: string;
      try {
        real = await Deno.realPath(p);
      } catch (e) {
        throw new SafetensorsError(
          index,
          `shard ${q(shard)} cannot be opened (${describeIoError(e)})`,
          undefined,
          { cause: e },
        );
      }
      if (!roots.some((r) => inside(r, real))) {
        throw new SafetensorsError(
          index,
          `shard ${q(shard)} resolves to ${q(real)}, outside the model folder ${q(roots[0])}; ` +
            "refusing to read it",
        );
      }
      opened.set(shard, await openOne(p, maxHeaderBytes));
    }
    // What the shards hold, not only what the index lists: transformers loads every tensor of
    // every shard (an lm_head.weight the index forgot is still used).
    const holder = new Map<string, string>();
    const infos = new Map<string, SafetensorsTensorInfo>();
    for (const shard of shardNames) {
      for (const t of opened.get(shard)!.header.tensors) {
        infos.set(t.name, t);
        const other = holder.get(t.name);
        if (other !== undefined) {
          throw new SafetensorsError(
            index,
            `shards ${q(other)} and ${q(shard)} both hold it; a checkpoint holds each tensor once`,
            t.name,
          );
        }
        holder.set(t.name, shard);
      }
    }
    for (const [tensor, shard] of Object.entries(map) as [string, string][]) {
      const held = holder.get(tensor);
      if (held !== shard) {
        throw new SafetensorsError(
          index,
          held === undefined
            ? `the index puts it in ${q(shard)}, but that shard has no such tensor`
            : `the index puts it in ${q(shard)}, but shard ${q(held)} holds it: the index and ` +
              "the shards disagree",
          tensor,
        );
      }
    }
    const entries = new Map<string, Entry>();
    const add = (name: string, shard: string) => {
      if (entries.has(name)) return;
      entries.set(name, { info: infos.get(name)!, file: opened.get(shard)!.file });
    };
    for (const tensor of Object.keys(map)) add(tensor, holder.get(tensor)!);
    for (const [tensor, shard] of holder) add(tensor, shard);
    const metadata: Record<string, string> = {};
    for (const { header } of opened.values()) {
      for (const [k, v] of Object.entries(header.metadata)) setOwn(metadata, k, v);
    }
    return new Reader(index, [...opened.values()].map((o) => o.file), entries, metadata);
  } catch (e) {
    for (const { file } of opened.values()) file.close();
    throw e;
  }
}

/** One tensor to write: its data as raw little-endian elements. */
export interface TensorToWrite {
  /**
   * Element type. Optional for typed arrays whose type implies it (Float32Array → F32,
   * Float16Array → F16, Float64Array → F64, Int32Array → I32, BigInt64Array → I64, ...; a
   * Uint8Array means U8). BF16, BOOL and the FP8 types must be named, with raw bits in the
   * data (BF16 as a Uint16Array, for example).
   */
  dtype?: SafetensorsDtype;
  /** Dimensions (`[]` for a scalar). */
  shape: readonly number[];
  /** The elements; its byte length must be numel × dtype size. */
  data: ArrayBufferView;
}

/**
 * Options of {@link writeSafetensors}.
 */
export interface WriteSafetensorsOptions {
  /** String key/value pairs stored as `__metadata__` (for example `{ format: "pt" }`). */
  metadata?: Record<string, string>;
}

function impliedDtype(data: ArrayBufferView): SafetensorsDtype | undefined {
  if (data instanceof Float32Array) return "F32";
  if (data instanceof Float16Array) return "F16";
  if (data instanceof Float64Array) return "F64";
  for (const [dtype, TypedArray] of INT_ARRAYS) {
    if (dtype !== "BOOL" && data instanceof TypedArray) return dtype;
  }
  return undefined;
}

const utf8 = new TextEncoder();

function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const x = utf8.encode(a), y = utf8.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/**
 * Builds the header bytes (length prefix + padded JSON) and the ordered tensor list. Tensors are
 * laid out like Python `safetensors`: by dtype (largest first, in the Rust enum order), then by
 * name, so that every tensor starts at an offset aligned to its element size.
 */
function planFile(
  path: string,
  tensors: Record<string, TensorToWrite> | Iterable<[string, TensorToWrite]>,
  metadata: Record<string, string> | undefined,
): { header: Uint8Array; order: { name: string; bytes: Uint8Array }[] } {
  const list: { name: string; dtype: SafetensorsDtype; shape: number[]; bytes: Uint8Array }[] = [];
  const seen = new Set<string>();
  const iter = Symbol.iterator in tensors
    ? tensors as Iterable<[string, TensorToWrite]>
    : Object.entries(tensors as Record<string, TensorToWrite>);
  for (const [name, t] of iter) {
    if (name === "__metadata__") {
      throw new SafetensorsError(path, `"__metadata__" is reserved and cannot name a tensor`);
    }
    if (seen.has(name)) throw new SafetensorsError(path, "is given twice", name);
    seen.add(name);
    if (!t || !ArrayBuffer.isView(t.data)) {
      throw new SafetensorsError(path, "data must be a typed array or DataView", name);
    }
    const dtype = t.dtype ?? impliedDtype(t.data);
    if (dtype === undefined || !DTYPE_RANK.has(dtype)) {
      throw new SafetensorsError(
        path,
        t.dtype === undefined
          ? `no dtype given and none implied by ${t.data.constructor.name}`
          : `unknown dtype ${q(t.dtype)} (known: ${SAFETENSORS_DTYPES.join(", ")})`,
        name,
      );
    }
    const shape = [...t.shape];
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(
        path,
        `shape ${q(shape)} must be an array of non-negative integers`,
        name,
      );
    }
    const numel = shape.reduce((a, b) => a * b, 1);
    const bits = numel * DTYPE_BITS[dtype];
    if (bits % 8 !== 0 || bits / 8 !== t.data.byteLength) {
      throw new SafetensorsError(
        path,
        `data has ${t.data.byteLength} bytes (${t.data.constructor.name}), but dtype ${dtype} ` +
          `with shape [${shape.join(", ")}] needs ${bits / 8} bytes`,
        name,
      );
    }
    list.push({
      name,
      dtype,
      shape,
      bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    });
  }
  list.sort((a, b) =>
    (DTYPE_RANK.get(b.dtype)! - DTYPE_RANK.get(a.dtype)!) || compareUtf8(a.name, b.name)
  );
  // Serialized by hand: a JS object would move integer-like names ("0", "12") to the front.
  const parts: string[] = [];
  if (metadata !== undefined) {
    const kv: string[] = [];
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new SafetensorsError(
          path,
          `metadata value for ${q(k)} must be a string, got ${q(v)}`,
        );
      }
      kv.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
    }
    parts.push(`"__metadata__":{${kv.join(",")}}`);
  }
  let offset = 0;
  for (const t of list) {
    const end = offset + t.bytes.byteLength;
    parts.push(
      `${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(",")}],` +
        `"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = utf8.encode(`{${parts.join(",")}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return { header: out, order: list };
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    done += await file.write(
      bytes.subarray(done, done + Math.min(bytes.length - done, MAX_READ_CHUNK)),
    );
  }
}

/**
 * Writes tensors to a `.safetensors` file that Python `safetensors` (and this module) reads.
 *
 * The layout matches `safetensors.torch.save_file`: header JSON padded with spaces to a multiple
 * of 8 bytes, tensors sorted by dtype (largest element first) then name, data in header order.
 * The file is written to a temporary sibling, flushed to disk and renamed into place, so a crash
 * never leaves a truncated file at `path`.
 *
 * @example
 * ```ts
 * import { openSafetensors, writeSafetensors } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/prompt.safetensors`;
 * await writeSafetensors(path, {
 *   "prompt.embeddings": { shape: [20, 512], data: new Float32Array(20 * 512).fill(0.5) },
 *   "step": { dtype: "I64", shape: [], data: new BigInt64Array([1000n]) },
 *   "bf16": { dtype: "BF16", shape: [2], data: Uint16Array.of(0x3f80, 0x4000) }, // 1, 2
 * }, { metadata: { format: "pt" } });
 * using st = await openSafetensors(path);
 * assert.equal((await st.readFloat("prompt.embeddings"))[0], 0.5);
 * assert.deepEqual(await st.readFloat("bf16"), Float32Array.of(1, 2));
 * assert.equal((await st.read("step")).data[0], 1000n);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite> | Iterable<[string, TensorToWrite]>,
  options: WriteSafetensorsOptions = {},
): Promise<void> {
  const { header, order } = planFile(path, tensors, options.metadata);
  const tmp = join(
    dirname(path),
    `.${basename(path)}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`,
  );
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true });
    await writeAll(file, header);
    for (const t of order) await writeAll(file, t.bytes);
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (e) {
    if (file) {
      try {
        file.close();
      } catch { /* closed */ }
    }
    await Deno.remove(tmp).catch(() => {});
    throw new SafetensorsError(path, `writing failed: ${errMsg(e)}`, undefined, { cause: e });
  }
}
