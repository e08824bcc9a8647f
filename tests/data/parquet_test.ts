// The parquet reader's bounds: page headers checked before hyparquet decodes (the file that hung
// it, docs/notes/hyparquet-hang.md), decoding in a worker stopped at a deadline, promises the
// library leaves rejected kept in the worker, rows missing a column's value refused by row.
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatasetError, readParquet } from "../../src/data/datasets.ts";
import { decodeParquet, ParquetProblem } from "../../src/data/parquet.ts";
import { runSnippet } from "../support/subprocess.ts";
import { withTempDir } from "../support/temp.ts";
import { encodeThriftStruct, parquetFooter, withParquetFooter } from "../support/thrift.ts";

const FIXTURES = new URL("../fixtures/datasets/", import.meta.url).pathname;

/** The reproducer of docs/notes/hyparquet-hang.md: 3 INT32 rows, one DATA_PAGE_V2. */
const MINI =
  "504152311506151c15205c150615001506150015041500000003070c2c0100000002000000030000001504" +
  "192c4804726f6f7415020015022502180178001606191c191c26081c150219150019180178150216061646" +
  "164a26083c360028040300000018040100000000191c15061500150200000016461606364a002809687970" +
  "617271756574191c1c0000006400000050415231";

function mini(): Uint8Array {
  return Uint8Array.from(MINI.match(/../g)!.map((h) => parseInt(h, 16)));
}

Deno.test("the page header that sent hyparquet into an endless loop is refused at once, by field (in a child)", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "hang.parquet");
    const bytes = mini();
    bytes[19] = 0; // ends DataPageHeaderV2 before its level lengths
    await Deno.writeFile(p, bytes);
    await Deno.writeFile(join(dir, "ok.parquet"), mini());
    const r = await runSnippet(
      `import { readParquet } from "@root/src/data/datasets.ts";
       console.log(JSON.stringify(await readParquet(${JSON.stringify(join(dir, "ok.parquet"))})));
       try { await readParquet(${JSON.stringify(p)}); console.log("read"); }
       catch (e) { console.log(e.name + ": " + e.message); }`,
      30_000,
    );
    assert.ok(!r.timedOut, "the reader hung");
    const [ok, refused] = r.stdout.trim().split("\n");
    assert.equal(ok, '[{"x":1},{"x":2},{"x":3}]');
    assert.equal(
      refused,
      `DatasetError: ${p} is not a readable parquet file: the header of row group 0, column "x", ` +
        "page 0 (byte 4): data_page_header_v2 has no definition_levels_byte_length (a required field)",
    );
  });
});

Deno.test("a decoder that never ends is stopped at the deadline, and a stray rejection stays in the worker (in a child)", async () => {
  const bytes = mini();
  bytes[19] = 0;
  const r = await runSnippet(
    `import { decodeParquetInWorker } from "@root/src/data/parquet.ts";
     const bad = Uint8Array.from(${JSON.stringify([...bytes])});
     const good = Uint8Array.from(${JSON.stringify([...mini()])});
     const t0 = performance.now();
     try { await decodeParquetInWorker(bad.buffer, undefined, { timeoutMs: 1500, unchecked: true }); }
     catch (e) { console.log(e.name + ": " + e.message, Math.round(performance.now() - t0)); }
     const d = await decodeParquetInWorker(good.buffer, undefined, { timeoutMs: 20000, strayRejection: true });
     await new Promise((r) => setTimeout(r, 200));
     console.log("alive", d.rows.length);
     // Deno 2.9 cannot stop a worker spinning in a loop (denoland/deno#35657): the thread keeps
     // running after terminate() and keeps the process from ending on its own.
     Deno.exit(0);`,
    60_000,
  );
  assert.ok(!r.timedOut, r.stdout + r.stderr);
  const [stopped, alive] = r.stdout.trim().split("\n");
  assert.match(
    stopped,
    /^ParquetProblem: decoding did not finish within 1\.5 s and was stopped: .* (\d+)$/,
  );
  assert.ok(Number(stopped.split(" ").at(-1)) < 10_000, stopped);
  assert.equal(alive, "alive 3");
  assert.equal(r.code, 0, r.stderr);
});

Deno.test("rows a corrupt footer would leave without a column's value are refused, naming file, column and row", async () => {
  const bytes = await Deno.readFile(join(FIXTURES, "rows_snappy.parquet"));
  const { struct, start } = parquetFooter(bytes);
  // One more row in the file and in its first row group than the pages hold.
  struct.get(3)!.value = (struct.get(3)!.value as bigint) + 1n;
  const group = (struct.get(4)!.value as Map<number, { value: unknown }>[])[0];
  group.get(3)!.value = (group.get(3)!.value as bigint) + 1n;
  const bad = withParquetFooter(bytes, start, encodeThriftStruct(struct));
  await withTempDir(async (dir) => {
    const p = join(dir, "train.parquet");
    await Deno.writeFile(p, bad);
    await assert.rejects(readParquet(p, { columns: ["sentence", "label"] }), (e) => {
      assert.ok(e instanceof DatasetError);
      assert.equal(e.file, p);
      assert.equal(e.line, 11);
      assert.equal(
        e.message,
        `${p}: row 11 would have no value for column "sentence": its pages in row group 0 hold ` +
          "10 rows, but the row group has 11",
      );
      return true;
    });
  });
  await assert.rejects(decodeParquet(bad.slice().buffer), ParquetProblem);
});

Deno.test("a parquet path that is a folder or a device is refused without being read", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(readParquet(dir), /is a folder, not a regular file/);
  });
  await assert.rejects(readParquet("/dev/zero"), /\/dev\/zero is a character device/);
});
