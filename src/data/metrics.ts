/**
 * Task metrics on decoded prediction strings, as the authors compute them (DePT/ADePT
 * `src/metrics.py`, T5's `qa_utils.py` via ATTEMPT), on the 0-100 scale.
 *
 * Every metric takes `(predictions, targets)` as equally long, non-empty string arrays, in that
 * order (the authors' order; scikit-learn's is `(y_true, y_pred)`). Strings are compared as
 * they are: strip them first the way the authors do (Python `str.strip()`, see
 * {@linkcode pyStrip}).
 *
 * | authors' name | function | reference |
 * |---|---|---|
 * | accuracy | {@linkcode accuracy} | `100 * mean(pred == target)` |
 * | f1 | {@linkcode binaryF1} | `f1_score_with_invalid` (sklearn `f1_score`, "1") |
 * | matthews_correlation | {@linkcode matthewsCorrelation} | sklearn `matthews_corrcoef` |
 * | pearson | {@linkcode pearson} | scipy `pearsonr` of `float()`ed strings, NaN → 0 |
 * | spearmanr | {@linkcode spearman} | scipy `spearmanr`, tie-averaged ranks, NaN → 0 |
 * | f1_multiclass | {@linkcode macroF1} | sklearn `fbeta_score`, macro over 0..2 |
 * | em, f1 (SQuAD) | {@linkcode squadScores} | T5 `qa_metrics` after `normalize_squad` |
 *
 * Deviations from the authors' code, all on inputs their code crashes on or mishandles:
 * empty inputs and length mismatches throw here (sklearn raises; numpy's accuracy gives NaN);
 * a binary-F1 target other than "0"/"1" throws (their `astype(np.int32)` raises on most such
 * strings but would accept e.g. "01"); Pearson with fewer than two pairs is 0 here (scipy
 * raises), like every other undefined correlation.
 *
 * Python semantics are reproduced where they matter: `float()` syntax (underscores, Unicode
 * digits, inf/nan), `str.split()`/`strip()` whitespace, and the `\b` of the `regex` module
 * that T5's `qa_utils` (as vendored by ATTEMPT/DePT) uses for articles, where marks, letters,
 * decimal digits and connector punctuation are word characters (Python's `re` differs on,
 * e.g., "²the"). Lowercasing and Unicode properties follow V8's Unicode tables, which may be
 * newer than the reference Python's.
 *
 * @module
 */

// ---------------------------------------------------------------------------------------------
// Python string semantics

/** Python's `str.isspace()` characters: what `str.split()` and `str.strip()` split and strip. */
const PY_SPACE_CLASS =
  "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_SPACE_RUN = new RegExp(`[${PY_SPACE_CLASS}]+`, "u");
const PY_STRIP = new RegExp(`^[${PY_SPACE_CLASS}]+|[${PY_SPACE_CLASS}]+$`, "gu");

/**
 * Python's `s.strip()`: removes leading and trailing Python whitespace (which differs from
 * `String.prototype.trim`: it includes U+001C..U+001F and U+0085, excludes U+FEFF).
 *
 * @param s Any string.
 * @returns `s` without leading and trailing whitespace.
 *
 * @example
 * ```ts
 * import { pyStrip } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(pyStrip("  1 \n"), "1");
 * ```
 */
export function pyStrip(s: string): string {
  return s.replace(PY_STRIP, "");
}

/**
 * Python's `s.split()` with no separator: splits on runs of Python whitespace, dropping empty
 * pieces.
 *
 * @param s Any string.
 * @returns The whitespace-separated tokens.
 *
 * @example
 * ```ts
 * import { pySplit } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(pySplit("  a b\tc "), ["a", "b", "c"]);
 * ```
 */
export function pySplit(s: string): string[] {
  return s.split(PY_SPACE_RUN).filter((t) => t.length > 0);
}

const ND = /\p{Nd}/u;
/** Non-ASCII characters Python's `float()` reads as spaces (ASCII ones it takes literally). */
const FLOAT_NON_ASCII_SPACE = /[\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
/** The ASCII whitespace `float()` strips (C `isspace`; not U+001C..U+001F). */
const FLOAT_STRIP = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g;
const FLOAT_NUMBER =
  /^[+-]?(?:(?:\d(?:_?\d)*)?\.\d(?:_?\d)*|\d(?:_?\d)*\.?)(?:[eE][+-]?\d(?:_?\d)*)?$/;
const FLOAT_SPECIAL = /^([+-]?)(inf|infinity|nan)$/i;

/** The value 0..9 of a Unicode decimal digit (Nd digits come in runs of ten from zero). */
function decimalValue(cp: number): number {
  let k = 0;
  while (cp - k - 1 >= 0 && ND.test(String.fromCodePoint(cp - k - 1))) k++;
  return k % 10;
}

/**
 * Python's `float(s)` for a string, following CPython: non-ASCII whitespace becomes a space
 * and Unicode decimal digits become ASCII digits (any other non-ASCII character is an error),
 * then surrounding ASCII whitespace is stripped and the rest must be a float literal (`_`
 * allowed between digits) or `inf`/`infinity`/`nan` in any case, optionally signed.
 *
 * @param s The string to parse.
 * @returns The number, or `undefined` where Python raises `ValueError`.
 *
 * @example
 * ```ts
 * import { parsePythonFloat } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parsePythonFloat(" 3.8"), 3.8);
 * assert.equal(parsePythonFloat("1_000"), 1000);
 * assert.equal(parsePythonFloat("-Infinity"), -Infinity);
 * assert.equal(parsePythonFloat("3.8 points"), undefined);
 * ```
 */
export function parsePythonFloat(s: string): number | undefined {
  let t = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x7f) t += ch;
    else if (FLOAT_NON_ASCII_SPACE.test(ch)) t += " ";
    else if (ND.test(ch)) t += String(decimalValue(cp));
    else return undefined;
  }
  t = t.replace(FLOAT_STRIP, "");
  const special = FLOAT_SPECIAL.exec(t);
  if (special !== null) {
    if (special[2].toLowerCase() === "nan") return NaN;
    return special[1] === "-" ? -Infinity : Infinity;
  }
  if (!FLOAT_NUMBER.test(t)) return undefined;
  return Number(t.replaceAll("_", ""));
}

/**
 * The authors' `string_to_float`: Python `float(s)`, or `fallback` where that raises.
 *
 * @param s The string to parse.
 * @param fallback The value for unparsable strings.
 * @returns The parsed number or `fallback`.
 *
 * @example
 * ```ts
 * import { stringToFloat } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(stringToFloat("2.4"), 2.4);
 * assert.equal(stringToFloat("two"), -1);
 * ```
 */
export function stringToFloat(s: string, fallback = -1): number {
  return parsePythonFloat(s) ?? fallback;
}

// ---------------------------------------------------------------------------------------------
// Validation helpers

function checkPair(
  fn: string,
  predictions: readonly unknown[],
  targets: readonly unknown[],
): number {
  if (predictions.length !== targets.length) {
    const sizes = `${predictions.length} vs ${targets.length}`;
    throw new RangeError(`${fn}: predictions and targets differ in length (${sizes})`);
  }
  if (predictions.length === 0) {
    throw new RangeError(`${fn}: needs at least one prediction/target pair, got none`);
  }
  return predictions.length;
}

// ---------------------------------------------------------------------------------------------
// Classification metrics

/**
 * Accuracy: `100 * mean(prediction === target)`.
 *
 * @param predictions Decoded, stripped predictions.
 * @param targets Decoded, stripped targets.
 * @returns Accuracy in [0, 100].
 * @throws {RangeError} If the arrays differ in length or are empty.
 *
 * @example
 * ```ts
 * import { accuracy } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(accuracy(["1", "0", "yes", "1"], ["1", "1", "0", "1"]), 50);
 * ```
 */
export function accuracy(predictions: readonly string[], targets: readonly string[]): number {
  const n = checkPair("accuracy", predictions, targets);
  let hits = 0;
  for (let i = 0; i < n; i++) if (predictions[i] === targets[i]) hits++;
  return 100 * (hits / n);
}

/**
 * Binary F1 with positive class "1", scikit-learn's `f1_score` after the authors'
 * `f1_score_with_invalid` rule: a prediction other than "0"/"1" is replaced by the opposite of
 * its target (so it counts as a false negative for target "1", a false positive for "0").
 * F1 is `2TP / (2TP + FP + FN)`, and 0 when that is 0/0 (sklearn's `zero_division`).
 *
 * @param predictions Decoded, stripped predictions (any strings).
 * @param targets Decoded, stripped targets, each "0" or "1".
 * @returns F1 in [0, 100].
 * @throws {RangeError} If the arrays differ in length or are empty, or a target is not
 *   "0"/"1".
 *
 * @example
 * ```ts
 * import { binaryF1 } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // TP = 1, FN = 1 (the invalid "x"), FP = 1: F1 = 2 / (2 + 1 + 1) = 50
 * assert.equal(binaryF1(["1", "x", "1", "0"], ["1", "1", "0", "0"]), 50);
 * ```
 */
export function binaryF1(predictions: readonly string[], targets: readonly string[]): number {
  const n = checkPair("binaryF1", predictions, targets);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < n; i++) {
    const t = targets[i];
    if (t !== "0" && t !== "1") {
      throw new RangeError(
        `binaryF1: targets must be "0" or "1", got ${JSON.stringify(t)} at ${i}`,
      );
    }
    const p = predictions[i] === "0" || predictions[i] === "1"
      ? predictions[i]
      : t === "1"
      ? "0"
      : "1";
    if (p === "1" && t === "1") tp++;
    else if (p === "1") fp++;
    else if (t === "1") fn++;
  }
  const denom = 2 * tp + fp + fn;
  return denom === 0 ? 0 : 100 * ((2 * tp) / denom);
}

/**
 * Matthews correlation over the strings as labels (scikit-learn's multiclass
 * `matthews_corrcoef(targets, predictions)`, which the authors apply to the raw strings, so an
 * invalid prediction is simply one more label); 0 when undefined.
 *
 * @param predictions Decoded, stripped predictions.
 * @param targets Decoded, stripped targets.
 * @returns `100 * MCC`, in [-100, 100].
 * @throws {RangeError} If the arrays differ in length or are empty.
 *
 * @example
 * ```ts
 * import { matthewsCorrelation } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(matthewsCorrelation(["1", "1", "0", "0"], ["1", "1", "0", "0"]), 100);
 * // A constant prediction scores 0.
 * assert.equal(matthewsCorrelation(["1", "1", "1", "1"], ["1", "0", "1", "0"]), 0);
 * ```
 */
export function matthewsCorrelation(
  predictions: readonly string[],
  targets: readonly string[],
): number {
  const n = checkPair("matthewsCorrelation", predictions, targets);
  const tSum = new Map<string, number>();
  const pSum = new Map<string, number>();
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const t = targets[i];
    const p = predictions[i];
    tSum.set(t, (tSum.get(t) ?? 0) + 1);
    pSum.set(p, (pSum.get(p) ?? 0) + 1);
    if (t === p) correct++;
  }
  let tp = 0;
  let pp = 0;
  let tt = 0;
  for (const [label, c] of tSum) {
    tt += c * c;
    tp += c * (pSum.get(label) ?? 0);
  }
  for (const c of pSum.values()) pp += c * c;
  const covYtYp = correct * n - tp;
  const covYpYp = n * n - pp;
  const covYtYt = n * n - tt;
  const denom = covYpYp * covYtYt;
  return denom === 0 ? 0 : 100 * (covYtYp / Math.sqrt(denom));
}

/** Options for {@linkcode macroF1}. */
export interface MacroF1Options {
  /**
   * The classes averaged over (the authors pass `labels=range(num_classes)`, which matches
   * these strings). Predictions outside the list count only as misses of their target.
   *
   * @default {["0", "1", "2"]}
   */
  labels?: readonly string[];
}

/**
 * Macro-averaged F1 over fixed classes (scikit-learn
 * `fbeta_score(targets, predictions, beta=1, labels=..., average="macro")`, the authors'
 * `mean_multiclass_f1(num_classes=3)` for CB). A class with no targets and no predictions
 * scores 0 (sklearn's `zero_division`).
 *
 * @param predictions Decoded, stripped predictions.
 * @param targets Decoded, stripped targets.
 * @param options The classes to average over.
 * @returns `100 * mean over classes of F1`, in [0, 100].
 * @throws {RangeError} If the arrays differ in length or are empty, or `labels` is empty.
 *
 * @example
 * ```ts
 * import { macroF1 } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * // F1 per class: "0" 1, "1" 2/3, "2" 0 (never right) -> mean 5/9
 * assert.equal(macroF1(["0", "1", "1", "0"], ["0", "1", "2", "0"]), 55.55555555555555);
 * ```
 */
export function macroF1(
  predictions: readonly string[],
  targets: readonly string[],
  options: MacroF1Options = {},
): number {
  const n = checkPair("macroF1", predictions, targets);
  const labels = options.labels ?? ["0", "1", "2"];
  if (labels.length === 0) throw new RangeError("macroF1: labels must not be empty");
  let sum = 0;
  for (const label of labels) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (let i = 0; i < n; i++) {
      const isT = targets[i] === label;
      const isP = predictions[i] === label;
      if (isT && isP) tp++;
      else if (isP) fp++;
      else if (isT) fn++;
    }
    const denom = 2 * tp + fp + fn;
    sum += denom === 0 ? 0 : (2 * tp) / denom;
  }
  return 100 * (sum / labels.length);
}

// ---------------------------------------------------------------------------------------------
// Correlations

/** Sum with Neumaier compensation, so means stay accurate like numpy's pairwise sums. */
function accurateSum(x: ArrayLike<number>): number {
  let s = 0;
  let c = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    const t = s + v;
    c += Math.abs(s) >= Math.abs(v) ? (s - t) + v : (v - t) + s;
    s = t;
  }
  return s + c;
}

function isConstant(x: ArrayLike<number>): boolean {
  for (let i = 1; i < x.length; i++) if (x[i] !== x[0]) return false;
  return true;
}

function checkNumeric(fn: string, x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) {
    throw new RangeError(`${fn}: x and y differ in length (${x.length} vs ${y.length})`);
  }
  return x.length;
}

/**
 * Pearson's r exactly as scipy's `pearsonr` computes it (centre, scale by the largest
 * deviation, normalise, dot, clip to [-1, 1]; exactly ±1 for two points). NaN where scipy
 * gives NaN (a constant input, a NaN or infinite value) and for fewer than two points (where
 * scipy raises).
 *
 * @param x First sample.
 * @param y Second sample, as long as `x`.
 * @returns r in [-1, 1], or NaN.
 * @throws {RangeError} If `x` and `y` differ in length.
 *
 * @example
 * ```ts
 * import { pearsonR } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(pearsonR([1, 2, 3], [2, 4, 6]), 0.9999999999999998); // scipy gives the same
 * assert.ok(Number.isNaN(pearsonR([1, 2, 3], [5, 5, 5])));
 * ```
 */
export function pearsonR(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = checkNumeric("pearsonR", x, y);
  if (n < 2 || isConstant(x) || isConstant(y)) return NaN;
  const xMean = accurateSum(x) / n;
  const yMean = accurateSum(y) / n;
  const xm = new Float64Array(n);
  const ym = new Float64Array(n);
  let xMax = 0;
  let yMax = 0;
  for (let i = 0; i < n; i++) {
    xm[i] = x[i] - xMean;
    ym[i] = y[i] - yMean;
    // Math.max propagates NaN like numpy's max.
    xMax = Math.max(xMax, Math.abs(xm[i]));
    yMax = Math.max(yMax, Math.abs(ym[i]));
  }
  let xss = 0;
  let yss = 0;
  for (let i = 0; i < n; i++) {
    xss += (xm[i] / xMax) ** 2;
    yss += (ym[i] / yMax) ** 2;
  }
  const xNorm = xMax * Math.sqrt(xss);
  const yNorm = yMax * Math.sqrt(yss);
  let r = 0;
  for (let i = 0; i < n; i++) r += (xm[i] / xNorm) * (ym[i] / yNorm);
  r = Math.min(Math.max(r, -1), 1);
  if (n === 2 && !Number.isNaN(r)) r = Math.round(r);
  return r;
}

/**
 * Ranks 1..n with ties given their average rank (scipy `rankdata(method="average")`).
 *
 * @param x Values without NaN.
 * @returns The ranks, half-integers where values tie.
 *
 * @example
 * ```ts
 * import { rankAverage } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(Array.from(rankAverage([10, 20, 10, 30])), [1.5, 3, 1.5, 4]);
 * ```
 */
export function rankAverage(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a] - x[b] || a - b);
  const ranks = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && x[order[j + 1]] === x[order[i]]) j++;
    const rank = (i + 1 + j + 1) / 2;
    for (let k = i; k <= j; k++) ranks[order[k]] = rank;
    i = j + 1;
  }
  return ranks;
}

/**
 * Spearman's rho as scipy's `spearmanr` computes it: Pearson correlation (numpy `corrcoef`) of
 * tie-averaged ranks. NaN for fewer than two points, a constant input, or any NaN value.
 *
 * @param x First sample.
 * @param y Second sample, as long as `x`.
 * @returns rho in [-1, 1], or NaN.
 * @throws {RangeError} If `x` and `y` differ in length.
 *
 * @example
 * ```ts
 * import { spearmanR } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(spearmanR([1, 2, 3, 4], [1, 4, 9, 16]), 1);
 * ```
 */
export function spearmanR(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = checkNumeric("spearmanR", x, y);
  if (n < 2 || isConstant(x) || isConstant(y)) return NaN;
  for (let i = 0; i < n; i++) if (Number.isNaN(x[i]) || Number.isNaN(y[i])) return NaN;
  const rx = rankAverage(x);
  const ry = rankAverage(y);
  const mx = accurateSum(rx) / n;
  const my = accurateSum(ry) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const a = rx[i] - mx;
    const b = ry[i] - my;
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  // numpy corrcoef: c = cov / (n - 1); c[1,0] / stddev[1] / stddev[0], clipped.
  const c = sxy / (n - 1);
  const r = c / Math.sqrt(syy / (n - 1)) / Math.sqrt(sxx / (n - 1));
  return Math.min(Math.max(r, -1), 1);
}

/**
 * STS-B Pearson: both lists parsed with Python `float()` (unparsable → -1), then
 * `100 * pearsonr`, with NaN (e.g. constant predictions) reported as 0.
 *
 * @param predictions Decoded, stripped predictions.
 * @param targets Decoded, stripped targets.
 * @returns `100 * r`, in [-100, 100].
 * @throws {RangeError} If the arrays differ in length or are empty.
 *
 * @example
 * ```ts
 * import { pearson } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(pearson(["1.0", "2.0", "3.0"], ["1.2", "2.2", "3.2"]), 100);
 * assert.equal(pearson(["2.0", "2.0", "2.0"], ["1.2", "2.2", "3.2"]), 0); // constant prediction
 * ```
 */
export function pearson(predictions: readonly string[], targets: readonly string[]): number {
  checkPair("pearson", predictions, targets);
  const r = 100 *
    pearsonR(targets.map((t) => stringToFloat(t)), predictions.map((p) => stringToFloat(p)));
  return Number.isNaN(r) ? 0 : r;
}

/**
 * STS-B Spearman: both lists parsed with Python `float()` (unparsable → -1), then
 * `100 * spearmanr` with tie-averaged ranks, NaN reported as 0.
 *
 * @param predictions Decoded, stripped predictions.
 * @param targets Decoded, stripped targets.
 * @returns `100 * rho`, in [-100, 100].
 * @throws {RangeError} If the arrays differ in length or are empty.
 *
 * @example
 * ```ts
 * import { spearman } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(spearman(["1.0", "2.0", "4.0"], ["0.5", "0.6", "0.9"]), 100);
 * ```
 */
export function spearman(predictions: readonly string[], targets: readonly string[]): number {
  checkPair("spearman", predictions, targets);
  const r = 100 *
    spearmanR(targets.map((t) => stringToFloat(t)), predictions.map((p) => stringToFloat(p)));
  return Number.isNaN(r) ? 0 : r;
}

// ---------------------------------------------------------------------------------------------
// SQuAD (MRQA, ReCoRD)

const SQUAD_PUNCT = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
/** A "word" character as the `regex` module's `\b` sees it (Unicode TR#18). */
const WORD_CHAR = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]";
const ARTICLES = new RegExp(`(?<!${WORD_CHAR})(?:a|an|the)(?!${WORD_CHAR})`, "gu");

/**
 * The SQuAD answer normalisation of T5's `normalize_squad`: lowercase, delete ASCII
 * punctuation (Python's `string.punctuation`), replace the words a/an/the with a space, then
 * collapse whitespace to single spaces.
 *
 * @param s An answer string.
 * @returns The normalised answer.
 *
 * @example
 * ```ts
 * import { normalizeSquad } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * assert.equal(normalizeSquad("The  Eiffel-Tower!"), "eiffeltower");
 * assert.equal(normalizeSquad("an apple a day"), "apple day");
 * ```
 */
export function normalizeSquad(s: string): string {
  let out = "";
  for (const ch of s.toLowerCase()) if (!SQUAD_PUNCT.has(ch)) out += ch;
  return pySplit(out.replace(ARTICLES, " ")).join(" ");
}

function tokenF1(target: string, prediction: string): number {
  const predTokens = pySplit(prediction);
  const targetTokens = pySplit(target);
  const counts = new Map<string, number>();
  for (const t of targetTokens) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of predTokens) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / predTokens.length;
  const recall = same / targetTokens.length;
  return (2 * precision * recall) / (precision + recall);
}

/** SQuAD exact match and token F1, both on the 0-100 scale. */
export interface SquadScores {
  /** Exact match of normalised strings, best over the gold answers, averaged, times 100. */
  em: number;
  /** Token-overlap F1 of normalised strings, best over the gold answers, averaged, times 100. */
  f1: number;
}

/**
 * SQuAD exact match and F1 (T5's `qa_metrics` after `normalize_squad`): each prediction is
 * scored against every gold answer and the best score is kept. Token F1 is 0 when nothing
 * overlaps (so also when both are empty after normalisation).
 *
 * @param predictions Decoded predictions.
 * @param targets For each prediction, one gold answer or a non-empty list of them.
 * @returns `{ em, f1 }` in [0, 100].
 * @throws {RangeError} If the arrays differ in length or are empty, or a gold list is empty.
 *
 * @example
 * ```ts
 * import { squadScores } from "@adept/trainer";
 * import assert from "node:assert/strict";
 *
 * const predictions = ["the Eiffel Tower", "Paris France"];
 * const scores = squadScores(predictions, [["Eiffel Tower", "tower"], "Paris"]);
 * assert.deepEqual(scores, { em: 50, f1: 83.33333333333333 });
 * ```
 */
export function squadScores(
  predictions: readonly string[],
  targets: readonly (string | readonly string[])[],
): SquadScores {
  const n = checkPair("squadScores", predictions, targets);
  let em = 0;
  let f1 = 0;
  for (let i = 0; i < n; i++) {
    const golds = typeof targets[i] === "string" ? [targets[i] as string] : targets[i];
    if (golds.length === 0) {
      throw new RangeError(`squadScores: target ${i} has no gold answers`);
    }
    const p = normalizeSquad(predictions[i]);
    let bestEm = 0;
    let bestF1 = 0;
    for (const g of golds) {
      const t = normalizeSquad(g);
      if (t === p) bestEm = 1;
      bestF1 = Math.max(bestF1, tokenF1(t, p));
    }
    em += bestEm;
    f1 += bestF1;
  }
  return { em: 100 * (em / n), f1: 100 * (f1 / n) };
}

// ---------------------------------------------------------------------------------------------
// Registry

/** A metric over decoded, stripped strings, returning a score on the 0-100 scale. */
export type MetricFn = (predictions: readonly string[], targets: readonly string[]) => number;

/** The authors' names of the string metrics (their `TASK_TO_METRICS` entries). */
export type MetricName =
  | "accuracy"
  | "f1"
  | "matthews_correlation"
  | "pearson"
  | "spearmanr"
  | "f1_multiclass";

/**
 * The classification/regression metrics by the authors' names, so a task can list its
 * metrics as strings (the first one selects the checkpoint). SQuAD metrics are
 * {@linkcode squadScores}.
 */
export const METRICS: Readonly<Record<MetricName, MetricFn>> = Object.freeze({
  accuracy,
  f1: binaryF1,
  matthews_correlation: matthewsCorrelation,
  pearson,
  spearmanr: spearman,
  f1_multiclass: (p: readonly string[], t: readonly string[]) => macroF1(p, t),
});
