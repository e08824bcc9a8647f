/**
 * Dev-only: do our tokenizer.json refusals agree with Rust `tokenizers`? Generates the fuzz
 * suite's malformed tokenizer files (tests/support/fuzz, the "tokenizer" kind), loads each with
 * `loadTokenizer`, has Python load each with `tokenizers.Tokenizer.from_str`
 * (tools/tokenizer_vs_rust.py), and prints every case where one accepts and the other refuses.
 *
 * ```sh
 * PYTHON=/path/to/venv/bin/python deno run -A tools/tokenizer_vs_rust.ts [count] [seed]
 * ```
 *
 * Expected disagreements, all refusals of ours that Rust does not make at load (README,
 * Reliability): ids of 2^31 and above, an empty vocabulary, and post-processor templates that
 * drop or repeat the sequence or add a token missing from the vocabulary (Rust fails on those
 * only when it encodes).
 *
 * @module
 */

import { join } from "node:path";
import { loadTokenizer } from "../src/data/tokenizer.ts";
import { Rng } from "../tests/numeric.ts";
import { KINDS } from "../tests/support/fuzz/kinds.ts";

const count = Number(Deno.args[0] ?? 500);
const seed = Number(Deno.args[1] ?? 1);
const dir = await Deno.makeTempDir({ prefix: "tokenizer_vs_rust_" });
try {
  const cases = await KINDS.tokenizer.cases(new Rng(seed), count);
  const ours: Record<string, { gen: string; verdict: string }> = {};
  for (let i = 0; i < cases.length; i++) {
    const sub = join(dir, String(i));
    await Deno.mkdir(sub);
    const path = await cases[i].write(sub);
    let verdict = "ok";
    try {
      await loadTokenizer(path);
    } catch (e) {
      verdict = (e as Error).message.replace(path, "tokenizer.json");
    }
    ours[i] = { gen: cases[i].gen, verdict };
  }
  await Deno.writeTextFile(join(dir, "ours.json"), JSON.stringify(ours));
  const python = Deno.env.get("PYTHON") ?? "python3";
  const script = new URL("./tokenizer_vs_rust.py", import.meta.url).pathname;
  const { code } = await new Deno.Command(python, {
    args: [script, dir],
    env: { RUST_BACKTRACE: "0" },
    stdout: "inherit",
    stderr: "null",
  }).output();
  Deno.exitCode = code;
} finally {
  await Deno.remove(dir, { recursive: true });
}
