#!/usr/bin/env python3
"""Writes tests/fixtures/metrics.json: reference scores for src/data/metrics.ts.

Dev-only (needs numpy, scipy, scikit-learn and `regex`); the project never runs Python.
Usage: /tmp/ref/bin/python tools/make_metrics_fixture.py

The reference functions below restate the authors' metrics (DePT/ADePT src/metrics.py and the
T5 qa_utils.py that ATTEMPT vendors, which uses the `regex` module) on top of the same
library calls: sklearn accuracy_score / f1_score / matthews_corrcoef / fbeta_score, scipy
pearsonr / spearmanr / rankdata. Cases include ties, invalid strings, constant inputs (NaN
correlations), one- and two-element inputs and Python float() syntax corner cases.
"""

import collections
import json
import math
import os
import random
import string
import sys
import warnings

import numpy as np
import regex
import scipy
import scipy.stats
import sklearn
import sklearn.metrics

warnings.simplefilter("ignore")

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "metrics.json")

# ------------------------------------------------------------------------------------------
# The authors' metrics, restated


def string_to_float(s, default=-1.0):
    try:
        return float(s)
    except ValueError:
        return default


def ref_accuracy(preds, targets):
    via_numpy = 100 * float((np.array(preds) == np.array(targets)).mean())
    via_sklearn = 100 * sklearn.metrics.accuracy_score(targets, preds)
    assert via_numpy == via_sklearn, (via_numpy, via_sklearn)
    return via_numpy


def ref_binary_f1(preds, targets):
    """f1_score_with_invalid: invalid predictions become the opposite of their target."""
    t = np.asarray(targets)
    p = np.asarray(preds, dtype=object).copy()
    invalid = np.logical_and(p != "0", p != "1")
    p[invalid] = ["0" if x == "1" else "1" for x in t[invalid]]
    return 100 * float(sklearn.metrics.f1_score(t.astype(np.int32), p.astype(np.int32)))


def ref_matthews(preds, targets):
    return 100 * float(sklearn.metrics.matthews_corrcoef(targets, preds))


def ref_macro_f1(preds, targets):
    return 100 * float(
        sklearn.metrics.fbeta_score(targets, preds, beta=1, labels=range(3), average="macro")
    )


def ref_pearson(preds, targets):
    t = [string_to_float(x) for x in targets]
    p = [string_to_float(x) for x in preds]
    try:
        r = 100 * scipy.stats.pearsonr(t, p)[0]
    except ValueError:  # fewer than two pairs: the authors' code raises; we report 0
        return 0.0, True
    return (0.0 if math.isnan(r) else float(r)), False


def ref_spearman(preds, targets):
    t = [string_to_float(x) for x in targets]
    p = [string_to_float(x) for x in preds]
    r = 100 * scipy.stats.spearmanr(t, p)[0]
    return 0.0 if math.isnan(r) else float(r)


def normalize_squad(text):
    """T5 `_normalize_answer(text, string.punctuation, "")` with the `regex` module."""
    text = text.lower()
    text = "".join("" if ch in set(string.punctuation) else ch for ch in text)
    text = regex.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(target, prediction):
    pred_tokens = prediction.split()
    target_tokens = target.split()
    common = collections.Counter(pred_tokens) & collections.Counter(target_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(target_tokens)
    return 2 * precision * recall / (precision + recall)


def ref_squad(preds, targets):
    targets = [[normalize_squad(g) for g in golds] for golds in targets]
    preds = [normalize_squad(p) for p in preds]
    em = np.mean([max(g == p for g in golds) for p, golds in zip(preds, targets)])
    f1 = np.mean([max(token_f1(g, p) for g in golds) for p, golds in zip(preds, targets)])
    return 100 * float(em), 100 * float(f1)


# ------------------------------------------------------------------------------------------
# Cases

INVALID = ["", "2", "yes", "1.0", " 1", "01", "True", "none", "0 1", "-1"]


def binary_case(rng, n, agree, invalid_rate=0.0, p_one=0.5):
    targets = ["1" if rng.random() < p_one else "0" for _ in range(n)]
    preds = []
    for t in targets:
        u = rng.random()
        if u < invalid_rate:
            preds.append(rng.choice(INVALID))
        elif u < invalid_rate + agree * (1 - invalid_rate):
            preds.append(t)
        else:
            preds.append("0" if t == "1" else "1")
    return preds, targets


def ternary_case(rng, n, agree, invalid_rate=0.0, classes=("0", "1", "2")):
    targets = [rng.choice(classes) for _ in range(n)]
    preds = []
    for t in targets:
        u = rng.random()
        if u < invalid_rate:
            preds.append(rng.choice(INVALID + ["3", "entailment"]))
        elif u < invalid_rate + agree * (1 - invalid_rate):
            preds.append(t)
        else:
            preds.append(rng.choice(classes))
    return preds, targets


def classification_cases(rng):
    cases = []

    def add(name, preds, targets):
        binary = all(t in ("0", "1") for t in targets)
        cases.append({
            "name": name,
            "predictions": preds,
            "targets": targets,
            "accuracy": ref_accuracy(preds, targets),
            "f1": ref_binary_f1(preds, targets) if binary else None,
            "matthews_correlation": ref_matthews(preds, targets),
            "f1_multiclass": ref_macro_f1(preds, targets),
        })

    add("binary random, 80% right, n=200", *binary_case(rng, 200, 0.8))
    add("binary with 15% invalid strings, n=300", *binary_case(rng, 300, 0.7, 0.15))
    add("binary, every prediction invalid, n=12", *binary_case(rng, 12, 0.5, 1.0))
    add("binary, perfect, n=64", *binary_case(rng, 64, 1.0))
    add("binary, always wrong, n=64", *binary_case(rng, 64, 0.0))
    t = binary_case(rng, 50, 1.0)[1]
    add("binary, constant prediction '1', n=50", ["1"] * 50, t)
    add("binary, constant prediction '0', n=50", ["0"] * 50, t)
    add("binary, all targets and predictions '0' (F1 0/0)", ["0"] * 9, ["0"] * 9)
    add("binary, all targets '1', all right", ["1"] * 7, ["1"] * 7)
    add("binary, targets all '0', some predictions '1'", ["0", "1", "0", "1"], ["0"] * 4)
    add("one pair, right", ["1"], ["1"])
    add("one pair, wrong", ["0"], ["1"])
    add("one pair, invalid prediction, target '0'", ["x"], ["0"])
    add("one pair, empty prediction, target '1'", [""], ["1"])
    add("two pairs", ["1", "0"], ["0", "0"])
    add("cola-like imbalanced (70% '1'), n=1043", *binary_case(rng, 1043, 0.82, 0.01, 0.7))
    add("multirc-like, n=1000", *binary_case(rng, 1000, 0.75, 0.005, 0.43))
    add("cb-like 3 classes with invalid strings, n=56", *ternary_case(rng, 56, 0.85, 0.05))
    add("3 classes, class '2' absent from targets and predictions", *ternary_case(
        rng, 40, 0.7, 0.0, ("0", "1")))
    add("3 classes, class '2' only predicted", ["2", "0", "1", "2", "0"], ["0", "0", "1", "1", "0"])
    add("3 classes, perfect, n=30", *ternary_case(rng, 30, 1.0))
    add("3 classes, constant prediction", ["1"] * 20, ternary_case(rng, 20, 1.0)[1])
    add("3 classes, every prediction invalid", ["maybe"] * 6, ["0", "1", "2", "0", "1", "2"])
    return cases


STSB_LABELS = [str(np.round(x, decimals=1)) for x in np.arange(0, 5.2, 0.2)]


def stsb_case(rng, n, noise, invalid_rate=0.0, values=STSB_LABELS):
    targets = [rng.choice(values) for _ in range(n)]
    preds = []
    for t in targets:
        if rng.random() < invalid_rate:
            preds.append(rng.choice(["", "abc", "3.8.1", "five", "2,4", "-"]))
        else:
            v = min(5.0, max(0.0, float(t) + rng.gauss(0, noise)))
            preds.append(str(np.round(round(v * 5) / 5, decimals=1)))
    return preds, targets


def correlation_cases(rng):
    cases = []

    def add(name, preds, targets):
        p, raises = ref_pearson(preds, targets)
        cases.append({
            "name": name,
            "predictions": preds,
            "targets": targets,
            "pearson": p,
            "spearmanr": ref_spearman(preds, targets),
            "authors_raise": raises,
        })

    add("stsb-like, noisy, n=300", *stsb_case(rng, 300, 0.8))
    add("stsb-like with invalid strings (-> -1), n=200", *stsb_case(rng, 200, 0.5, 0.1))
    add("heavy ties, 3 distinct values, n=90", *stsb_case(rng, 90, 1.0, 0.0, ["1.0", "2.0", "3.0"]))
    add("stsb-like, n=600", *stsb_case(rng, 600, 0.6, 0.002))
    t = stsb_case(rng, 25, 0.5)[1]
    add("constant prediction (NaN -> 0)", ["2.4"] * 25, t)
    add("every prediction unparsable (constant -1, NaN -> 0)", ["n/a"] * 25, t)
    add("constant target (NaN -> 0)", stsb_case(rng, 10, 0.5)[0], ["3.0"] * 10)
    add("two pairs, same direction", ["1.0", "2.0"], ["0.4", "4.8"])
    add("two pairs, opposite direction", ["2.0", "1.0"], ["0.4", "4.8"])
    add("one pair (scipy pearsonr raises; 0 here)", ["1.0"], ["2.0"])
    add(
        "python float() syntax: spaces, underscores, unicode digits, signs",
        [" 2.5", "1_0", "\u0663", "+.5", "1.", "1e0", "\u00a04.2\u3000", "0_0.2_5", "-0"],
        ["2.4", "5.0", "3.0", "0.6", "1.2", "1.0", "4.0", "0.2", "0.0"],
    )
    add(
        "infinite prediction (pearson NaN -> 0, spearman ranks it last)",
        ["1.0", "Infinity", "3.0", "-inf", "2.0"],
        ["1.2", "4.4", "3.0", "0.0", "2.2"],
    )
    add(
        "NaN prediction (both NaN -> 0)",
        ["1.0", "nan", "3.0", "2.0"],
        ["1.2", "4.4", "3.0", "2.2"],
    )
    return cases


def numeric_cases(rng):
    cases = []

    def add(name, x, y):
        r = scipy.stats.pearsonr(x, y)[0] if len(x) >= 2 else float("nan")
        s = scipy.stats.spearmanr(x, y)[0]
        cases.append({
            "name": name,
            "x": x,
            "y": y,
            "pearson_r": None if math.isnan(r) else float(r),
            "spearman_r": None if math.isnan(s) else float(s),
        })

    x = [rng.gauss(0, 1) for _ in range(37)]
    add("gaussian, n=37", x, [v * 0.5 + rng.gauss(0, 1) for v in x])
    x = [1e6 + rng.gauss(0, 1) for _ in range(50)]
    add("large offset 1e6, n=50", x, [v + rng.gauss(0, 2) for v in x])
    add("integer ties", [1, 2, 2, 3, 3, 3, 4], [2, 2, 1, 5, 5, 4, 4])
    add("negative zero ties zero", [0.0, -0.0, 1.0, 2.0], [3.0, 1.0, 2.0, 2.0])
    add("monotone but not linear", [1, 2, 3, 4, 5], [1, 4, 9, 16, 25])
    add("exactly reversed", [1, 2, 3, 4], [8, 6, 4, 2])
    add("two points", [0.3, 0.1], [5.0, 7.0])
    add("one point", [1.0], [2.0])
    add("constant x", [2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    return cases


def rank_cases():
    arrays = [
        [10, 20, 10, 30],
        [3.0, 1.0, 2.0],
        [5, 5, 5, 5],
        [0.0, -0.0, 1.0, -1.0, 1.0],
        [2.2, 1.1, 2.2, 3.3, 1.1, 2.2],
        [7],
    ]
    return [{"x": a, "ranks": scipy.stats.rankdata(a, method="average").tolist()} for a in arrays]


def float_cases():
    strings = [
        "1", " 1 ", "\t2.5\n", "1_000", "1__0", "_1", "1_", "1_.5", "1._5", "1e1_0", "1e_10",
        ".5", "5.", ".", "+.5", "-0", "-0.0", "1e400", "-1e400", "1e-400", "inf", "-Inf",
        "+INFINITY", "infinit", "infinityy", "nan", "-NaN", "+nan", "nan(1)", "0x10", "1,5",
        "\u0661\u0662\u0663", "\u0661.\u0665", "\U0001d7cf\U0001d7d0", "\u0e53", "\uff11\uff12",
        "\u00a01\u00a0", "\u20281\u2029", "\x1c1\x1f", "\ufeff1", "1\x85", "", " ", "3.8.1",
        "abc", "1 2", "\u22121", "\u00b2", "1e", "e1", "1e+", "1E+05", "0.1", "0.30000000000000004",
        "123456789012345678901234567890", "1.7976931348623157e308", "4.9e-324", "2.4", "3.8",
        "00012", "1.5e-3", "\u0967\u0966",
    ]
    out = []
    for s in strings:
        try:
            v = float(s)
            if math.isnan(v):
                v = "nan"
            elif math.isinf(v):
                v = "inf" if v > 0 else "-inf"
        except ValueError:
            v = None
        out.append([s, v])
    return out


def squad_cases():
    cases = []

    def add(name, preds, targets):
        em, f1 = ref_squad(preds, targets)
        cases.append({"name": name, "predictions": preds, "targets": targets, "em": em, "f1": f1})

    add(
        "articles, punctuation and case",
        ["The Eiffel Tower!", "an apple a day", "Paris, France", "theatre", "1,000 km"],
        [["Eiffel Tower"], ["apple day"], ["Paris"], ["the theatre"], ["1000 km"]],
    )
    add(
        "best over several gold answers",
        ["Denver Broncos", "Santa Clara", "gold"],
        [["Broncos", "Denver Broncos"], ["Levi's Stadium", "Santa Clara, California"], ["golden"]],
    )
    add(
        "repeated tokens count with multiplicity",
        ["x x y", "x y y", "a b c d"],
        [["x y y"], ["x x x y"], ["b d"]],
    )
    add(
        "empty prediction, empty-after-normalisation gold",
        ["", "the", "   ", "a"],
        [["the"], ["an"], ["answer"], [""]],
    )
    add(
        "unicode word boundaries, marks and whitespace",
        [
            "caf\u00e9 the end", "e\u0301the", "\u00b2the", "the_end", "the\u203fend",
            "\u216bthe", "\u0130stanbul", "\u03a3\u0391\u03a3", "\u3000the\u00a0answer",
            "\x1cword\x1d", "\u201cquoted\u201d \u2014 text", "na\u00efve the", "\u01c5a",
        ],
        [
            ["caf\u00e9 end"], ["e\u0301"], ["\u00b2"], ["the_end"], ["the\u203fend"],
            ["\u216b"], ["i\u0307stanbul"], ["\u03c3\u03b1\u03c2"], ["answer"], ["word"],
            ["quoted text"], ["naive"], ["\u01c6a"],
        ],
    )
    norms = sorted({s for c in cases for s in c["predictions"] + sum(c["targets"], [])})
    return cases, [[s, normalize_squad(s)] for s in norms]


def main():
    rng = random.Random(20250101)
    squad, normalized = squad_cases()
    fixture = {
        "about": "Reference scores (0-100) from the authors' metric definitions on "
        "sklearn/scipy; written by tools/make_metrics_fixture.py.",
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "sklearn": sklearn.__version__,
            "regex": regex.__version__,
        },
        "whitespace": [c for c in range(0x110000) if chr(c).isspace()],
        "floats": float_cases(),
        "classification": classification_cases(rng),
        "correlation": correlation_cases(rng),
        "numeric": numeric_cases(rng),
        "ranks": rank_cases(),
        "squad": squad,
        "normalized": normalized,
    }
    with open(OUT, "w") as f:
        f.write(dump(fixture))
    print(f"wrote {OUT}", file=sys.stderr)


def dump(obj):
    """JSON with one list item per line below the top level; strict (no NaN)."""
    lines = []
    for i, (k, v) in enumerate(obj.items()):
        sep = "," if i < len(obj) - 1 else ""
        enc = lambda x: json.dumps(x, separators=(",", ":"), allow_nan=False)  # noqa: E731
        if isinstance(v, list) and v and isinstance(v[0], (dict, list)):
            items = ["  " + enc(x) for x in v]
            lines.append(f" {json.dumps(k)}: [\n" + ",\n".join(items) + f"\n ]{sep}")
        else:
            lines.append(f" {json.dumps(k)}: {enc(v)}{sep}")
    return "{\n" + "\n".join(lines) + "\n}\n"


if __name__ == "__main__":
    main()
