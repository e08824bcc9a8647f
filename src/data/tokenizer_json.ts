/**
 * Validation of a `tokenizer.json` the way Rust `tokenizers` deserializes it, before
 * `@huggingface/tokenizers` builds anything from it. The JavaScript library trusts the file: a
 * Unigram `unk_id` of -1, a vocabulary of the wrong shape for its model type, a merge naming a
 * token that does not exist or an empty `precompiled_charsmap` give it `undefined` ids, dropped
 * tokens or normalization silently off. Rust refuses each of these at load; so does this module,
 * with a message naming the file and the field (`model.vocab[12]`).
 *
 * What is checked (the required fields are those Rust `tokenizers` 0.23 requires):
 *
 * - **the model**: its `type` (BPE, Unigram, WordPiece, WordLevel; inferred from the fields when
 *   absent, as Rust does), a vocabulary of the shape the type needs (Unigram: a non-empty list of
 *   `[token, score]`; the others: a non-empty map of token → integer id), Unigram's `unk_id`
 *   (an index into the vocabulary, or null), BPE's merges (all `"a b"` strings or all
 *   `[a, b]` pairs, both parts and their concatenation in the vocabulary), `dropout` in [0, 1],
 *   and every option's type;
 * - **`added_tokens`**: a list of `{id, content, single_word, lstrip, rstrip, normalized,
 *   special}` with the right types;
 * - **normalizer, pre-tokenizer, decoder and post-processor**: a known `type`, its required
 *   fields, every field's type, recursively through `Sequence`s; a `precompiled_charsmap` that
 *   parses; a Metaspace `replacement` of exactly one character;
 * - **`version`** "1.0", **`truncation`** and **`padding`** fields of the right types.
 *
 * Two refusals go beyond Rust: an empty vocabulary (nothing could be encoded; Rust refuses it
 * only for a Unigram with an `unk_id`), and ids of 2^31 and above (ids are stored as Int32).
 *
 * @module
 */

import { PrecompiledCharsmap } from "./precompiled_charsmap.ts";

/** Where a tokenizer.json fails validation: the file and, in words, the field and the fault. */
export class TokenizerJsonProblem extends Error {
  /** A problem with the file; `message` names the field. */
  constructor(message: string) {
    super(message);
    this.name = "TokenizerJsonProblem";
  }
}

/** The largest id accepted: ids are stored in Int32Arrays. */
const MAX_ID = 2 ** 31 - 1;

type Kind =
  | "bool"
  | "string"
  | "opt_string"
  | "opt_bool"
  | "uint"
  | "char"
  | "pattern"
  | "behavior"
  | "scheme"
  | "charsmap"
  | "token_pair"
  | "template"
  | "special_tokens"
  | `list:${Component}`;
type Component = "normalizer" | "pre_tokenizer" | "decoder" | "post_processor";

/** Each component type's fields: kind, with a leading "!" when Rust requires the field. */
const COMPONENTS: Record<Component, Record<string, Record<string, string>>> = {
  normalizer: {
    BertNormalizer: {
      clean_text: "!bool",
      handle_chinese_chars: "!bool",
      lowercase: "!bool",
      strip_accents: "opt_bool",
    },
    Strip: { strip_left: "!bool", strip_right: "!bool" },
    StripAccents: {},
    NFC: {},
    NFD: {},
    NFKC: {},
    NFKD: {},
    Sequence: { normalizers: "!list:normalizer" },
    Lowercase: {},
    Nmt: {},
    Precompiled: { precompiled_charsmap: "!charsmap" },
    Replace: { pattern: "!pattern", content: "!string" },
    Prepend: { prepend: "!string" },
    ByteLevel: {},
  },
  pre_tokenizer: {
    BertPreTokenizer: {},
    ByteLevel: { add_prefix_space: "!bool", trim_offsets: "!bool", use_regex: "bool" },
    CharDelimiterSplit: { delimiter: "!char" },
    Metaspace: {
      replacement: "!char",
      prepend_scheme: "scheme",
      split: "bool",
      add_prefix_space: "bool",
    },
    Whitespace: {},
    Sequence: { pretokenizers: "!list:pre_tokenizer" },
    Split: { pattern: "!pattern", behavior: "!behavior", invert: "!bool" },
    Punctuation: { behavior: "behavior" },
    WhitespaceSplit: {},
    Digits: { individual_digits: "!bool" },
    UnicodeScripts: {},
    FixedLength: { length: "uint" },
  },
  decoder: {
    BPEDecoder: { suffix: "!string" },
    ByteLevel: { add_prefix_space: "!bool", trim_offsets: "!bool", use_regex: "bool" },
    WordPiece: { prefix: "!string", cleanup: "!bool" },
    Metaspace: {
      replacement: "!char",
      prepend_scheme: "scheme",
      split: "bool",
      add_prefix_space: "bool",
    },
    CTC: { pad_token: "!string", word_delimiter_token: "!string", cleanup: "!bool" },
    Sequence: { decoders: "!list:decoder" },
    Replace: { pattern: "!pattern", content: "!string" },
    Fuse: {},
    Strip: { content: "!char", start: "!uint", stop: "!uint" },
    ByteFallback: {},
  },
  post_processor: {
    RobertaProcessing: {
      sep: "!token_pair",
      cls: "!token_pair",
      trim_offsets: "bool",
      add_prefix_space: "bool",
    },
    BertProcessing: { sep: "!token_pair", cls: "!token_pair" },
    ByteLevel: { add_prefix_space: "!bool", trim_offsets: "!bool", use_regex: "bool" },
    TemplateProcessing: {
      single: "!template",
      pair: "!template",
      special_tokens: "!special_tokens",
    },
    Sequence: { processors: "!list:post_processor" },
  },
};

const BEHAVIORS = ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"];
const SCHEMES = ["first", "never", "always"];

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isUint(v: unknown, max = 2 ** 32 - 1): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;
}

class Checker {
  constructor(readonly file: string) {}

  fail(path: string, message: string): never {
    throw new TokenizerJsonProblem(`${this.file}: ${path} ${message}`);
  }

  value(path: string, v: unknown, kind: Kind): void {
    const want = (what: string) => this.fail(path, `must be ${what}, got ${show(v)}`);
    switch (kind) {
      case "bool":
        if (typeof v !== "boolean") want("true or false");
        return;
      case "opt_bool":
        if (v !== null && typeof v !== "boolean") want("true, false or null");
        return;
      case "string":
        if (typeof v !== "string") want("a string");
        return;
      case "opt_string":
        if (v !== null && typeof v !== "string") want("a string or null");
        return;
      case "uint":
        if (!isUint(v)) want("a non-negative integer");
        return;
      case "char":
        if (typeof v !== "string" || [...v].length !== 1) want("exactly one character");
        return;
      case "pattern": {
        const ok = isObject(v) && Object.keys(v).length === 1 &&
          (typeof v.String === "string" || typeof v.Regex === "string");
        if (!ok) want('{"String": text} or {"Regex": pattern}');
        return;
      }
      case "behavior":
        if (!BEHAVIORS.includes(v as string)) want(`one of ${BEHAVIORS.join(", ")}`);
        return;
      case "scheme":
        if (!SCHEMES.includes(v as string)) want(`one of ${SCHEMES.join(", ")}`);
        return;
      case "charsmap":
        if (typeof v !== "string") want("a base64 string");
        try {
          new PrecompiledCharsmap(v as string);
        } catch (e) {
          this.fail(path, `cannot be parsed: ${e instanceof Error ? e.message : String(e)}`);
        }
        return;
      case "token_pair":
        if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== "string" || !isUint(v[1])) {
          want("a [token, id] pair");
        }
        return;
      case "template":
        if (!Array.isArray(v)) want("a list of template pieces");
        (v as unknown[]).forEach((piece, i) => this.#piece(`${path}[${i}]`, piece));
        return;
      case "special_tokens":
        if (!isObject(v)) want("a map of special tokens");
        for (const [k, t] of Object.entries(v as Record<string, unknown>)) {
          const p = `${path}[${JSON.stringify(k)}]`;
          if (!isObject(t)) this.fail(p, `must be {id, ids, tokens}, got ${show(t)}`);
          this.value(`${p}.id`, t.id, "string");
          if (!Array.isArray(t.ids) || !t.ids.every((x) => isUint(x, MAX_ID))) {
            this.fail(`${p}.ids`, `must be a list of token ids, got ${show(t.ids)}`);
          }
          if (!Array.isArray(t.tokens) || !t.tokens.every((x) => typeof x === "string")) {
            this.fail(`${p}.tokens`, `must be a list of strings, got ${show(t.tokens)}`);
          }
          if (t.ids.length !== t.tokens.length) {
            this.fail(p, `has ${t.ids.length} ids for ${t.tokens.length} tokens`);
          }
        }
        return;
      default: {
        const component = kind.slice("list:".length) as Component;
        if (!Array.isArray(v)) want(`a list of ${component.replace("_", "-")}s`);
        (v as unknown[]).forEach((c, i) => this.component(`${path}[${i}]`, c, component));
      }
    }
  }

  #piece(path: string, v: unknown): void {
    const inner = isObject(v) && Object.keys(v).length === 1
      ? (v.Sequence ?? v.SpecialToken)
      : undefined;
    if (!isObject(inner) || typeof inner.id !== "string" || !isUint(inner.type_id)) {
      this.fail(
        path,
        `must be {"Sequence": {id, type_id}} or {"SpecialToken": {id, type_id}}, got ${show(v)}`,
      );
    }
    if ("Sequence" in (v as object) && inner.id !== "A" && inner.id !== "B") {
      this.fail(`${path}.Sequence.id`, `must be "A" or "B", got ${show(inner.id)}`);
    }
  }

  /** Fields of an object by a table of kinds ("!" = required). */
  fields(path: string, obj: Record<string, unknown>, spec: Record<string, string>): void {
    for (const [name, k] of Object.entries(spec)) {
      const required = k.startsWith("!");
      const kind = (required ? k.slice(1) : k) as Kind;
      const v = obj[name];
      if (v === undefined) {
        if (required) this.fail(path, `has no "${name}" (a required field)`);
        continue;
      }
      if (v === null && !required && kind !== "opt_bool" && kind !== "opt_string") continue;
      this.value(`${path}.${name}`, v, kind);
    }
  }

  component(path: string, v: unknown, component: Component): void {
    if (!isObject(v)) {
      this.fail(path, `must be an object with a "type", got ${show(v)}`);
    }
    const table = COMPONENTS[component];
    const type = v.type;
    if (typeof type !== "string" || !Object.hasOwn(table, type)) {
      this.fail(
        `${path}.type`,
        `${show(type)} is not a known ${component.replace("_", "-")} type (known: ${
          Object.keys(table).join(", ")
        })`,
      );
    }
    this.fields(path, v, table[type]);
  }

  /** A map vocabulary: token → integer id. */
  mapVocab(path: string, vocab: unknown, type: string): Map<string, number> {
    if (!isObject(vocab)) {
      this.fail(
        path,
        `must map each token to its id for a ${type} model, got ${
          Array.isArray(vocab) ? "a list (the shape of a Unigram vocabulary)" : show(vocab)
        }`,
      );
    }
    const out = new Map<string, number>();
    for (const [token, id] of Object.entries(vocab)) {
      if (!isUint(id, 2 ** 32 - 1)) {
        this.fail(
          `${path}[${JSON.stringify(token)}]`,
          `must be a token id (an integer >= 0), got ${show(id)}`,
        );
      }
      if (id > MAX_ID) {
        this.fail(`${path}[${JSON.stringify(token)}]`, `is ${id}, above the largest id ${MAX_ID}`);
      }
      out.set(token, id);
    }
    if (out.size === 0) this.fail(path, "is empty: nothing could be encoded");
    return out;
  }

  model(m: Record<string, unknown>): string {
    const given = m.type ?? inferType(m);
    if (given === undefined) {
      this.fail(
        "model",
        "has no type, and its fields match no model (a list vocab means Unigram, a map with " +
          "merges BPE, with continuing_subword_prefix WordPiece, with unk_token WordLevel)",
      );
    }
    if (typeof given !== "string") {
      this.fail("model.type", `must be a string, got ${show(given)}`);
    }
    const type: string = given;
    switch (type) {
      case "Unigram": {
        const vocab = m.vocab;
        if (!Array.isArray(vocab)) {
          this.fail(
            "model.vocab",
            `must be a list of [token, score] pairs for a Unigram model, got ${
              isObject(vocab)
                ? "a map (the shape of a BPE, WordPiece or WordLevel vocabulary)"
                : show(vocab)
            }`,
          );
        }
        if (vocab.length === 0) this.fail("model.vocab", "is empty: nothing could be encoded");
        vocab.forEach((e, i) => {
          if (
            !Array.isArray(e) || e.length !== 2 || typeof e[0] !== "string" ||
            typeof e[1] !== "number" || !Number.isFinite(e[1])
          ) {
            this.fail(`model.vocab[${i}]`, `must be a [token, score] pair, got ${show(e)}`);
          }
        });
        if (vocab.length - 1 > MAX_ID) this.fail("model.vocab", "has too many entries");
        if (m.unk_id !== undefined && m.unk_id !== null && !isUint(m.unk_id, vocab.length - 1)) {
          this.fail(
            "model.unk_id",
            `must be the index of a vocabulary entry (0 to ${vocab.length - 1}) or null, got ${
              show(m.unk_id)
            }`,
          );
        }
        this.fields("model", m, { byte_fallback: "bool" });
        return type;
      }
      case "BPE": {
        const vocab = this.mapVocab("model.vocab", m.vocab, type);
        this.fields("model", m, {
          unk_token: "opt_string",
          continuing_subword_prefix: "opt_string",
          end_of_word_suffix: "opt_string",
          fuse_unk: "bool",
          byte_fallback: "bool",
          ignore_merges: "bool",
        });
        if (m.dropout !== undefined && m.dropout !== null) {
          const d = m.dropout;
          if (typeof d !== "number" || !(d >= 0 && d <= 1)) {
            this.fail("model.dropout", `must be between 0 and 1, got ${show(d)}`);
          }
        }
        this.merges(m.merges, vocab, (m.continuing_subword_prefix as string | null) ?? "");
        return type;
      }
      case "WordPiece":
        this.mapVocab("model.vocab", m.vocab, type);
        this.fields("model", m, {
          unk_token: "!string",
          continuing_subword_prefix: "!string",
          max_input_chars_per_word: "!uint",
        });
        return type;
      case "WordLevel":
        this.mapVocab("model.vocab", m.vocab, type);
        this.fields("model", m, { unk_token: "!string" });
        return type;
      default:
        this.fail(
          "model.type",
          `${show(type)} is not a known model type (BPE, Unigram, WordPiece, WordLevel)`,
        );
    }
  }

  merges(merges: unknown, vocab: Map<string, number>, prefix: string): void {
    if (!Array.isArray(merges)) {
      this.fail("model", `must have "merges", a list, for a BPE model, got ${show(merges)}`);
    }
    const strings = merges.length > 0 && typeof merges[0] === "string";
    merges.forEach((x, i) => {
      let pair: [string, string];
      if (strings) {
        const parts = typeof x === "string" ? x.split(" ") : [];
        if (parts.length !== 2) {
          this.fail(
            `model.merges[${i}]`,
            `must be "a b" (two tokens and one space), got ${show(x)}`,
          );
        }
        pair = parts as [string, string];
      } else {
        if (!Array.isArray(x) || x.length !== 2 || !x.every((t) => typeof t === "string")) {
          this.fail(
            `model.merges[${i}]`,
            `must be a [token, token] pair like the merges before it, got ${show(x)}`,
          );
        }
        pair = x as [string, string];
      }
      const merged = pair[0] +
        (pair[1].startsWith(prefix) ? pair[1].slice(prefix.length) : pair[1]);
      for (const t of [pair[0], pair[1], merged]) {
        if (!vocab.has(t)) {
          this.fail(`model.merges[${i}]`, `uses ${show(t)}, which is not in the vocabulary`);
        }
      }
    });
  }

  addedTokens(v: unknown): void {
    if (v === undefined || v === null) return;
    if (!Array.isArray(v)) this.fail("added_tokens", `must be a list, got ${show(v)}`);
    v.forEach((t, i) => {
      const p = `added_tokens[${i}]`;
      if (!isObject(t)) this.fail(p, `must be an object, got ${show(t)}`);
      if (!isUint(t.id, MAX_ID)) this.fail(`${p}.id`, `must be a token id, got ${show(t.id)}`);
      this.fields(p, t, {
        content: "!string",
        single_word: "!bool",
        lstrip: "!bool",
        rstrip: "!bool",
        normalized: "!bool",
        special: "!bool",
      });
    });
  }
}

/** The model type Rust's untagged deserialization would pick for a model without `type`. */
function inferType(m: Record<string, unknown>): string | undefined {
  if (Array.isArray(m.vocab)) return "Unigram";
  if (!isObject(m.vocab)) return undefined;
  if ("merges" in m) return "BPE";
  if ("continuing_subword_prefix" in m || "max_input_chars_per_word" in m) return "WordPiece";
  if ("unk_token" in m) return "WordLevel";
  return undefined;
}

/**
 * Checks a parsed `tokenizer.json` (see the module doc) and returns its model type.
 *
 * @param json The parsed file.
 * @param file The file, named in every message.
 * @returns The model type (given or inferred).
 * @throws {TokenizerJsonProblem} Naming the file and the field.
 *
 * @example
 * ```ts
 * import { validateTokenizerJson } from "./tokenizer_json.ts";
 * import assert from "node:assert/strict";
 *
 * const model = { type: "Unigram", vocab: [["<unk>", 0], ["a", -1]], unk_id: 2 };
 * assert.throws(
 *   () => validateTokenizerJson({ model }, "t/tokenizer.json"),
 *   /t\/tokenizer\.json: model\.unk_id must be the index of a vocabulary entry \(0 to 1\)/,
 * );
 * ```
 */
export function validateTokenizerJson(json: unknown, file: string): string {
  const c: Checker = new Checker(file);
  if (!isObject(json)) c.fail("the file", `must hold a JSON object, got ${show(json)}`);
  if (json.version !== undefined && json.version !== "1.0") {
    c.fail("version", `${show(json.version)} is not a tokenizer.json version this reads ("1.0")`);
  }
  if (json.model === undefined) c.fail("the file", 'has no "model" object: not a tokenizer.json');
  if (!isObject(json.model)) c.fail("model", `must be an object, got ${show(json.model)}`);
  const type = c.model(json.model as Record<string, unknown>);
  c.addedTokens(json.added_tokens);
  for (const component of Object.keys(COMPONENTS) as Component[]) {
    const v = json[component];
    if (v !== undefined && v !== null) c.component(component, v, component);
  }
  if (json.truncation !== undefined && json.truncation !== null) {
    if (!isObject(json.truncation)) c.fail("truncation", `must be an object or null`);
    c.fields("truncation", json.truncation, { max_length: "uint", stride: "uint" });
  }
  if (json.padding !== undefined && json.padding !== null) {
    if (!isObject(json.padding)) c.fail("padding", `must be an object or null`);
    c.fields("padding", json.padding, { pad_id: "uint", pad_type_id: "uint", pad_token: "string" });
  }
  return type;
}
