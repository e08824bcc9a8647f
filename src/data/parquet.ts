/**
 * Parquet decoding with bounded work: the file's structure is checked before `hyparquet`
 * decodes a page of it, and the decoding runs in a worker that is stopped at a deadline.
 *
 * `hyparquet` trusts a file's page headers. A single flipped byte that drops a required field of
 * a `DataPageHeaderV2` (`repetition_levels_byte_length`) sets its read offset to `NaN`, after which
 * `DataView` reads byte 0 forever and the RLE decoder never advances: the event loop never runs
 * again (docs/notes/hyparquet-hang.md has the details and a reproducer). So, before decoding:
 *
 * - **the footer** is parsed by a strict Thrift compact-protocol reader (bounded lengths, depth
 *   and varints; every required field present and of its type), the schema tree must add up,
 *   and each row group's column chunks must match the schema's leaves, lie inside the file and
 *   add up to the file's row count;
 * - **every page header** of every column chunk is parsed the same way: known page type and
 *   encodings, non-negative sizes, the page inside its chunk, pages tiling the chunk exactly, at
 *   most {@link MAX_PAGE_BYTES} uncompressed, level lengths inside the page, and the pages' value
 *   and row counts equal to the chunk's and the row group's;
 * - **after decoding**, every row must have a value (possibly null) for every column read, and
 *   the number of rows must be the footer's.
 *
 * {@link decodeParquetInWorker} runs {@link decodeParquet} in a worker: a decoder bug these
 * checks miss costs at most the deadline, and a promise the library leaves rejected stays in the
 * worker instead of ending the process.
 *
 * @module
 */

import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";

/** The largest uncompressed page accepted (writers use about 1 MiB). */
export const MAX_PAGE_BYTES = 256 * 1024 * 1024;

/** The most rows one file may claim. */
export const MAX_PARQUET_ROWS = 1 << 27;

/** A problem with a parquet file, in words; `row` is 1-based when one row is at fault. */
export class ParquetProblem extends Error {
  /** The 1-based row at fault, if one is. */
  readonly row?: number;
  /** What is wrong with the file (the path is added by the caller). */
  constructor(message: string, row?: number) {
    super(message);
    this.name = "ParquetProblem";
    this.row = row;
  }
}

// ---------------------------------------------------------------------------------------------
// A strict Thrift compact-protocol reader

const T_TRUE = 1, T_FALSE = 2, T_BYTE = 3, T_I16 = 4, T_I32 = 5, T_I64 = 6, T_DOUBLE = 7;
const T_BINARY = 8, T_LIST = 9, T_SET = 10, T_MAP = 11, T_STRUCT = 12;
const MAX_DEPTH = 24;

/** A Thrift value as {@link readThriftStruct} decodes it (doubles are skipped, as 0). */
export type ThriftValue =
  | number
  | bigint
  | boolean
  | Uint8Array
  | ThriftValue[]
  | ThriftStruct;
type Value = ThriftValue;
/** A decoded struct field: its compact-protocol type and its value. */
export interface ThriftField {
  /** The compact-protocol type (5 = i32, 6 = i64, 8 = binary, 9 = list, 12 = struct, ...). */
  type: number;
  /** The value. */
  value: ThriftValue;
}
/** A decoded struct: field id → type and value. */
export type ThriftStruct = Map<number, ThriftField>;
type Struct = ThriftStruct;

/**
 * Decodes one Thrift compact-protocol struct from `bytes[start, end)` strictly: bounded lengths,
 * depth and varints. Used for the footer and the page headers; exported for the tests' mutators.
 *
 * @param bytes The bytes.
 * @param start Where the struct starts.
 * @param end Where the readable bytes end.
 * @returns The struct and the offset after it.
 * @throws {ParquetProblem} When the bytes are not a well-formed struct.
 */
export function readThriftStruct(
  bytes: Uint8Array,
  start: number,
  end: number,
): { struct: ThriftStruct; end: number } {
  const c = new Cursor(bytes, start, end);
  const struct = readStruct(c, 0, "the struct");
  return { struct, end: c.pos };
}

class Cursor {
  constructor(readonly bytes: Uint8Array, public pos: number, readonly end: number) {}

  byte(what: string): number {
    if (this.pos >= this.end) throw new ParquetProblem(`${what} ends before it is complete`);
    return this.bytes[this.pos++];
  }

  /** An unsigned LEB128 varint of at most 10 bytes, as a bigint. */
  varint(what: string): bigint {
    let result = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.byte(what);
      result |= BigInt(b & 0x7f) << BigInt(7 * i);
      if (!(b & 0x80)) return result;
    }
    throw new ParquetProblem(`${what} has a number longer than 10 bytes`);
  }

  zigzag(what: string): bigint {
    const v = this.varint(what);
    return (v >> 1n) ^ -(v & 1n);
  }

  /** A zigzag varint that must fit in 32 bits. */
  i32(what: string): number {
    const v = this.zigzag(what);
    if (v < -(2n ** 31n) || v >= 2n ** 31n) {
      throw new ParquetProblem(`${what} has a 32-bit field holding ${v}`);
    }
    return Number(v);
  }

  /** A length or count: a varint no larger than the bytes left (each element takes one). */
  size(what: string): number {
    const v = this.varint(what);
    if (v > BigInt(this.end - this.pos)) {
      throw new ParquetProblem(`${what} declares ${v} elements or bytes, more than remain`);
    }
    return Number(v);
  }
}

function readValue(c: Cursor, type: number, depth: number, what: string): Value {
  switch (type) {
    case T_TRUE:
      return true;
    case T_FALSE:
      return false;
    case T_BYTE:
      return c.byte(what);
    case T_I16:
    case T_I32:
      return c.i32(what);
    case T_I64:
      return c.zigzag(what);
    case T_DOUBLE: {
      if (c.pos + 8 > c.end) throw new ParquetProblem(`${what} ends inside a number`);
      c.pos += 8;
      return 0;
    }
    case T_BINARY: {
      const n = c.size(what);
      const v = c.bytes.subarray(c.pos, c.pos + n);
      c.pos += n;
      return v;
    }
    case T_LIST:
    case T_SET: {
      const head = c.byte(what);
      let n = head >> 4;
      if (n === 15) n = c.size(what);
      const elem = head & 0x0f;
      const out: Value[] = [];
      for (let i = 0; i < n; i++) {
        // Booleans in a list take one byte each.
        out.push(
          elem === T_TRUE || elem === T_FALSE
            ? c.byte(what) === 1
            : readValue(c, elem, depth + 1, what),
        );
      }
      return out;
    }
    case T_STRUCT:
      return readStruct(c, depth + 1, what);
    case T_MAP:
    default:
      throw new ParquetProblem(`${what} holds a field of an unknown or unexpected type (${type})`);
  }
}

function readStruct(c: Cursor, depth: number, what: string): Struct {
  if (depth > MAX_DEPTH) throw new ParquetProblem(`${what} is nested too deeply`);
  const s: Struct = new Map();
  let id = 0;
  for (;;) {
    const b = c.byte(what);
    const type = b & 0x0f;
    if (type === 0) return s;
    const delta = b >> 4;
    id = delta ? id + delta : c.i32(what);
    s.set(id, { type, value: readValue(c, type, depth, what) });
  }
}

/** Typed access to a decoded struct, naming `what` and the field in errors. */
class Fields {
  constructor(readonly s: Struct, readonly what: string) {}

  #get(id: number, name: string, types: number[], required: boolean): Value | undefined {
    const f = this.s.get(id);
    if (!f) {
      if (required) throw new ParquetProblem(`${this.what} has no ${name} (a required field)`);
      return undefined;
    }
    if (!types.includes(f.type)) {
      throw new ParquetProblem(`${this.what}: ${name} has the wrong type`);
    }
    return f.value;
  }

  int(id: number, name: string, min = 0, max = 2 ** 31 - 1): number {
    const v = this.#get(id, name, [T_I32, T_I16, T_BYTE], true) as number;
    if (v < min || v > max) {
      throw new ParquetProblem(
        `${this.what}: ${name} is ${v}, outside ${min}..${max}`,
      );
    }
    return v;
  }

  optInt(id: number, name: string): number | undefined {
    return this.s.has(id) ? this.int(id, name, -(2 ** 31)) : undefined;
  }

  long(id: number, name: string, required = true): number | undefined {
    const v = this.#get(id, name, [T_I64, T_I32], required);
    if (v === undefined) return undefined;
    const n = BigInt(v as bigint | number);
    if (n < 0n || n > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new ParquetProblem(`${this.what}: ${name} is ${n}, not a valid size or offset`);
    }
    return Number(n);
  }

  list(id: number, name: string, required = true): Value[] | undefined {
    return this.#get(id, name, [T_LIST, T_SET], required) as Value[] | undefined;
  }

  struct(id: number, name: string, required = true): Fields | undefined {
    const v = this.#get(id, name, [T_STRUCT], required);
    return v === undefined ? undefined : new Fields(v as Struct, `${this.what}: ${name}`);
  }

  text(id: number, name: string, required = true): string | undefined {
    const v = this.#get(id, name, [T_BINARY], required);
    if (v === undefined) return undefined;
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(v as Uint8Array);
    } catch {
      throw new ParquetProblem(`${this.what}: ${name} is not valid UTF-8`);
    }
  }
}

function structs(list: Value[], what: (i: number) => string): Fields[] {
  return list.map((v, i) => {
    if (!(v instanceof Map)) throw new ParquetProblem(`${what(i)} is not a structure`);
    return new Fields(v, what(i));
  });
}

// ---------------------------------------------------------------------------------------------
// The footer

const CODECS = ["UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"];
const PAGE_TYPES = ["DATA_PAGE", "INDEX_PAGE", "DICTIONARY_PAGE", "DATA_PAGE_V2"];
const MAX_ENCODING = 9; // BYTE_STREAM_SPLIT
const MAX_PHYSICAL_TYPE = 7; // FIXED_LEN_BYTE_ARRAY

interface Leaf {
  path: string[];
  type: number;
  maxRepetition: number;
}

interface ChunkCheck {
  column: string;
  leaf: Leaf;
  codec: string;
  start: number;
  end: number;
  numValues: number;
  groupRows: number;
  group: number;
  /** The 0-based index in the file of the row group's first row. */
  groupStart: number;
}

/** The schema's leaves, checking that the tree adds up (every element used exactly once). */
function schemaLeaves(schema: Fields[]): { leaves: Leaf[]; topNames: string[] } {
  if (schema.length === 0) throw new ParquetProblem("the footer's schema is empty");
  const leaves: Leaf[] = [];
  const topNames: string[] = [];
  let next = 0;
  const walk = (path: string[], repetition: number, depth: number): void => {
    if (depth > MAX_DEPTH) throw new ParquetProblem("the footer's schema is nested too deeply");
    const i = next++;
    if (i >= schema.length) {
      throw new ParquetProblem(
        "the footer's schema promises more elements than it has (a wrong num_children)",
      );
    }
    const e = schema[i];
    const name = i === 0 ? "" : e.text(4, "name")!;
    const rep = e.optInt(3, "repetition_type");
    if (rep !== undefined && (rep < 0 || rep > 2)) {
      throw new ParquetProblem(`${e.what}: repetition_type ${rep} is unknown`);
    }
    const here = i === 0 ? [] : [...path, name];
    const level = repetition + (rep === 2 ? 1 : 0);
    const children = e.optInt(5, "num_children");
    const type = e.optInt(1, "type");
    if (i === 0 || (children !== undefined && children > 0)) {
      if (children === undefined || children < 0 || children > schema.length) {
        throw new ParquetProblem(`${e.what}: num_children ${children} is not valid`);
      }
      for (let k = 0; k < children; k++) {
        if (i === 0) topNames.push(schema[next]?.text(4, "name") ?? "");
        walk(here, level, depth + 1);
      }
      return;
    }
    if (type === undefined || type < 0 || type > MAX_PHYSICAL_TYPE) {
      throw new ParquetProblem(
        `${e.what} (column ${JSON.stringify(here.join("."))}) has no valid type`,
      );
    }
    leaves.push({ path: here, type, maxRepetition: level });
  };
  walk([], 0, 0);
  if (next !== schema.length) {
    throw new ParquetProblem(
      `the footer's schema has ${schema.length} elements, but its tree uses ${next} ` +
        "(a wrong num_children)",
    );
  }
  return { leaves, topNames };
}

/** Parses and checks the footer; returns the column chunks to walk and the top-level names. */
function checkFooter(bytes: Uint8Array): {
  chunks: ChunkCheck[];
  topNames: string[];
  numRows: number;
} {
  const n = bytes.length;
  const magic = (at: number) =>
    bytes[at] === 0x50 && bytes[at + 1] === 0x41 && bytes[at + 2] === 0x52 &&
    bytes[at + 3] === 0x31;
  if (n < 12 || !magic(0) || !magic(n - 4)) {
    throw new ParquetProblem(
      n < 12
        ? `is ${n} bytes long, too short for a parquet file`
        : 'is not a parquet file (it does not start and end with "PAR1")',
    );
  }
  const footerLen = new DataView(bytes.buffer, bytes.byteOffset + n - 8, 4).getUint32(0, true);
  if (footerLen > n - 12) {
    throw new ParquetProblem(
      `declares a ${footerLen}-byte footer, longer than the file allows: the file is truncated ` +
        "or corrupt",
    );
  }
  const footerStart = n - 8 - footerLen;
  const c = new Cursor(bytes, footerStart, n - 8);
  const meta = new Fields(readStruct(c, 0, "the footer"), "the footer");
  const schema = structs(meta.list(2, "schema")!, (i) => `the footer's schema element ${i}`);
  const { leaves, topNames } = schemaLeaves(schema);
  const numRows = meta.long(3, "num_rows")!;
  if (numRows > MAX_PARQUET_ROWS) {
    throw new ParquetProblem(
      `the footer claims ${numRows} rows, more than the ${MAX_PARQUET_ROWS} this reader accepts`,
    );
  }
  const groups = structs(meta.list(4, "row_groups")!, (i) => `row group ${i}`);
  const chunks: ChunkCheck[] = [];
  let total = 0;
  groups.forEach((g, gi) => {
    const groupRows = g.long(3, "num_rows")!;
    total += groupRows;
    const cols = structs(g.list(1, "columns")!, (i) => `row group ${gi}, column chunk ${i}`);
    if (cols.length !== leaves.length) {
      throw new ParquetProblem(
        `row group ${gi} has ${cols.length} column chunks, but the schema has ${leaves.length} ` +
          "columns",
      );
    }
    cols.forEach((col, ci) => {
      const leaf = leaves[ci];
      const column = leaf.path.join(".");
      const md = col.struct(3, "meta_data");
      if (!md) {
        throw new ParquetProblem(`${col.what} (column ${JSON.stringify(column)}) has no meta_data`);
      }
      const type = md.int(1, "type", 0, MAX_PHYSICAL_TYPE);
      if (type !== leaf.type) {
        throw new ParquetProblem(
          `${md.what}: its type disagrees with the schema's for column ${JSON.stringify(column)}`,
        );
      }
      const path = md.list(3, "path_in_schema")!.map((p) => {
        if (!(p instanceof Uint8Array)) throw new ParquetProblem(`${md.what}: path_in_schema`);
        return new TextDecoder().decode(p);
      });
      if (path.join("\0") !== leaf.path.join("\0")) {
        throw new ParquetProblem(
          `${md.what}: path_in_schema ${JSON.stringify(path.join("."))} is not the schema's ` +
            `column ${JSON.stringify(column)}`,
        );
      }
      for (const e of md.list(2, "encodings")!) {
        if (typeof e !== "number" || e < 0 || e > MAX_ENCODING) {
          throw new ParquetProblem(`${md.what}: encodings lists an unknown encoding`);
        }
      }
      const codec = CODECS[md.int(4, "codec", 0, CODECS.length - 1)];
      const numValues = md.long(5, "num_values")!;
      const compressed = md.long(7, "total_compressed_size")!;
      md.long(6, "total_uncompressed_size");
      const dataOffset = md.long(9, "data_page_offset")!;
      const dictOffset = md.long(11, "dictionary_page_offset", false);
      // As hyparquet reads it: from the dictionary page when there is one before the data.
      const start = dictOffset && dictOffset < dataOffset ? dictOffset : dataOffset;
      const end = start + compressed;
      if (start < 4 || end > footerStart) {
        throw new ParquetProblem(
          `${md.what} (column ${JSON.stringify(column)}) claims bytes ${start} to ${end}, ` +
            `outside the file's data (4 to ${footerStart})`,
        );
      }
      chunks.push({
        column,
        leaf,
        codec,
        start,
        end,
        numValues,
        groupRows,
        group: gi,
        groupStart: total - groupRows,
      });
    });
  });
  if (total !== numRows) {
    throw new ParquetProblem(
      `the footer says ${numRows} rows, but its row groups hold ${total}`,
    );
  }
  return { chunks, topNames, numRows };
}

// ---------------------------------------------------------------------------------------------
// Page headers

/** Walks the page headers of one column chunk, checking each and the totals. */
function checkPages(bytes: Uint8Array, chunk: ChunkCheck): void {
  const where = `row group ${chunk.group}, column ${JSON.stringify(chunk.column)}`;
  let pos = chunk.start;
  let values = 0, rows = 0, page = 0, v2 = false;
  while (pos < chunk.end) {
    const what = `${where}, page ${page} (byte ${pos})`;
    const c = new Cursor(bytes, pos, chunk.end);
    const h = new Fields(readStruct(c, 0, `the header of ${what}`), `the header of ${what}`);
    const type = h.int(1, "type", 0, PAGE_TYPES.length - 1);
    const uncompressed = h.int(2, "uncompressed_page_size");
    const compressed = h.int(3, "compressed_page_size");
    if (c.pos + compressed > chunk.end) {
      throw new ParquetProblem(
        `${what}: its ${compressed} bytes go past the end of the column chunk (byte ${chunk.end})`,
      );
    }
    if (uncompressed > MAX_PAGE_BYTES) {
      throw new ParquetProblem(
        `${what}: its uncompressed size ${uncompressed} is above the limit of ${MAX_PAGE_BYTES}`,
      );
    }
    if (chunk.codec === "UNCOMPRESSED" && uncompressed !== compressed) {
      throw new ParquetProblem(
        `${what}: an uncompressed page of ${compressed} bytes claims ${uncompressed} bytes`,
      );
    }
    const name = PAGE_TYPES[type];
    if (name === "DICTIONARY_PAGE") {
      if (page !== 0) throw new ParquetProblem(`${what}: a dictionary page after the first page`);
      const d = h.struct(7, "dictionary_page_header")!;
      d.int(1, "num_values");
      d.int(2, "encoding", 0, MAX_ENCODING);
    } else if (name === "DATA_PAGE") {
      const d = h.struct(5, "data_page_header")!;
      const n = d.int(1, "num_values");
      d.int(2, "encoding", 0, MAX_ENCODING);
      d.int(3, "definition_level_encoding", 0, MAX_ENCODING);
      d.int(4, "repetition_level_encoding", 0, MAX_ENCODING);
      values += n;
      rows += n;
    } else if (name === "DATA_PAGE_V2") {
      v2 = true;
      const d = h.struct(8, "data_page_header_v2")!;
      const n = d.int(1, "num_values");
      const nulls = d.int(2, "num_nulls");
      const r = d.int(3, "num_rows");
      d.int(4, "encoding", 0, MAX_ENCODING);
      const def = d.int(5, "definition_levels_byte_length");
      const rep = d.int(6, "repetition_levels_byte_length");
      if (nulls > n || r > n) {
        throw new ParquetProblem(
          `${what}: ${nulls} nulls and ${r} rows in a page of ${n} values`,
        );
      }
      if (def + rep > compressed || def + rep > uncompressed) {
        throw new ParquetProblem(
          `${what}: its level data (${def} + ${rep} bytes) is larger than the page`,
        );
      }
      values += n;
      rows += r;
    }
    pos = c.pos + compressed;
    page++;
  }
  if (pos !== chunk.end) {
    throw new ParquetProblem(`${where}: its pages do not end where the column chunk ends`);
  }
  if (values !== chunk.numValues) {
    throw new ParquetProblem(
      `${where}: its pages hold ${values} values, but its metadata says ${chunk.numValues}`,
    );
  }
  const flat = chunk.leaf.maxRepetition === 0;
  if ((flat || v2) && rows < chunk.groupRows) {
    const first = chunk.groupStart + rows + 1, last = chunk.groupStart + chunk.groupRows;
    throw new ParquetProblem(
      `${first === last ? `row ${first}` : `rows ${first} to ${last}`} would have no value for ` +
        `column ${JSON.stringify(chunk.column)}: its pages in row group ${chunk.group} hold ` +
        `${rows} rows, but the row group has ${chunk.groupRows}`,
      first,
    );
  }
  if ((flat || v2) && rows > chunk.groupRows) {
    throw new ParquetProblem(
      `${where}: its pages hold ${rows} rows, but the row group has ${chunk.groupRows}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** What {@link decodeParquet} returns. */
export interface DecodedParquet {
  /** The file's top-level column names. */
  names: string[];
  /** The rows, or undefined when a requested column is not in the file (nothing decoded). */
  rows?: Record<string, unknown>[];
}

/**
 * Checks a parquet file's footer and page headers, then decodes it with `hyparquet`, and checks
 * that every row has a value for every column read. Runs in the calling thread: use
 * {@link decodeParquetInWorker} to bound the time a decoder bug may take.
 *
 * @param buffer The whole file.
 * @param columns The columns to decode (all when undefined).
 * @returns The column names and the rows (BigInt INT64s as `hyparquet` gives them).
 * @throws {ParquetProblem} Saying what is wrong with the file.
 */
export async function decodeParquet(
  buffer: ArrayBuffer,
  columns?: readonly string[],
): Promise<DecodedParquet> {
  const bytes = new Uint8Array(buffer);
  const { chunks, topNames, numRows } = checkFooter(bytes);
  if (columns?.some((c) => !topNames.includes(c))) return { names: topNames };
  const wanted = columns ?? topNames;
  for (const chunk of chunks) {
    if (wanted.includes(chunk.leaf.path[0])) checkPages(bytes, chunk);
  }
  let metadata;
  try {
    metadata = parquetMetadata(buffer);
  } catch (e) {
    throw new ParquetProblem(
      `the footer is corrupt (${libraryWords(e, "a field has the wrong type")})`,
    );
  }
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({
      file: buffer,
      metadata,
      compressors,
      columns: columns ? [...columns] : undefined,
    });
  } catch (e) {
    throw new ParquetProblem(
      `a page cannot be decoded: ${
        libraryWords(e, "its data is corrupt (the decoder read past it)")
      }`,
    );
  }
  if (rows.length !== numRows) {
    throw new ParquetProblem(`the footer says ${numRows} rows, but ${rows.length} were decoded`);
  }
  for (let i = 0; i < rows.length; i++) {
    for (const c of wanted) {
      if (rows[i][c] === undefined) {
        throw new ParquetProblem(
          `row ${i + 1} has no value for column ${JSON.stringify(c)} (its pages hold fewer ` +
            "values than the footer's row count: the file is corrupt)",
          i + 1,
        );
      }
    }
  }
  return { names: topNames, rows };
}

/**
 * A decoder's error in words: its own message when it threw one on purpose (hyparquet's
 * "parquet ...", fzstd's "unexpected EOF"), `fallback` for a JavaScript error from inside it
 * (`RangeError: Offset is outside the bounds of the DataView`, a TypeError), which says nothing
 * about the file.
 */
function libraryWords(e: unknown, fallback: string): string {
  const internal = e instanceof TypeError || e instanceof RangeError ||
    e instanceof ReferenceError || e instanceof SyntaxError || !(e instanceof Error);
  return internal ? fallback : (e as Error).message.replace(/^parquet /, "");
}

/** Options of {@link decodeParquetInWorker}. */
export interface WorkerDecodeOptions {
  /** Stop the worker after this many milliseconds. */
  timeoutMs: number;
  /** Skip the structure checks (tests: to show the deadline stops a decoder that hangs). */
  unchecked?: boolean;
  /** Leave a rejected promise behind in the worker (tests: to show it stays there). */
  strayRejection?: boolean;
}

/** A worker's reply. */
type Reply =
  | { ok: true; names: string[]; rows?: Record<string, unknown>[] }
  | { ok: false; message: string; row?: number };

/**
 * {@link decodeParquet} in a worker, stopped after `timeoutMs`: a decoder that never ends costs
 * the deadline, not the process, and a promise left rejected inside the library stays in the
 * worker. The buffer is transferred (it is unusable afterwards).
 *
 * @param buffer The whole file (transferred).
 * @param columns The columns to decode.
 * @param options The deadline.
 * @returns What {@link decodeParquet} returns.
 * @throws {ParquetProblem} When the file is refused, the worker fails or the deadline passes.
 */
export function decodeParquetInWorker(
  buffer: ArrayBuffer,
  columns: readonly string[] | undefined,
  options: WorkerDecodeOptions,
): Promise<DecodedParquet> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./parquet_worker.ts", import.meta.url).href, {
      type: "module",
    });
    const done = (f: () => void) => {
      clearTimeout(timer);
      worker.terminate();
      f();
    };
    const timer = setTimeout(
      () =>
        done(() =>
          reject(
            new ParquetProblem(
              `decoding did not finish within ${options.timeoutMs / 1000} s and was stopped: ` +
                "the file is corrupt in a way that sends the decoder into an endless loop, or " +
                "too large for the deadline",
            ),
          )
        ),
      options.timeoutMs,
    );
    worker.onmessage = (m: MessageEvent<Reply>) => {
      const r = m.data;
      done(() =>
        r.ok
          ? resolve({ names: r.names, rows: r.rows })
          : reject(new ParquetProblem(r.message, r.row))
      );
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      done(() => reject(new ParquetProblem(`the decoder failed: ${e.message}`)));
    };
    worker.postMessage({
      buffer,
      columns: columns ? [...columns] : undefined,
      unchecked: options.unchecked ?? false,
      strayRejection: options.strayRejection ?? false,
    }, [buffer]);
  });
}

/**
 * What the worker runs: {@link decodeParquet}, or for tests the decoding alone.
 *
 * @param buffer The file.
 * @param columns The columns.
 * @param unchecked Skip the structure checks.
 * @returns The decoded file.
 */
export async function decodeForWorker(
  buffer: ArrayBuffer,
  columns: string[] | undefined,
  unchecked: boolean,
): Promise<DecodedParquet> {
  if (!unchecked) return await decodeParquet(buffer, columns);
  const metadata = parquetMetadata(buffer);
  return {
    names: [],
    rows: await parquetReadObjects({ file: buffer, metadata, compressors, columns }),
  };
}
