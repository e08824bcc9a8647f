/**
 * Writing files so that a crash at any moment leaves either the old file or the new one, never a
 * torn mix: write a temporary file beside the target, flush it to the disk, then rename it over
 * the target (atomic on POSIX file systems), and flush the folder's entry.
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
