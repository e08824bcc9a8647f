#!/usr/bin/env python3
"""Write the expected source/target strings of the built-in tasks, from the authors' own rules.

DEV-ONLY. The project never runs Python; this script made tests/fixtures/datasets/
task_formats.json and is kept so it can be regenerated and audited.

    /tmp/ref/bin/python tools/make_dataset_fixtures.py [--out tests/fixtures/datasets]

The preprocessors below restate DePT/ADePT `src/tasks.py` (from ATTEMPT) line for line, with
the same libraries (`regex` as `re`, numpy): `seq2seq_format` joins the parts with spaces
(add_prefix=False), targets are `str(label)`, STS-B uses `round_stsb_target`, MultiRC
`remove_markup`, WSC T5's `_mark_span`. Rows are synthetic but shaped like the Hugging Face
datasets' (nyu-mll/glue, aps/super_glue), with the awkward cases: empty fields, markup, spans
with regex metacharacters, span indices before and after each other, STS-B scores at rounding
ties (float32 values, as the parquet files store them).

The parquet fixtures of the readers' tests are written by tools/make_dataset_fixtures.ts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import regex as re


def seq2seq_format(sources, targets):
    return {"source": " ".join(sources), "target": " ".join(targets)}


def round_stsb_target(label):
    return np.round((label * 5) / 5, decimals=1)


def remove_markup(text):
    text = re.sub("<br>", " ", text)
    text = re.sub("<(/)?b>", "", text)
    return text


def mark_span(text, span_str, span_idx, mark):
    pattern_tmpl = r"^((?:\S+\s){N})(W)"
    pattern = re.sub("N", str(span_idx), pattern_tmpl)
    pattern = re.sub("W", span_str, pattern)
    return re.sub(pattern, r"\1{0} \2 {0}".format(mark), text)


def pair(a, b):
    return lambda ex: seq2seq_format([f"{a}:", ex[a], f"{b}:", ex[b]], [str(ex["label"])])


PREPROCESSORS = {
    "mnli": pair("premise", "hypothesis"),
    "qqp": pair("question1", "question2"),
    "qnli": pair("question", "sentence"),
    "sst2": lambda ex: seq2seq_format(["sentence:", ex["sentence"]], [str(ex["label"])]),
    "stsb": lambda ex: seq2seq_format(
        ["sentence1:", ex["sentence1"], "sentence2:", ex["sentence2"]],
        [str(round_stsb_target(ex["label"]))],
    ),
    "mrpc": pair("sentence1", "sentence2"),
    "rte": pair("sentence1", "sentence2"),
    "cola": lambda ex: seq2seq_format(["sentence:", ex["sentence"]], [str(ex["label"])]),
    "multirc": lambda ex: seq2seq_format(
        [
            "question:",
            remove_markup(ex["question"]),
            "answer:",
            remove_markup(ex["answer"]),
            "paragraph:",
            remove_markup(ex["paragraph"]),
        ],
        [str(ex["label"])],
    ),
    "boolq": pair("question", "passage"),
    "wic": lambda ex: seq2seq_format(
        ["sentence1:", ex["sentence1"], "sentence2:", ex["sentence2"], "word:", ex["word"]],
        [str(ex["label"])],
    ),
    "cb": pair("premise", "hypothesis"),
}


def wsc(ex):
    text = ex["text"]
    text = mark_span(text, ex["span1_text"], ex["span1_index"], "*")
    span2_index = ex["span2_index"] + 2 * int(ex["span1_index"] < ex["span2_index"])
    text = mark_span(text, ex["span2_text"], span2_index, "#")
    return seq2seq_format(["text:", text], [str(ex["label"])])


PREPROCESSORS["wsc"] = wsc

F32 = lambda x: float(np.float32(x))  # noqa: E731  (what the float32 parquet column holds)

ROWS = {
    "mnli": [
        {"premise": "The new rights are nice enough", "hypothesis": "Everyone really likes the newest benefits ", "label": 1},
        {"premise": "", "hypothesis": "An empty premise.", "label": 2},
    ],
    "qqp": [{"question1": "How do I learn Python?", "question2": "What's the best way to learn \"Python\"?", "label": 1}],
    "qnli": [{"question": "When did it end?", "sentence": "It ended in 1945.", "label": 0}],
    "sst2": [
        {"sentence": "it 's a charming and often affecting journey . ", "label": 1},
        {"sentence": "unflinchingly bleak and desperate ", "label": 0},
    ],
    "stsb": [
        {"sentence1": "A plane is taking off.", "sentence2": "An air plane is taking off.", "label": F32(l)}
        for l in [5.0, 3.8, 3.75, 0.25, 0.75, 1.25, 2.5, 4.333, 0.0, 2.05, 1.15, 3.65, 4.95, 0.6]
    ],
    "mrpc": [{"sentence1": "Amrozi accused his brother , whom he called \" the witness \" .", "sentence2": "Referring to him as only \" the witness \" , Amrozi accused his brother .", "label": 1}],
    "rte": [{"sentence1": "No Weapons of Mass Destruction Found in Iraq Yet.", "sentence2": "Weapons of Mass Destruction Found in Iraq.", "label": 1}],
    "cola": [{"sentence": "Our friends won't buy this analysis, let alone the next one we propose.", "label": 1}],
    "multirc": [
        {
            "paragraph": "<b>Sent 1: </b>While this process moved along, diplomacy continued its rounds.<br><b>Sent 2: </b>Direct pressure on the Taliban had proved unsuccessful.<br>",
            "question": "What did the <b>high-level</b> effort fail to do?",
            "answer": "Persuade <br>the Taliban",
            "label": 0,
        }
    ],
    "boolq": [{"question": "do iran and afghanistan speak the same language", "passage": "Persian language -- Persian (/ˈpɜːrʒən, -ʃən/), also known by its endonym Farsi.", "label": 1}],
    "wic": [{"word": "place", "sentence1": "Do you want to come over to my place later?", "sentence2": "A political system with no place for the less prominent groups.", "label": 0}],
    "wsc": [
        {"text": "This is a test sentence .", "span1_text": "test", "span1_index": 3, "span2_text": "This", "span2_index": 0, "label": 0},
        {"text": "Mark told Pete many lies about himself, which he included in his book. He should have been more truthful.", "span1_text": "Mark", "span1_index": 0, "span2_text": "He", "span2_index": 13, "label": 0},
        {"text": "Mr. Taylor gave the book to Dr. Jones because he was finished with it.", "span1_text": "Mr. Taylor", "span1_index": 0, "span2_text": "he", "span2_index": 8, "label": 1},
        {"text": "The trophy doesn't fit into the brown suitcase because it is too large.", "span1_text": "the brown suitcase", "span1_index": 5, "span2_text": "it", "span2_index": 9, "label": 0},
        {"text": "The man couldn't lift his son because he was so weak.", "span1_text": "The man", "span1_index": 0, "span2_text": "his", "span2_index": 3, "label": 1},
        {"text": "Her friends said she looks good.", "span1_text": "she", "span1_index": 3, "span2_text": "Her", "span2_index": 0, "label": 0},
        {"text": "Where the span text is wrong nothing is marked.", "span1_text": "absent", "span1_index": 2, "span2_text": "span", "span2_index": 2, "label": 0},
    ],
    "cb": [{"premise": "It was a complex language. Not written down but handed down.", "hypothesis": "the language was peeled down", "label": 0}],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/datasets")
    args = ap.parse_args()
    stsb_labels = [str(np.round(label, decimals=1)) for label in np.arange(0, 5.2, 0.2)]
    out = {
        "tasks": {
            name: [{"row": row, **PREPROCESSORS[name](row)} for row in rows]
            for name, rows in ROWS.items()
        },
        "stsb_labels": stsb_labels,
    }
    path = Path(args.out) / "task_formats.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(path)


if __name__ == "__main__":
    main()
