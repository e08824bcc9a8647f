// Seeded fuzzing of config.json against its checkpoint (tests/support/fuzz/): every malformed or
// absurd config gives either the checkpoint's sizes or a named error naming the file and field,
// within a bounded time, in a child process that a hang or crash would fail.
import { runFuzz } from "../support/fuzz/run.ts";

Deno.test("fuzz: 200 malformed config.json files (field mutations, extreme sizes, byte flips, truncations)", async () => {
  await runFuzz("config", 201, 200, {
    errors: ["T5ConfigError", "T5WeightsError", "SafetensorsError"],
    minOk: 10,
    minRefused: 120,
    caseMs: 3_000,
  });
});
