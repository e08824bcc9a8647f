import assert from "node:assert/strict";
import {
  accuracy,
  binaryF1,
  macroF1,
  matthewsCorrelation,
  METRICS,
  normalizeSquad,
  parsePythonFloat,
  pearson,
  pearsonR,
  pySplit,
  pyStrip,
  rankAverage,
  spearman,
  spearmanR,
  squadScores,
  stringToFloat,
} from "../../src/data/metrics.ts";
import fixtureJson from "../fixtures/metrics.json" with { type: "json" };

interface MetricsFixture {
  whitespace: number[];
  floats: [string, number | string | null][];
  classification: {
    name: string;
    predictions: string[];
    targets: string[];
    accuracy: number;
    f1: number | null;
    matthews_correlation: number;
    f1_multiclass: number;
  }[];
  correlation: {
    name: string;
    predictions: string[];
    targets: string[];
    pearson: number;
    spearmanr: number;
    authors_raise: boolean;
  }[];
  numeric: {
    name: string;
    x: number[];
    y: number[];
    pearson_r: number | null;
    spearman_r: number | null;
  }[];
  ranks: { x: number[]; ranks: number[] }[];
  squad: { name: string; predictions: string[]; targets: string[][]; em: number; f1: number }[];
  normalized: [string, string][];
}

const fixture = fixtureJson as unknown as MetricsFixture;

/** Absolute closeness on the 0-100 scale; the message names the case and the difference. */
function assertNear(got: number, want: number, where: string, tol = 1e-12): void {
  if (Number.isNaN(want)) {
    assert.ok(Number.isNaN(got), `${where}: got ${got}, want NaN`);
    return;
  }
  const diff = Math.abs(got - want);
  assert.ok(diff <= tol, `${where}: got ${got}, want ${want} (|diff| ${diff.toExponential(2)})`);
}

Deno.test("pySplit() and pyStrip() treat exactly Python's str.isspace() characters as whitespace", () => {
  const py = new Set(fixture.whitespace);
  for (let cp = 0; cp < 0x3100; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const ch = String.fromCodePoint(cp);
    const want = py.has(cp) ? ["a", "b"] : [`a${ch}b`];
    assert.deepEqual(pySplit(`a${ch}b`), want, `U+${cp.toString(16).padStart(4, "0")}`);
  }
  for (const cp of [0xfeff, 0x180e, 0x200b]) {
    assert.deepEqual(pySplit(`a${String.fromCodePoint(cp)}b`).length, 1, `U+${cp.toString(16)}`);
  }
  for (const cp of fixture.whitespace) {
    const ws = String.fromCodePoint(cp);
    assert.equal(pyStrip(`${ws}x y${ws}`), "x y", `U+${cp.toString(16)}`);
  }
  assert.deepEqual(pySplit(""), []);
  assert.deepEqual(pySplit(" \t "), []);
});

Deno.test("parsePythonFloat() agrees with Python float() on spaces, underscores, unicode digits, inf/nan and invalid strings", () => {
  for (const [s, want] of fixture.floats) {
    const got = parsePythonFloat(s);
    const where = `float(${JSON.stringify(s)})`;
    if (want === null) assert.equal(got, undefined, `${where} should raise ValueError`);
    else if (want === "nan") assert.ok(Number.isNaN(got), `${where}: got ${got}, want nan`);
    else if (want === "inf") assert.equal(got, Infinity, where);
    else if (want === "-inf") assert.equal(got, -Infinity, where);
    else assert.ok(Object.is(got, want), `${where}: got ${got}, want ${want}`);
  }
  assert.equal(stringToFloat("oops"), -1);
  assert.equal(stringToFloat("oops", 0), 0);
  assert.equal(stringToFloat("4.2"), 4.2);
});

Deno.test("accuracy, binaryF1, matthewsCorrelation and macroF1 match sklearn to 1e-12 with invalid strings, constants and single pairs", () => {
  for (const c of fixture.classification) {
    const { predictions: p, targets: t, name } = c;
    assertNear(accuracy(p, t), c.accuracy, `accuracy: ${name}`);
    if (c.f1 !== null) assertNear(binaryF1(p, t), c.f1, `binaryF1: ${name}`);
    assertNear(matthewsCorrelation(p, t), c.matthews_correlation, `matthews: ${name}`);
    assertNear(macroF1(p, t), c.f1_multiclass, `macroF1: ${name}`);
    assertNear(METRICS.f1_multiclass(p, t), c.f1_multiclass, `METRICS.f1_multiclass: ${name}`);
  }
});

Deno.test("pearson and spearman parse strings like Python float() (unparsable -> -1) and match scipy to 1e-12, NaN -> 0", () => {
  for (const c of fixture.correlation) {
    const { predictions: p, targets: t, name } = c;
    assertNear(pearson(p, t), c.pearson, `pearson: ${name}`);
    assertNear(spearman(p, t), c.spearmanr, `spearman: ${name}`);
  }
  const onePair = fixture.correlation.find((c) => c.authors_raise);
  assert.ok(onePair, "the fixture has the one-pair case where scipy's pearsonr raises");
  assert.equal(pearson(onePair.predictions, onePair.targets), 0);
});

Deno.test("pearsonR and spearmanR match scipy pearsonr/spearmanr on numbers (NaN where scipy gives NaN or raises)", () => {
  for (const c of fixture.numeric) {
    assertNear(pearsonR(c.x, c.y), c.pearson_r ?? NaN, `pearsonR: ${c.name}`, 1e-14);
    assertNear(spearmanR(c.x, c.y), c.spearman_r ?? NaN, `spearmanR: ${c.name}`, 1e-14);
  }
  assert.ok(Number.isNaN(pearsonR([], [])));
  assert.ok(Number.isNaN(spearmanR([1, NaN, 3], [1, 2, 3])));
  assert.equal(spearmanR([1, Infinity, 3], [1, 2, 3]), 0.5);
});

Deno.test("rankAverage() gives tied values their average rank like scipy rankdata", () => {
  for (const { x, ranks } of fixture.ranks) {
    assert.deepEqual(Array.from(rankAverage(x)), ranks, JSON.stringify(x));
  }
});

Deno.test("normalizeSquad() matches T5's normalize_squad (regex-module word boundaries) on unicode, marks and punctuation", () => {
  for (const [s, want] of fixture.normalized) {
    assert.equal(normalizeSquad(s), want, JSON.stringify(s));
  }
});

Deno.test("squadScores() matches T5 qa_metrics EM and F1 to 1e-12, taking the best gold answer", () => {
  for (const c of fixture.squad) {
    const got = squadScores(c.predictions, c.targets);
    assertNear(got.em, c.em, `em: ${c.name}`);
    assertNear(got.f1, c.f1, `f1: ${c.name}`);
  }
  // A single gold string is the same as a one-element list.
  assert.deepEqual(squadScores(["Paris"], ["paris!"]), { em: 100, f1: 100 });
});

Deno.test("every metric rejects mismatched lengths and empty input, naming the sizes", () => {
  const two = ["0", "1"];
  const fns = { accuracy, binaryF1, matthewsCorrelation, macroF1, pearson, spearman };
  for (const [name, fn] of Object.entries(fns)) {
    assert.throws(() => fn(two, ["1"]), new RegExp(`${name}: .*differ in length \\(2 vs 1\\)`));
    assert.throws(() => fn([], []), new RegExp(`${name}: needs at least one`));
  }
  assert.throws(() => squadScores(["a"], []), /squadScores: .*\(1 vs 0\)/);
  assert.throws(() => squadScores(["a"], [[]]), /target 0 has no gold answers/);
  assert.throws(() => pearsonR([1, 2], [1]), /x and y differ in length \(2 vs 1\)/);
});

Deno.test('binaryF1() rejects a target other than "0"/"1", quoting it and its position', () => {
  assert.throws(() => binaryF1(["1", "0"], ["1", "yes"]), /got "yes" at 1/);
  assert.throws(() => macroF1(["1"], ["1"], { labels: [] }), /labels must not be empty/);
});

Deno.test("METRICS maps the authors' metric names to these functions", () => {
  assert.deepEqual(Object.keys(METRICS).sort(), [
    "accuracy",
    "f1",
    "f1_multiclass",
    "matthews_correlation",
    "pearson",
    "spearmanr",
  ]);
  assert.equal(METRICS.accuracy, accuracy);
  assert.equal(METRICS.f1, binaryF1);
  assert.equal(METRICS.matthews_correlation, matthewsCorrelation);
  assert.equal(METRICS.pearson, pearson);
  assert.equal(METRICS.spearmanr, spearman);
});
