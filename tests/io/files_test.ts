import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkRegularFile,
  decodeUtf8,
  FileReadError,
  firstInvalidUtf8,
  MAX_STRING_LENGTH,
  readFileChecked,
  readTextFileChecked,
} from "../../src/io/files.ts";
import { makeFifo, runSnippet } from "../support/subprocess.ts";
import { withTempDir } from "../support/temp.ts";

async function problem(p: Promise<unknown>): Promise<FileReadError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof FileReadError, `expected a FileReadError, got ${e}`);
    return e;
  }
  assert.fail("expected a FileReadError");
}

Deno.test("checkRegularFile() refuses folders, devices and named pipes without opening them, and follows symlinks to files", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "a.txt");
    await Deno.writeTextFile(file, "hi");
    await Deno.symlink(file, join(dir, "link"));
    assert.equal((await checkRegularFile(join(dir, "link"))).size, 2);
    let e = await problem(checkRegularFile(dir));
    assert.equal(e.problem, "not_regular");
    assert.equal(e.message, "is a folder, not a regular file");
    e = await problem(checkRegularFile("/dev/zero"));
    assert.equal(e.message, "is a character device, not a regular file");
    e = await problem(checkRegularFile(join(dir, "nope")));
    assert.equal(e.problem, "missing");
    if (await makeFifo(join(dir, "pipe"))) {
      await Deno.symlink(join(dir, "pipe"), join(dir, "pipe-link"));
      for (const p of ["pipe", "pipe-link"]) {
        e = await problem(checkRegularFile(join(dir, p)));
        assert.equal(e.message, "is a named pipe (FIFO), not a regular file");
      }
    }
  });
});

Deno.test("readTextFileChecked() on a named pipe returns an error instead of blocking (in a child with a deadline)", async () => {
  await withTempDir(async (dir) => {
    const pipe = join(dir, "pipe.json");
    if (!await makeFifo(pipe)) return;
    const r = await runSnippet(
      `import { readTextFileChecked } from "@root/src/io/files.ts";
       try { await readTextFileChecked(${JSON.stringify(pipe)}); console.log("read"); }
       catch (e) { console.log(e.name, e.message); }`,
      20_000,
    );
    assert.ok(!r.timedOut, "the read blocked on the named pipe");
    assert.equal(r.stdout.trim(), "FileReadError is a named pipe (FIFO), not a regular file");
  });
});

Deno.test("a text file longer than one JavaScript string is refused as too large, not as invalid UTF-8", async () => {
  await withTempDir(async (dir) => {
    const big = join(dir, "big.jsonl");
    await Deno.writeFile(big, new Uint8Array());
    await Deno.truncate(big, MAX_STRING_LENGTH + 1); // sparse: costs no disk
    const e = await problem(readTextFileChecked(big));
    assert.equal(e.problem, "too_large");
    assert.match(e.message, /is too large to read as text: 536870889 bytes/);
    const small = await problem(readFileChecked(big, { maxBytes: 1000 }));
    assert.match(small.message, /is too large: 536870889 bytes, above the limit of 1000 bytes/);
  });
});

Deno.test("invalid UTF-8 is reported with its line and byte offset; a BOM is dropped", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "t.txt");
    await Deno.writeFile(p, Uint8Array.of(0xef, 0xbb, 0xbf, 0x61, 0x0a, 0x62, 0x0a, 0xc3, 0x28));
    const e = await problem(readTextFileChecked(p));
    assert.equal(e.problem, "not_utf8");
    assert.equal(e.line, 3);
    assert.equal(e.message, "is not valid UTF-8: line 3, byte offset 7");
    await Deno.writeFile(p, Uint8Array.of(0xef, 0xbb, 0xbf, 0x61));
    assert.equal(await readTextFileChecked(p), "a");
  });
});

Deno.test("firstInvalidUtf8() agrees with TextDecoder on overlongs, surrogates and truncations", () => {
  const cases = [
    [0xc0, 0x80], // overlong NUL
    [0xe0, 0x80, 0x80], // overlong
    [0xed, 0xa0, 0x80], // a surrogate
    [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
    [0x61, 0xe2, 0x82], // truncated
    [0x61, 0xf0, 0x9f, 0x98, 0x80], // valid
  ];
  for (const c of cases) {
    const b = Uint8Array.from(c);
    let valid = true;
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(b);
    } catch {
      valid = false;
    }
    assert.equal(firstInvalidUtf8(b) === b.length, valid, `bytes ${c}`);
  }
  assert.throws(
    () => decodeUtf8("f", Uint8Array.of(0x0a, 0xff), 10, 100),
    /line 11, byte offset 101/,
  );
});
