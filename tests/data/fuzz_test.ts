// Seeded fuzzing of the files src/data reads (tests/support/fuzz/): every malformed parquet,
// JSONL/JSON/CSV/TSV, tokenizer.json, tokenized cache or task file, and every named pipe,
// device or folder given as one, gives either a correct result or a named error naming the file,
// in words, within a bounded time, in a child process that a hang or crash would fail.
import { runFuzz } from "../support/fuzz/run.ts";

Deno.test("fuzz: 250 malformed parquet files (byte flips, truncations, footer and page-header mutations)", async () => {
  await runFuzz("parquet", 301, 250, {
    errors: ["ParquetProblem", "DatasetError"],
    minOk: 20,
    minRefused: 120,
  });
});

Deno.test("fuzz: 200 malformed JSONL, JSON, CSV and TSV files", async () => {
  await runFuzz("text", 302, 200, { errors: ["DatasetError"], minOk: 20, minRefused: 100 });
});

Deno.test("fuzz: 200 malformed tokenizer.json files (structured mutations of T5, GPT-2 and Llama; charsmaps; byte flips)", async () => {
  await runFuzz("tokenizer", 303, 200, { errors: ["TokenizerError"], minOk: 15, minRefused: 120 });
});

Deno.test("fuzz: 150 corrupt tokenized caches (offsets, ids, lengths metadata, byte flips)", async () => {
  await runFuzz("cache", 304, 150, {
    errors: ["DatasetError", "SafetensorsError"],
    minOk: 10,
    minRefused: 100,
  });
});

Deno.test("fuzz: 80 malformed task files", async () => {
  await runFuzz("task", 305, 80, { errors: ["TaskError"], minOk: 5, minRefused: 40 });
});

Deno.test("fuzz: named pipes, devices, folders and symlinks given to every loader", async () => {
  await runFuzz("nonregular", 306, 37, {
    errors: ["SafetensorsError", "T5ConfigError", "TokenizerError", "DatasetError", "TaskError"],
    minOk: 5,
    minRefused: 30,
    fixed: true,
  });
});
