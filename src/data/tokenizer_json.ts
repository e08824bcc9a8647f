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
  | "opt_uint"
  | "char"
  | "pattern"
  | "behavior"
  | "scheme"
  | "charsmap"
  | "token_pair"
  | "template"
  | "special_tokens"
  | "truncation_strategy"
  | "padding_strategy"
  | "direction"
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

/**
 * The types Rust also recognizes without their "type" (or with another one), by their fields:
 * the others check their tag. In Rust's order.
 */
const INFERABLE: Record<Component, readonly string[]> = {
  normalizer: ["BertNormalizer", "Strip", "Sequence", "Replace", "Prepend"],
  pre_tokenizer: [],
  decoder: ["BPEDecoder", "WordPiece", "CTC", "Replace", "Strip"],
  post_processor: ["RobertaProcessing", "BertProcessing", "TemplateProcessing"],
};

/**
 * Numbers written with a fraction or an exponent (`5.0`, `9e6`), by holder object and key, as
 * {@link parseTokenizerJson} saw them: Rust refuses them where it expects an integer, where
 * JSON.parse alone would give an integer.
 */
const nonIntegerLiterals = new WeakMap<object, Set<string>>();

/**
 * Parses tokenizer.json text, remembering which numbers were not written as integers (see
 * {@link validateTokenizerJson}).
 *
 * @param text The file's text.
 * @returns The parsed JSON.
 * @throws {SyntaxError} When the text is not JSON.
 */
export function parseTokenizerJson(text: string): unknown {
  return JSON.parse(
    text,
    function (this: object, key: string, value: unknown, context?: { source?: string }) {
      if (typeof value === "number" && context?.source && /[.eE]/.test(context.source)) {
        let keys = nonIntegerLiterals.get(this);
        if (!keys) nonIntegerLiterals.set(this, keys = new Set());
        keys.add(key);
      }
      return value;
    },
  );
}

/** Whether `holder[key]` was written as a non-integer literal. */
function writtenAsFloat(holder: object, key: string | number): boolean {
  return nonIntegerLiterals.get(holder)?.has(String(key)) ?? false;
}

/** The saved `truncation` and `padding` settings (null when off). */
const SETTINGS: Record<string, Record<string, string>> = {
  truncation: {
    max_length: "!uint",
    stride: "!uint",
    strategy: "!truncation_strategy",
    direction: "direction",
  },
  padding: {
    strategy: "!padding_strategy",
    direction: "!direction",
    pad_id: "!uint",
    pad_type_id: "!uint",
    pad_token: "!string",
    pad_to_multiple_of: "opt_uint",
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

  /** Checks a value; returns it, or a copy whose nested components got their inferred types. */
  value(path: string, v: unknown, kind: Kind, holder?: object, key?: string): unknown {
    const want = (what: string) => this.fail(path, `must be ${what}, got ${show(v)}`);
    switch (kind) {
      case "bool":
        if (typeof v !== "boolean") want("true or false");
        return v;
      case "opt_bool":
        if (v !== null && typeof v !== "boolean") want("true, false or null");
        return v;
      case "string":
        if (typeof v !== "string") want("a string");
        return v;
      case "opt_string":
        if (v !== null && typeof v !== "string") want("a string or null");
        return v;
      case "uint":
        if (!isUint(v) || (holder !== undefined && writtenAsFloat(holder, key!))) {
          want("a non-negative integer");
        }
        return v;
      case "opt_uint":
        return v === null ? v : this.value(path, v, "uint", holder, key);
      case "char":
        if (typeof v !== "string" || [...v].length !== 1) want("exactly one character");
        return v;
      case "pattern": {
        const ok = isObject(v) && Object.keys(v).length === 1 &&
          (typeof v.String === "string" || typeof v.Regex === "string");
        if (!ok) want('{"String": text} or {"Regex": pattern}');
        return v;
      }
      case "behavior":
        if (!BEHAVIORS.includes(v as string)) want(`one of ${BEHAVIORS.join(", ")}`);
        return v;
      case "scheme":
        if (!SCHEMES.includes(v as string)) want(`one of ${SCHEMES.join(", ")}`);
        return v;
      case "truncation_strategy":
        if (!["LongestFirst", "OnlyFirst", "OnlySecond"].includes(v as string)) {
          want("LongestFirst, OnlyFirst or OnlySecond");
        }
        return v;
      case "padding_strategy":
        if (v !== "BatchLongest" && !(isObject(v) && isUint(v.Fixed))) {
          want('"BatchLongest" or {"Fixed": length}');
        }
        return v;
      case "direction":
        if (v !== "Left" && v !== "Right") want('"Left" or "Right"');
        return v;
      case "charsmap":
        if (typeof v !== "string") want("a base64 string");
        try {
          new PrecompiledCharsmap(v as string);
        } catch (e) {
          this.fail(path, `cannot be parsed: ${e instanceof Error ? e.message : String(e)}`);
        }
        return v;
      case "token_pair":
        if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== "string" || !isUint(v[1])) {
          want("a [token, id] pair");
        }
        return v;
      case "template":
        if (!Array.isArray(v)) want("a list of template pieces");
        (v as unknown[]).forEach((piece, i) => this.#piece(`${path}[${i}]`, piece));
        return v;
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
        }
        return v;
      default: {
        const component = kind.slice("list:".length) as Component;
        if (!Array.isArray(v)) want(`a list of ${component.replace("_", "-")}s`);
        const list = v as unknown[];
        const out = list.map((c, i) => this.component(`${path}[${i}]`, c, component));
        return out.every((c, i) => c === list[i]) ? v : out;
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

  /**
   * Fields of an object by a table of kinds ("!" = required). Returns the object, or a copy
   * whose nested components got their inferred types.
   */
  fields(
    path: string,
    obj: Record<string, unknown>,
    spec: Record<string, string>,
  ): Record<string, unknown> {
    let out = obj;
    for (const [name, k] of Object.entries(spec)) {
      const required = k.startsWith("!");
      const kind = (required ? k.slice(1) : k) as Kind;
      const v = obj[name];
      if (v === undefined) {
        if (required) this.fail(path, `has no "${name}" (a required field)`);
        continue;
      }
      // null stands for "none" only where Rust has an Option; elsewhere it is the wrong type.
      const checked = this.value(`${path}.${name}`, v, kind, obj, name);
      if (checked !== v) out = { ...out, [name]: checked };
    }
    return out;
  }

  /**
   * A normalizer, pre-tokenizer, decoder or post-processor. A known `type` is checked with its
   * fields; an unknown or missing one is inferred from the fields, as Rust's untagged
   * deserialization does for the types in {@link INFERABLE} (the first, in Rust's order, whose
   * required fields are all there and well typed). Returns the object, with the inferred type
   * set when there is one.
   */
  component(path: string, v: unknown, component: Component): Record<string, unknown> {
    if (!isObject(v)) {
      this.fail(path, `must be an object with a "type", got ${show(v)}`);
    }
    const table = COMPONENTS[component];
    const type = v.type;
    if (typeof type === "string" && Object.hasOwn(table, type)) {
      const out = this.fields(path, v, table[type]);
      if (type === "Metaspace") this.#metaspace(path, v);
      return out;
    }
    for (const candidate of INFERABLE[component]) {
      try {
        return { ...this.fields(path, v, table[candidate]), type: candidate };
      } catch (e) {
        if (!(e instanceof TokenizerJsonProblem)) throw e;
      }
    }
    if (type === undefined) this.fail(path, 'has no "type", and its fields match no known type');
    this.fail(
      `${path}.type`,
      `${show(type)} is not a known ${component.replace("_", "-")} type (known: ${
        Object.keys(table).join(", ")
      }), and the fields match none`,
    );
  }

  /** Rust: "add_prefix_space does not match declared prepend_scheme". */
  #metaspace(path: string, v: Record<string, unknown>): void {
    const scheme = v.prepend_scheme ?? "always";
    if (v.add_prefix_space === false && scheme !== "never") {
      this.fail(
        `${path}.add_prefix_space`,
        `is false, which contradicts prepend_scheme ${show(scheme)} (false goes with "never")`,
      );
    }
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
      if (!isUint(id, 2 ** 32 - 1) || writtenAsFloat(vocab, token)) {
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
    if ("type" in m && typeof m.type !== "string") {
      this.fail("model.type", `must be a string, got ${show(m.type)}`);
    }
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
        if (
          m.unk_id !== undefined && m.unk_id !== null &&
          (!isUint(m.unk_id, vocab.length - 1) || writtenAsFloat(m, "unk_id"))
        ) {
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
          // Rust's BPE reads each of these as optional: null means the default.
          fuse_unk: "opt_bool",
          byte_fallback: "opt_bool",
          ignore_merges: "opt_bool",
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
      if (!isUint(t.id, MAX_ID) || writtenAsFloat(t, "id")) {
        this.fail(`${p}.id`, `must be a token id, got ${show(t.id)}`);
      }
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
 * Checks a parsed `tokenizer.json` (see the module doc) and returns it with every type Rust
 * would infer filled in (a model, a normalizer, ... without `type`), for a library that needs
 * them spelled out. The input is not changed.
 *
 * @param json The parsed file.
 * @param file The file, named in every message.
 * @returns The model type and the file with the inferred types.
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
export function validateTokenizerJson(
  json: unknown,
  file: string,
): { modelType: string; json: Record<string, unknown> } {
  const c: Checker = new Checker(file);
  if (!isObject(json)) c.fail("the file", `must hold a JSON object, got ${show(json)}`);
  if (json.version !== undefined && json.version !== "1.0") {
    c.fail("version", `${show(json.version)} is not a tokenizer.json version this reads ("1.0")`);
  }
  if (json.model === undefined) c.fail("the file", 'has no "model" object: not a tokenizer.json');
  if (!isObject(json.model)) c.fail("model", `must be an object, got ${show(json.model)}`);
  const type = c.model(json.model as Record<string, unknown>);
  c.addedTokens(json.added_tokens);
  let out: Record<string, unknown> = json;
  for (const component of Object.keys(COMPONENTS) as Component[]) {
    const v = json[component];
    if (v === undefined || v === null) continue;
    const checked = c.component(component, v, component);
    if (checked !== v) out = { ...out, [component]: checked };
  }
  for (const [name, spec] of Object.entries(SETTINGS)) {
    const v = json[name];
    if (v === undefined || v === null) continue;
    if (!isObject(v)) c.fail(name, `must be an object or null, got ${show(v)}`);
    c.fields(name, v, spec);
  }
  if (json.model.type === undefined) out = { ...out, model: { ...json.model, type } };
  return { modelType: type, json: out };
}

/**
 * Checks the fields of a `tokenizer_config.json` that this module and the library read: the
 * special tokens (a string, `{content}` or null), `additional_special_tokens` (a list of them)
 * and the flags.
 *
 * @param config The parsed file.
 * @param file The file, named in every message.
 * @throws {TokenizerJsonProblem} Naming the file and the field.
 *
 * @example
 * ```ts
 * import { validateTokenizerConfig } from "./tokenizer_json.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => validateTokenizerConfig({ eos_token: 1 }, "t/tokenizer_config.json"),
 *   /t\/tokenizer_config\.json: eos_token must be a token/,
 * );
 * ```
 */
export function validateTokenizerConfig(config: unknown, file: string): void {
  const c: Checker = new Checker(file);
  if (!isObject(config)) c.fail("the file", `must hold a JSON object, got ${show(config)}`);
  const isToken = (t: unknown) =>
    typeof t === "string" || (isObject(t) && typeof t.content === "string");
  for (const name of ["eos_token", "bos_token", "pad_token", "unk_token"]) {
    const t = config[name];
    if (t !== undefined && t !== null && !isToken(t)) {
      c.fail(name, `must be a token (a string or {"content": string}), got ${show(t)}`);
    }
  }
  const extra = config.additional_special_tokens;
  if (extra !== undefined && extra !== null && (!Array.isArray(extra) || !extra.every(isToken))) {
    c.fail("additional_special_tokens", `must be a list of tokens, got ${show(extra)}`);
  }
  for (
    const name of ["clean_up_tokenization_spaces", "remove_space", "do_lowercase_and_remove_accent"]
  ) {
    const v = config[name];
    if (v !== undefined && v !== null && typeof v !== "boolean") {
      c.fail(name, `must be true or false, got ${show(v)}`);
    }
  }
}
