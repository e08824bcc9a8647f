// Text data files: JSONL is read in pieces (lines and multi-byte characters across the pieces'
// boundaries), and JSON, CSV and TSV files too large for one string are refused as too large.
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatasetError, readTable, readTableLocated } from "../../src/data/datasets.ts";
import { MAX_STRING_LENGTH } from "../../src/io/files.ts";
import { withTempDir } from "../support/temp.ts";

Deno.test("JSONL larger than one read piece (16 MiB) gives every row, with its line, across the pieces' boundaries", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "train.jsonl");
    const rows = Array.from({ length: 60_000 }, (_, i) => ({
      text: `é${"x".repeat(i % 700)}ü ${i}`, // odd lengths put multi-byte characters on boundaries
      label: i % 3,
    }));
    const lines = rows.map((r, i) => (i % 1000 === 7 ? "\n" : "") + JSON.stringify(r));
    await Deno.writeTextFile(p, "\ufeff" + lines.join("\n"));
    assert.ok((await Deno.stat(p)).size > 17 * 2 ** 20);
    const { rows: got, positions } = await readTableLocated(p, { columns: ["text", "label"] });
    assert.equal(got.length, rows.length);
    assert.deepEqual(got[59_999], rows[59_999]);
    for (const i of [0, 7, 8, 30_000, 41_007, 59_999]) {
      assert.deepEqual(got[i], rows[i], `row ${i}`);
    }
    // One blank line before every 1000th row from row 7 on.
    assert.equal(positions[6], 7);
    assert.equal(positions[7], 9);
    assert.equal(positions[59_999], 60_000 + 60);
  });
});

Deno.test("JSON, CSV and TSV files longer than one JavaScript string are refused as too large, not as invalid UTF-8", async () => {
  await withTempDir(async (dir) => {
    for (const name of ["train.json", "train.csv", "train.tsv"]) {
      const p = join(dir, name);
      await Deno.writeFile(p, new Uint8Array());
      await Deno.truncate(p, MAX_STRING_LENGTH + 10); // sparse
      await assert.rejects(readTable(p), (e) => {
        assert.ok(e instanceof DatasetError);
        assert.equal(e.file, p);
        assert.match(e.message, /is too large to read as text: 536870898 bytes/);
        return true;
      });
    }
  });
});
