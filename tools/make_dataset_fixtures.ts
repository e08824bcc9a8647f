/**
 * Writes the small parquet fixtures of the dataset readers' tests. DEV-ONLY: the outputs are
 * committed under tests/fixtures/datasets/; this script is kept to regenerate and audit them.
 *
 *     deno run -A tools/make_dataset_fixtures.ts [--out tests/fixtures/datasets]
 *
 * Needs the `zstd` command (Debian package `zstd`) for real ZSTD pages: `hyparquet-writer` has
 * no ZSTD compressor of its own, and `hyparquet-compressors` only decompresses.
 *
 * Writes `rows_snappy.parquet` and `rows_zstd.parquet`: the same 23 rows in row groups of 10,
 * with columns `sentence` (STRING, hard cases: quotes, tabs, newlines, accents, CJK, emoji,
 * empty), `label` (INT64, some above 2^32), `idx` (INT32) and `score` (FLOAT); and `rows.json`,
 * the rows as JSON for the tests to compare with.
 *
 * @module
 */

import { parquetWriteBuffer } from "hyparquet-writer";
import { join } from "node:path";

const out = Deno.args[0] === "--out" && Deno.args[1] ? Deno.args[1] : "tests/fixtures/datasets";

const SENTENCES = [
  "hide new secretions from the parental units ",
  "contains no wit , only labored gags ",
  "that loves its characters and communicates something rather beautiful about human nature ",
  'the "quoted" word and an unbalanced " quote',
  "tab\tinside and a\nnewline",
  "Café naïve résumé — déjà vu",
  "漢字とひらがな、中文测试",
  "emoji 😀👍🏽 and a family 👨‍👩‍👧",
  "",
  "   leading and trailing spaces   ",
];

function rows() {
  const r = [];
  for (let i = 0; i < 23; i++) {
    r.push({
      sentence: `${SENTENCES[i % SENTENCES.length]}#${i}`,
      label: i % 3 === 0 ? 2 ** 40 + i : i % 2,
      idx: i,
      score: Math.fround(i * 0.2 + 0.05),
    });
  }
  return r;
}

/** A real ZSTD frame from the `zstd` command. */
function zstd(input: Uint8Array): Uint8Array {
  const tmp = Deno.makeTempFileSync();
  try {
    Deno.writeFileSync(tmp, input);
    const r = new Deno.Command("zstd", { args: ["-q", "-c", "-19", tmp] }).outputSync();
    if (!r.success) throw new Error(`zstd failed: ${new TextDecoder().decode(r.stderr)}`);
    return r.stdout;
  } finally {
    Deno.removeSync(tmp);
  }
}

const data = rows();
const columnData = [
  { name: "sentence", data: data.map((r) => r.sentence), type: "STRING" as const },
  {
    name: "label",
    data: BigInt64Array.from(data.map((r) => BigInt(r.label))),
    type: "INT64" as const,
  },
  { name: "idx", data: Int32Array.from(data.map((r) => r.idx)), type: "INT32" as const },
  { name: "score", data: Float32Array.from(data.map((r) => r.score)), type: "FLOAT" as const },
];
await Deno.mkdir(out, { recursive: true });
for (const codec of ["SNAPPY", "ZSTD"] as const) {
  const buf = parquetWriteBuffer({
    columnData,
    codec,
    compressors: { ZSTD: zstd },
    rowGroupSize: 10,
    statistics: false,
  });
  const path = join(out, `rows_${codec.toLowerCase()}.parquet`);
  await Deno.writeFile(path, new Uint8Array(buf));
  console.log(`${path}  ${buf.byteLength} bytes`);
}
await Deno.writeTextFile(join(out, "rows.json"), JSON.stringify(data, null, 1) + "\n");
console.log(`${join(out, "rows.json")}`);
