/**
 * Writing files so that a crash at any moment leaves either the old file or the new one, never a
 * torn mix: write a temporary file beside the target, flush it to the disk, then rename it over
 * the target (atomic on POSIX file systems), and flush the folder's entry.
 *
 * Reading files the loaders trust no further than they must: {@link checkRegularFile} refuses
 * anything that is not a regular file (or a symlink to one) before it is opened, since opening a
 * named pipe blocks until a writer comes and a device may never end; {@link readTextFileChecked}
 * also refuses a text file too large for one JavaScript string and names the line and byte of
 * invalid UTF-8. Both raise a {@link FileReadError}, which each loader rewraps in its own named
 * error.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

/** Options of {@link writeFileAtomic}. */
export interface WriteAtomicOptions {
  /** Flush the data (and the folder entry) to the disk before returning. @default {true} */
  fsync?: boolean;
}

/**
 * Writes `data` to `path` atomically: a temporary file in the same folder, fsync, rename.
 * Creates the folder when missing.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/run/summary.json`, '{"ok": true}'); // creates run/
 * assert.equal(await Deno.readTextFile(`${dir}/run/summary.json`), '{"ok": true}');
 * assert.deepEqual([...Deno.readDirSync(`${dir}/run`)].map((e) => e.name), ["summary.json"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteAtomicOptions = {},
): Promise<void> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true });
    let off = 0;
    while (off < bytes.length) off += await file.write(bytes.subarray(off));
    if (options.fsync ?? true) await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (e) {
    try {
      file?.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  if (options.fsync ?? true) await syncDir(dir);
}

/** Flushes a folder's entries (a rename's durability); a no-op where folders cannot be opened. */
export async function syncDir(dir: string): Promise<void> {
  let d: Deno.FsFile | undefined;
  try {
    d = await Deno.open(dir, { read: true });
    await d.sync();
  } catch {
    // Some platforms (Windows) cannot open a folder: the rename is as durable as they allow.
  } finally {
    try {
      d?.close();
    } catch { /* closed */ }
  }
}

/**
 * The longest string V8 can hold, in UTF-16 code units (2^29 - 24). A text file of more bytes
 * may not fit in one string (UTF-8 never takes fewer bytes than UTF-16 code units), so the
 * readers refuse it as too large rather than fail inside the decoder.
 */
export const MAX_STRING_LENGTH = 536_870_888;

/** Why a file could not be read: the kinds {@link FileReadError} distinguishes. */
export type FileReadProblem = "missing" | "not_regular" | "too_large" | "not_utf8" | "unreadable";

/**
 * A file that cannot be read as asked: missing, not a regular file, too large, not UTF-8, or
 * unreadable. The message says which in words (without the path: each loader puts the path in
 * front, in its own error class).
 *
 * @example
 * ```ts
 * import { FileReadError, readTextFileChecked } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await assert.rejects(
 *   readTextFileChecked(dir),
 *   (e) => e instanceof FileReadError && e.problem === "not_regular" && /folder/.test(e.message),
 * );
 * await Deno.remove(dir);
 * ```
 */
export class FileReadError extends Error {
  /** The path that was to be read. */
  readonly path: string;
  /** What is wrong with it. */
  readonly problem: FileReadProblem;
  /** The 1-based line of the first invalid UTF-8 byte, for `"not_utf8"`. */
  readonly line?: number;
  /** A problem with `path`; `message` says what, without the path. */
  constructor(
    path: string,
    problem: FileReadProblem,
    message: string,
    options?: ErrorOptions & { line?: number },
  ) {
    super(message, options);
    this.name = "FileReadError";
    this.path = path;
    this.problem = problem;
    this.line = options?.line;
  }
}

/** What a path that is not a regular file is, in words. */
function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a folder";
  if (info.isFifo) return "a named pipe (FIFO)";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "not a regular file";
}

/**
 * Checks that `path` is a regular file (a symlink is followed) without opening it, and returns
 * its stat. Opening a named pipe would block until something writes to it, and reading a device
 * such as `/dev/zero` never ends, so the loaders call this before they open anything.
 *
 * @param path The file.
 * @returns Its `Deno.FileInfo` (size, times).
 * @throws {FileReadError} `"missing"`, `"not_regular"` (a folder, a named pipe, a device, a
 *   socket) or `"unreadable"`.
 *
 * @example
 * ```ts
 * import { checkRegularFile } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const info = await checkRegularFile("deno.json");
 * assert.ok(info.size > 0);
 * await assert.rejects(checkRegularFile("/dev/null"), /character device/);
 * ```
 */
export async function checkRegularFile(path: string): Promise<Deno.FileInfo> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new FileReadError(path, "missing", "does not exist", { cause: e });
    }
    throw new FileReadError(path, "unreadable", `cannot be read (${describeIoError(e)})`, {
      cause: e,
    });
  }
  if (!info.isFile) {
    throw new FileReadError(path, "not_regular", `is ${kindOf(info)}, not a regular file`);
  }
  return info;
}

/**
 * Opens a regular file for reading, after {@link checkRegularFile} (so a named pipe is refused
 * instead of blocking the open).
 *
 * @param path The file.
 * @returns The open file; close it.
 * @throws {FileReadError} When it is missing, not a regular file or cannot be opened.
 *
 * @example
 * ```ts
 * import { openRegularFile } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * using f = await openRegularFile("deno.json");
 * assert.ok((await f.stat()).size > 0);
 * ```
 */
export async function openRegularFile(path: string): Promise<Deno.FsFile> {
  await checkRegularFile(path);
  try {
    return await Deno.open(path, { read: true });
  } catch (e) {
    throw new FileReadError(path, "unreadable", `cannot be opened (${describeIoError(e)})`, {
      cause: e,
    });
  }
}

/** An I/O error in words: the OS's message without Deno's call details. */
export function describeIoError(e: unknown): string {
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.NotFound) return "no such file";
  if (e instanceof Deno.errors.IsADirectory) return "it is a folder";
  const m = e instanceof Error ? e.message : String(e);
  // "Permission denied (os error 13): open '/x'" -> "Permission denied (os error 13)"
  return m.replace(/:\s*(open|readfile|stat|read)\s+'.*$/s, "");
}

/**
 * Options of {@link readFileChecked} and {@link readTextFileChecked}.
 */
export interface ReadCheckedOptions {
  /**
   * The largest file accepted, in bytes.
   * @default {no limit for bytes; MAX_STRING_LENGTH for text}
   */
  maxBytes?: number;
}

/**
 * Reads a whole regular file, refusing anything else (see {@link checkRegularFile}) and files
 * above `maxBytes`.
 *
 * @param path The file.
 * @param options The size limit.
 * @returns The bytes.
 * @throws {FileReadError} When it is missing, not a regular file, too large or unreadable.
 *
 * @example
 * ```ts
 * import { readFileChecked } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.ok((await readFileChecked("deno.json")).length > 0);
 * await assert.rejects(readFileChecked("deno.json", { maxBytes: 4 }), /too large/);
 * ```
 */
export async function readFileChecked(
  path: string,
  options: ReadCheckedOptions = {},
): Promise<Uint8Array<ArrayBuffer>> {
  const info = await checkRegularFile(path);
  const max = options.maxBytes ?? Infinity;
  if (info.size > max) {
    throw new FileReadError(
      path,
      "too_large",
      `is too large: ${info.size} bytes, above the limit of ${max} bytes`,
    );
  }
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new FileReadError(path, "unreadable", `cannot be read (${describeIoError(e)})`, {
      cause: e,
    });
  }
}

/**
 * Reads a regular file as UTF-8 text (a leading byte-order mark is dropped). Refuses a file
 * longer than one JavaScript string can be ({@link MAX_STRING_LENGTH} bytes, or `maxBytes`) and
 * names the line and byte offset of the first invalid UTF-8 sequence.
 *
 * @param path The file.
 * @param options The size limit.
 * @returns The text.
 * @throws {FileReadError} When it is missing, not a regular file, too large, not UTF-8 or
 *   unreadable.
 *
 * @example
 * ```ts
 * import { FileReadError, readTextFileChecked } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/a.txt`, Uint8Array.of(0x6f, 0x6b, 0x0a, 0xff));
 * await assert.rejects(readTextFileChecked(`${dir}/a.txt`), (e) => {
 *   assert.ok(e instanceof FileReadError);
 *   assert.equal(e.message, "is not valid UTF-8: line 2, byte offset 3");
 *   return true;
 * });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readTextFileChecked(
  path: string,
  options: ReadCheckedOptions = {},
): Promise<string> {
  const max = Math.min(options.maxBytes ?? MAX_STRING_LENGTH, MAX_STRING_LENGTH);
  let bytes: Uint8Array;
  try {
    bytes = await readFileChecked(path, { maxBytes: max });
  } catch (e) {
    if (e instanceof FileReadError && e.problem === "too_large") {
      const size = (await Deno.stat(path)).size;
      throw new FileReadError(
        path,
        "too_large",
        max === MAX_STRING_LENGTH
          ? `is too large to read as text: ${size} bytes, above the ${MAX_STRING_LENGTH} ` +
            "bytes one JavaScript string can hold; split it into smaller files"
          : `is too large: ${size} bytes, above the limit of ${max} bytes`,
      );
    }
    throw e;
  }
  return decodeUtf8(path, bytes);
}

/**
 * Decodes UTF-8 bytes (a leading byte-order mark dropped), or throws a {@link FileReadError}
 * naming the line and byte offset of the first invalid sequence.
 *
 * @param path The file the bytes come from, for the error.
 * @param bytes The bytes.
 * @param startLine The line the bytes start on (when they are a piece of a longer file).
 * @param startOffset The byte offset they start at.
 * @returns The text.
 */
export function decodeUtf8(
  path: string,
  bytes: Uint8Array,
  startLine = 1,
  startOffset = 0,
): string {
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return text.charCodeAt(0) === 0xfeff && startOffset === 0 ? text.slice(1) : text;
  } catch (e) {
    const bad = firstInvalidUtf8(bytes);
    let line = startLine;
    for (let i = 0; i < bad; i++) if (bytes[i] === 10) line++;
    throw new FileReadError(
      path,
      "not_utf8",
      `is not valid UTF-8: line ${line}, byte offset ${startOffset + bad}`,
      { cause: e, line },
    );
  }
}

/**
 * Offset of the first byte that does not start or continue a valid UTF-8 sequence (the bytes'
 * length when there is none). Overlong forms and surrogates count as invalid, as in
 * `TextDecoder`.
 *
 * @param b The bytes.
 * @returns The offset.
 *
 * @example
 * ```ts
 * import { firstInvalidUtf8 } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(firstInvalidUtf8(new TextEncoder().encode("héllo")), 6);
 * assert.equal(firstInvalidUtf8(Uint8Array.of(0x61, 0xc3)), 1); // a truncated sequence
 * ```
 */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    const n = c >= 0xc2 && c < 0xe0
      ? 1
      : c >= 0xe0 && c < 0xf0
      ? 2
      : c >= 0xf0 && c < 0xf5
      ? 3
      : -1;
    if (n < 0 || i + n >= b.length) return i;
    const c1 = b[i + 1];
    // The second byte's range depends on the first (no overlongs, no surrogates, <= U+10FFFF).
    const lo = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
    if (c1 < lo || c1 > hi) return i;
    for (let k = 2; k <= n; k++) if ((b[i + k] & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return b.length;
}
