// Seeded fuzzing of the files src/io reads (tests/support/fuzz/): every malformed safetensors
// file or sharded checkpoint gives either the right tensors or a SafetensorsError naming the
// file, in words, within a bounded time, in a child process that a hang or crash would fail.
import { runFuzz } from "../support/fuzz/run.ts";

Deno.test("fuzz: 250 malformed safetensors files (byte flips, truncations, header mutations, gaps, float literals)", async () => {
  await runFuzz("safetensors", 101, 250, {
    errors: ["SafetensorsError"],
    minOk: 10,
    minRefused: 150,
  });
});

Deno.test("fuzz: 80 malformed sharded checkpoints (index mutations, omitted and duplicated tensors, broken shards)", async () => {
  await runFuzz("shards", 102, 80, { errors: ["SafetensorsError"], minOk: 5, minRefused: 40 });
});
