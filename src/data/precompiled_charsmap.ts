/**
 * The sentencepiece `Precompiled` normalizer of a `tokenizer.json` (T5, mT5, XLM-R, ...), exactly
 * as Rust `tokenizers` applies it.
 *
 * `@huggingface/tokenizers` approximates this normalizer with NFKC plus two regular expressions,
 * which differs from Rust on some inputs (for example it turns U+200D ZERO WIDTH JOINER into a
 * space, so emoji ZWJ sequences split into several words). This module reads the real rules:
 *
 * - `precompiled_charsmap` (base64) is `[u32 LE trie size in bytes][trie: u32 units][pool]`: a
 *   Darts double-array trie over UTF-8 bytes whose values are byte offsets into a pool of
 *   NUL-terminated replacement strings.
 * - The text is split into extended grapheme clusters (`Intl.Segmenter`, like Rust's
 *   `unicode-segmentation`). A cluster shorter than 6 UTF-8 bytes is replaced whole when a rule
 *   matches a prefix of it (the SHORTEST matching rule wins, and the rest of the cluster is
 *   dropped: "\r\n" becomes the replacement of "\r"); otherwise each character is replaced by its
 *   own rule, or kept.
 *
 * These are the semantics of `spm_precompiled` (used by `tokenizers`), including its quirks.
 *
 * @module
 */

/** Rust's `unit.has_leaf()`. */
function hasLeaf(unit: number): boolean {
  return ((unit >>> 8) & 1) === 1;
}

/** Rust's `unit.value()`. */
function unitValue(unit: number): number {
  return unit & 0x7fffffff;
}

/** Rust's `unit.label()`: the byte, or a value with bit 31 set that never equals one. */
function unitLabel(unit: number): number {
  return unit & 0x800000ff;
}

/** Rust's `unit.offset()`. */
function unitOffset(unit: number): number {
  return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * A charsmap rule that cannot be applied: it points inside a character of the replacement
 * pool. Rust `tokenizers` loads such a charsmap and panics when the rule is used; a
 * `TextTokenizer` reports it as a `TokenizerError` naming its `tokenizer.json`.
 */
export class CharsmapRuleError extends Error {
  /** What is wrong, in words. */
  constructor(message: string) {
    super(message);
    this.name = "CharsmapRuleError";
  }
}

/**
 * A parsed `precompiled_charsmap`: normalizes text the way Rust `tokenizers`' `Precompiled`
 * normalizer does.
 *
 * @example
 * ```ts
 * import { PrecompiledCharsmap } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const json = JSON.parse(await Deno.readTextFile("tests/fixtures/tokenizers/t5/tokenizer.json"));
 * const norm = new PrecompiledCharsmap(json.normalizer.precompiled_charsmap);
 * assert.equal(norm.normalize("\uff21\ufb01"), "Afi"); // full-width A, the fi ligature (nmt_nfkc)
 * ```
 */
export class PrecompiledCharsmap {
  readonly #trie: Uint32Array;
  readonly #pool: Uint8Array;
  readonly #cache = new Map<string, string | null>();
  /** Each ASCII character's rule, looked up on first use (undefined until then). */
  readonly #ascii: (string | null | undefined)[] = new Array(128);
  readonly #segmenter = new Intl.Segmenter("und", { granularity: "grapheme" });

  /**
   * Parses a charsmap.
   *
   * @param charsmap The base64 string of `tokenizer.json` or the raw bytes.
   * @throws {Error} If the blob is truncated or its replacement pool is not UTF-8 (a
   *   `TextTokenizer` reports this as a `TokenizerError` naming its `tokenizer.json`).
   */
  constructor(charsmap: string | Uint8Array) {
    const bytes = typeof charsmap === "string" ? decodeBase64(charsmap) : charsmap;
    if (bytes.length < 4) {
      throw new Error(
        `the charsmap is ${bytes.length} bytes long, too short for the 4-byte size of its trie ` +
          "(an empty or truncated charsmap)",
      );
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // As spm_precompiled reads it: the size in whole 4-byte units, the rest is the pool.
    const units = Math.floor(view.getUint32(0, true) / 4);
    if (units === 0 || 4 + 4 * units > bytes.length) {
      throw new Error(
        `the charsmap declares a ${view.getUint32(0, true)}-byte trie, but has ` +
          `${bytes.length - 4} bytes after its size: it is truncated or corrupt`,
      );
    }
    const trieBytes = 4 * units;
    this.#trie = new Uint32Array(trieBytes / 4);
    for (let i = 0; i < this.#trie.length; i++) this.#trie[i] = view.getUint32(4 + 4 * i, true);
    this.#pool = bytes.slice(4 + trieBytes);
    try {
      utf8Decoder.decode(this.#pool);
    } catch {
      throw new Error("the charsmap's replacement pool is not valid UTF-8");
    }
  }

  /** The rule of ASCII character `c` (memoized). */
  #asciiRule(c: number): string | null {
    let r = this.#ascii[c];
    if (r === undefined) r = this.#ascii[c] = this.#lookup(String.fromCharCode(c));
    return r;
  }

  /** Byte offsets into the pool of every rule matching a prefix of `key`, shortest first. */
  #commonPrefixSearch(key: Uint8Array): number[] {
    const trie = this.#trie;
    const results: number[] = [];
    let pos = unitOffset(trie[0]);
    for (let i = 0; i < key.length; i++) {
      const c = key[i];
      if (c === 0) break;
      pos ^= c;
      if (pos >= trie.length) return results;
      const unit = trie[pos];
      if (unitLabel(unit) !== c) return results;
      pos ^= unitOffset(unit);
      if (hasLeaf(unit)) {
        if (pos >= trie.length) return results;
        results.push(unitValue(trie[pos]));
      }
    }
    return results;
  }

  /** The replacement of the shortest rule matching a prefix of `chunk`, or null. */
  #lookup(chunk: string): string | null {
    const found = this.#commonPrefixSearch(utf8.encode(chunk));
    if (found.length === 0) return null;
    const start = found[0];
    if (start > this.#pool.length) return null;
    let end = start;
    while (end < this.#pool.length && this.#pool[end] !== 0) end++;
    if (start < this.#pool.length && (this.#pool[start] & 0xc0) === 0x80) {
      // Rust slices the pool at the rule's offset, which panics inside a character.
      throw new CharsmapRuleError(
        `the charsmap's rule for ${JSON.stringify(chunk)} points inside a character of its ` +
          "replacement pool (a corrupt charsmap; Rust tokenizers panics on it too)",
      );
    }
    return utf8Decoder.decode(this.#pool.subarray(start, end));
  }

  /**
   * Rust's `Precompiled::transform`: the replacement for `chunk` (a grapheme cluster or one
   * character), or null to keep it. Results are memoized.
   *
   * @param chunk A grapheme cluster or a single character.
   * @returns The replacement, or null when no rule matches a prefix of it.
   */
  transform(chunk: string): string | null {
    if (chunk.length === 1) {
      const c = chunk.charCodeAt(0);
      if (c < 128) return this.#asciiRule(c);
    }
    let r = this.#cache.get(chunk);
    if (r === undefined) {
      r = this.#lookup(chunk);
      if (this.#cache.size > 100_000) this.#cache.clear();
      this.#cache.set(chunk, r);
    }
    return r;
  }

  /**
   * Normalizes a string exactly like Rust `tokenizers`' `Precompiled` normalizer.
   *
   * @param text The text.
   * @returns The normalized text.
   */
  normalize(text: string): string {
    let out = "";
    // ASCII fast path: every character is its own grapheme cluster except "\r\n".
    let ascii = true;
    for (let i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) >= 128) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      let start = 0;
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        let rep: string | null;
        let len = 1;
        if (c === 13 && text.charCodeAt(i + 1) === 10) {
          len = 2;
          rep = this.transform("\r\n");
          if (rep === null) {
            const a = this.#asciiRule(13), b = this.#asciiRule(10);
            if (a === null && b === null) {
              i++;
              continue;
            }
            rep = (a ?? "\r") + (b ?? "\n");
          }
        } else {
          rep = this.#asciiRule(c);
          if (rep === null) continue;
        }
        out += text.slice(start, i) + rep;
        i += len - 1;
        start = i + 1;
      }
      return start === 0 ? text : out + text.slice(start);
    }
    for (const { segment } of this.#segmenter.segment(text)) {
      if (utf8Length(segment) < 6) {
        const rep = this.transform(segment);
        if (rep !== null) {
          out += rep;
          continue;
        }
      }
      for (const ch of segment) out += this.transform(ch) ?? ch;
    }
    return out;
  }
}

/** UTF-8 byte length of a string. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

function decodeBase64(s: string): Uint8Array {
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    throw new Error("the charsmap is not valid base64");
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
