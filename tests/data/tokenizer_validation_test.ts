// tokenizer.json files Rust `tokenizers` refuses are refused at load, naming the file and the
// field; what Rust accepts still loads. The verdicts were checked with tokenizers 0.23.2
// (Tokenizer.from_str on the same JSON); the two refusals beyond Rust are marked.
import assert from "node:assert/strict";
import { join } from "node:path";
import { createTokenizer, loadTokenizer, TokenizerError } from "../../src/data/tokenizer.ts";
import { makeFifo, runSnippet } from "../support/subprocess.ts";
import { withTempDir } from "../support/temp.ts";

const FIXTURES = new URL("../fixtures/tokenizers/", import.meta.url).pathname;
const T5 = JSON.parse(await Deno.readTextFile(join(FIXTURES, "t5/tokenizer.json")));
const GPT2 = JSON.parse(await Deno.readTextFile(join(FIXTURES, "gpt2/tokenizer.json")));
const LLAMA = JSON.parse(await Deno.readTextFile(join(FIXTURES, "llama/tokenizer.json")));

// deno-lint-ignore no-explicit-any
type Json = any;
function mut(base: Json, f: (j: Json) => void): Json {
  const j = structuredClone(base);
  f(j);
  return j;
}

/** [case, tokenizer.json, Rust's verdict: "ok" or a needle of our message] */
const CASES: [string, Json, string][] = [
  [
    "unk_id -1",
    mut(T5, (j) => j.model.unk_id = -1),
    "model.unk_id must be the index of a vocabulary entry",
  ],
  ["unk_id 1.5", mut(T5, (j) => j.model.unk_id = 1.5), "model.unk_id must be the index"],
  [
    "unk_id past the end",
    mut(T5, (j) => j.model.unk_id = j.model.vocab.length),
    "model.unk_id must be the index",
  ],
  ["unk_id a string", mut(T5, (j) => j.model.unk_id = "2"), "model.unk_id must be the index"],
  ["unk_id null", mut(T5, (j) => j.model.unk_id = null), "ok"],
  ["an empty Unigram vocab", mut(T5, (j) => j.model.vocab = []), "model.vocab is empty"],
  [
    "a map vocab for Unigram",
    mut(T5, (j) => j.model.vocab = { a: 0 }),
    "model.vocab must be a list of [token, score] pairs for a Unigram model, got a map",
  ],
  [
    "a vocab entry that is a string",
    mut(T5, (j) => j.model.vocab[5] = "abc"),
    "model.vocab[5] must be a [token, score] pair",
  ],
  [
    "a vocab entry of 3",
    mut(T5, (j) => j.model.vocab[5] = ["a", 1, 2]),
    "model.vocab[5] must be a [token, score] pair",
  ],
  ["a score that is a string", mut(T5, (j) => j.model.vocab[5] = ["a", "x"]), "model.vocab[5]"],
  ["a token that is a number", mut(T5, (j) => j.model.vocab[5] = [1, 1.0]), "model.vocab[5]"],
  ["an integer score", mut(T5, (j) => j.model.vocab[5] = [j.model.vocab[5][0], 1]), "ok"],
  ["a duplicate vocab entry", mut(T5, (j) => j.model.vocab[5] = j.model.vocab[6]), "ok"],
  [
    "type BPE over a Unigram vocab",
    mut(T5, (j) => j.model.type = "BPE"),
    "model.vocab must map each token to its id for a BPE model, got a list",
  ],
  [
    "type WordLevel over a Unigram vocab",
    mut(T5, (j) => j.model.type = "WordLevel"),
    "model.vocab must map each token to its id",
  ],
  ["no type (inferred)", mut(T5, (j) => delete j.model.type), "ok"],
  [
    "an unknown type",
    mut(T5, (j) => j.model.type = "Foo"),
    'model.type "Foo" is not a known model type',
  ],
  [
    "an empty precompiled_charsmap",
    mut(T5, (j) => j.normalizer.precompiled_charsmap = ""),
    "normalizer.precompiled_charsmap cannot be parsed",
  ],
  [
    "a truncated precompiled_charsmap",
    mut(
      T5,
      (j) => j.normalizer.precompiled_charsmap = j.normalizer.precompiled_charsmap.slice(0, 100),
    ),
    "normalizer.precompiled_charsmap cannot be parsed",
  ],
  [
    "a null precompiled_charsmap",
    mut(T5, (j) => j.normalizer.precompiled_charsmap = null),
    "normalizer.precompiled_charsmap must be a base64 string",
  ],
  [
    "a charsmap that is not base64",
    mut(T5, (j) => j.normalizer.precompiled_charsmap = "!!!!"),
    "not valid base64",
  ],
  [
    "an empty Metaspace replacement",
    mut(T5, (j) => j.pre_tokenizer.pretokenizers[1].replacement = ""),
    "pre_tokenizer.pretokenizers[1].replacement must be exactly one character",
  ],
  [
    "a two-character Metaspace replacement",
    mut(T5, (j) => j.pre_tokenizer.pretokenizers[1].replacement = "ab"),
    "must be exactly one character",
  ],
  [
    "an empty Metaspace decoder replacement",
    mut(T5, (j) => j.decoder.replacement = ""),
    "decoder.replacement must be exactly one character",
  ],
  ["a large added-token id", mut(T5, (j) => j.added_tokens[0].id = 1e6), "ok"],
  [
    "a negative added-token id",
    mut(T5, (j) => j.added_tokens[0].id = -1),
    "added_tokens[0].id must be a token id",
  ],
  [
    "an added token without content",
    mut(T5, (j) => delete j.added_tokens[0].content),
    'added_tokens[0] has no "content"',
  ],
  ["no model", mut(T5, (j) => delete j.model), 'has no "model" object'],
  ["a null model", mut(T5, (j) => j.model = null), "model must be an object"],
  [
    "a merge that is one token",
    mut(
      GPT2,
      (j) => j.model.merges = j.model.merges.map((m: string[]) => m.join(" ")).with(0, "abc"),
    ),
    'model.merges[0] must be "a b"',
  ],
  [
    "a merge of three tokens",
    mut(
      GPT2,
      (j) => j.model.merges = j.model.merges.map((m: string[]) => m.join(" ")).with(0, "a b c"),
    ),
    'model.merges[0] must be "a b"',
  ],
  [
    "a string merge among pairs",
    mut(GPT2, (j) => j.model.merges[3] = "a b"),
    "model.merges[3] must be a [token, token] pair",
  ],
  [
    "a merge of unknown tokens",
    mut(LLAMA, (j) => j.model.merges[0] = ["zzzq", "yyyq"]),
    'model.merges[0] uses "zzzq", which is not in the vocabulary',
  ],
  [
    "a merge whose result is unknown",
    mut(GPT2, (j) => j.model.merges[0] = ["t", "Ġ"]),
    'uses "tĠ", which is not in the vocabulary',
  ],
  ["no merges", mut(GPT2, (j) => delete j.model.merges), 'model must have "merges"'],
  ["a list vocab for BPE", mut(GPT2, (j) => j.model.vocab = [["a", 0]]), "got a list"],
  [
    "a negative id",
    mut(GPT2, (j) => j.model.vocab[Object.keys(j.model.vocab)[0]] = -1),
    "must be a token id",
  ],
  [
    "a fractional id",
    mut(GPT2, (j) => j.model.vocab[Object.keys(j.model.vocab)[0]] = 1.5),
    "must be a token id",
  ],
  [
    "an id that is a string",
    mut(GPT2, (j) => j.model.vocab[Object.keys(j.model.vocab)[0]] = "1"),
    "must be a token id",
  ],
  ["a duplicate id", mut(GPT2, (j) => j.model.vocab[Object.keys(j.model.vocab)[0]] = 5), "ok"],
  ["dropout 2", mut(GPT2, (j) => j.model.dropout = 2), "model.dropout must be between 0 and 1"],
  [
    "fuse_unk a string",
    mut(GPT2, (j) => j.model.fuse_unk = "yes"),
    "model.fuse_unk must be true, false or null",
  ],
  [
    "an unknown normalizer",
    mut(GPT2, (j) => j.normalizer = { type: "Foo" }),
    'normalizer.type "Foo" is not a known normalizer type',
  ],
  [
    "Split without invert",
    mut(
      GPT2,
      (j) => j.pre_tokenizer = { type: "Split", pattern: { String: " " }, behavior: "Removed" },
    ),
    'pre_tokenizer has no "invert"',
  ],
  [
    "a Prepend of a number",
    mut(LLAMA, (j) => j.normalizer.normalizers[0].prepend = 1),
    "normalizer.normalizers[0].prepend must be a string",
  ],
  [
    "version 2.0",
    mut(GPT2, (j) => j.version = "2.0"),
    'version "2.0" is not a tokenizer.json version',
  ],
  // Beyond Rust: an empty map vocabulary, and ids that do not fit the Int32 ids used here.
  [
    "an empty BPE vocab (refused here, not by Rust)",
    mut(GPT2, (j) => (j.model.vocab = {}, j.model.merges = [])),
    "model.vocab is empty",
  ],
];

Deno.test("tokenizer.json files are refused where Rust tokenizers refuses them, naming the file and field", () => {
  const source = "models/x/tokenizer.json";
  for (const [name, json, verdict] of CASES) {
    try {
      createTokenizer(json, "{}", { source });
      assert.equal(verdict, "ok", `${name}: accepted, but Rust refuses it`);
    } catch (e) {
      assert.ok(e instanceof TokenizerError, `${name}: ${e}`);
      assert.notEqual(verdict, "ok", `${name}: refused (${e.message}), but Rust accepts it`);
      assert.ok(e.message.includes(verdict), `${name}: "${e.message}" lacks "${verdict}"`);
      assert.ok(e.message.startsWith(`${source}: `), `${name}: ${e.message}`);
      assert.equal(e.source, source);
    }
  }
});

Deno.test("a token with no id and no unknown token is an error at encode time, as in Rust; decode skips ids with no token", () => {
  const json = {
    model: { type: "Unigram", vocab: [["▁a", -1], ["a", -2]], unk_id: null },
    pre_tokenizer: { type: "Metaspace", replacement: "▁" },
    decoder: { type: "Metaspace", replacement: "▁" },
  };
  const tok = createTokenizer(json, {}, { source: "u/tokenizer.json" });
  assert.deepEqual(tok.encode("a a"), [0, 0]);
  assert.throws(
    () => tok.encode("a z"),
    /u\/tokenizer\.json: "▁z" is not in the vocabulary, and the model has no unknown token/,
  );
  assert.equal(tok.decode([0, 99, -100, 0]), "a a");
});

Deno.test("a WordLevel model maps unknown words to its own unk_token, as Rust does", () => {
  const tok = createTokenizer({
    model: { type: "WordLevel", vocab: { "<unk>": 0, hello: 1 }, unk_token: "<unk>" },
    pre_tokenizer: { type: "Whitespace" },
  });
  assert.deepEqual(tok.encode("hello world"), [1, 0]);
});

Deno.test("a tokenizer.json that is a named pipe is refused without blocking (in a child)", async () => {
  await withTempDir(async (dir) => {
    if (!await makeFifo(join(dir, "tokenizer.json"))) return;
    const r = await runSnippet(
      `import { loadTokenizer } from "@root/src/data/tokenizer.ts";
       for (const p of [${JSON.stringify(dir)}, ${JSON.stringify(join(dir, "tokenizer.json"))}]) {
         try { await loadTokenizer(p); console.log("loaded"); }
         catch (e) { console.log(e.name + ": " + e.message); }
       }`,
      20_000,
    );
    assert.ok(!r.timedOut, r.stdout);
    for (const line of r.stdout.trim().split("\n")) {
      assert.equal(
        line,
        `TokenizerError: ${join(dir, "tokenizer.json")} is a named pipe (FIFO), not a regular file`,
      );
    }
  });
  await assert.rejects(loadTokenizer("/dev/null"), /\/dev\/null is a character device/);
});
