#!/usr/bin/env python3
"""Build the default preset of `deno task train`: a tiny pretrained T5 and an adaptation task.

DEV-ONLY. The project never runs Python; this script made the committed files under
tasks/default/ and is kept so they can be regenerated and audited.

    /tmp/ref/bin/python tools/make_default_model.py [--out tasks/default] [--steps 1500] [--lr 1e-2]

It writes:

    <out>/model/config.json             T5 v1.0 config (ReLU FFN, tied embeddings), as
                                        transformers' save_pretrained writes it
    <out>/model/generation_config.json  idem
    <out>/model/model.safetensors       F32 weights, as save_pretrained writes them
    <out>/model/tokenizer.json          word-level Hugging Face tokenizer (72 tokens)
    <out>/model/tokenizer_config.json   T5-style special tokens
    <out>/data/{train,validation,test}.jsonl
                                        the adaptation task: {"words": ..., "translation": ...}

The model is a T5 v1.0 of d_model 48 (2 + 2 layers, 133,312 parameters) pretrained from
scratch on a mixture of ten synthetic instruction-following tasks over a 72-word vocabulary
("reverse the words: cat dog sun" -> "sun dog cat", "count the words: ..." -> "five", ...).

The adaptation task is one the model never saw: translation through a NEW word dictionary, with
no instruction in the source ("cat dog sun" -> three other words). The frozen model cannot do it
(0% exact match); prompt tuning alone cannot either; ADePT's token-shared offset network can
remap every input embedding, and reaches >90%. tools/check_default_preset.py measures that.

Determinism: every random draw comes from fixed seeds (Python's `random.Random` for data,
`torch.manual_seed` for the weights), and torch runs on one thread, so the same versions on the
same kind of CPU give the same files bit for bit. Other torch builds or CPUs may round
differently, which can change the weights slightly (not the data files).

Runtime: 4 to 6 minutes on one core of a 2-core x86-64 CPU: pretraining is 1500 steps of batch
256 at 0.15-0.2 s each (225 s on an idle machine, 317 s with other jobs running); the greedy
evaluations and the checks of the saved files take another 10 s or so. Versions used:
torch 2.13.0+cpu, transformers 5.18.0, tokenizers 0.23.2, Python 3.11 (tasks/default/README.md).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

import tokenizers
import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
    get_linear_schedule_with_warmup,
)

# ---------------------------------------------------------------------------------------------
# Vocabulary: 72 tokens (a multiple of 8, so the embedding needs no padding rows)

SPECIALS = ["<pad>", "</s>", "<unk>"]  # ids 0, 1, 2, as in T5
PAD_ID, EOS_ID, UNK_ID = 0, 1, 2

# Words of the instructions, plus the answer words of the counting, parity and sentiment tasks.
INSTRUCTION_WORDS = [
    ":", "copy", "the", "words", "reverse", "sort", "remove", "repeated", "count", "first",
    "word", "last", "is", "even", "or", "odd", "translate", "sentiment", "of",
]  # fmt: skip
NUMBER_WORDS = {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}
LABEL_WORDS = ["positive", "negative"]

# The content words every task's sequences are drawn from. The first twelve carry sentiment.
POSITIVE_WORDS = ["good", "happy", "great", "love", "nice", "fun"]
NEGATIVE_WORDS = ["bad", "sad", "awful", "hate", "poor", "dull"]
NEUTRAL_WORDS = [
    "cat", "dog", "bird", "fish", "tree", "house", "car", "book", "red", "blue",
    "green", "sun", "moon", "star", "river", "hill", "apple", "bread", "milk", "door",
    "chair", "king", "ship", "road", "rain", "snow", "gold", "stone", "lamp", "bell",
]  # fmt: skip
CONTENT_WORDS = POSITIVE_WORDS + NEGATIVE_WORDS + NEUTRAL_WORDS  # 42 words

VOCAB = SPECIALS + INSTRUCTION_WORDS + list(NUMBER_WORDS.values()) + LABEL_WORDS + CONTENT_WORDS
assert len(VOCAB) == len(set(VOCAB)) == 72, len(VOCAB)

MIN_WORDS, MAX_WORDS = 3, 8  # content words per sequence
MODEL_MAX_LENGTH = 128  # written to tokenizer_config.json; sources here are at most 16 tokens

# ---------------------------------------------------------------------------------------------
# Model and pretraining

MODEL_CONFIG = dict(
    vocab_size=len(VOCAB),
    d_model=48,
    d_kv=12,
    num_heads=4,
    d_ff=192,
    num_layers=2,
    num_decoder_layers=2,
    feed_forward_proj="relu",  # T5 v1.0
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    dropout_rate=0.0,
    layer_norm_epsilon=1e-6,
    initializer_factor=1.0,
    tie_word_embeddings=True,
    pad_token_id=PAD_ID,
    eos_token_id=EOS_ID,
    decoder_start_token_id=PAD_ID,
)

SEED = 20250101
PRETRAIN_STEPS = 1500
PRETRAIN_BATCH = 256
PRETRAIN_LR = 1e-2
PRETRAIN_WARMUP = 50  # linear warmup, then linear decay to 0 at the last step
EVAL_PER_TASK = 200  # held-out pretraining examples per task
MAX_NEW_TOKENS = 20

# ---------------------------------------------------------------------------------------------
# Adaptation task

ADAPT_SIZES = {"train": 2500, "validation": 200, "test": 500}
ADAPT_SEED = 7


def derangement(words: list[str], rng: random.Random, avoid: dict[str, str] | None = None):
    """A random bijection of `words` onto itself with no fixed point, and, when `avoid` is given,
    mapping no word to what `avoid` maps it to."""
    while True:
        image = words[:]
        rng.shuffle(image)
        if all(a != b and (avoid is None or avoid[a] != b) for a, b in zip(words, image)):
            return dict(zip(words, image))


# The pretraining task's dictionary, and the adaptation task's (different for every word).
PRETRAIN_DICT = derangement(CONTENT_WORDS, random.Random(101))
ADAPT_DICT = derangement(CONTENT_WORDS, random.Random(202), avoid=PRETRAIN_DICT)

# ---------------------------------------------------------------------------------------------
# The pretraining tasks. Each takes a list of content words and returns the target string.


def sentiment(words: list[str]) -> str:
    pos = sum(w in POSITIVE_WORDS for w in words)
    neg = sum(w in NEGATIVE_WORDS for w in words)
    assert pos != neg
    return "positive" if pos > neg else "negative"


def dedupe(words: list[str]) -> list[str]:
    return list(dict.fromkeys(words))


# name: (instruction, target function). The source is "<instruction> <words>".
TASKS = {
    "copy": ("copy the words:", lambda w: " ".join(w)),
    "reverse": ("reverse the words:", lambda w: " ".join(reversed(w))),
    "sort": ("sort the words:", lambda w: " ".join(sorted(w))),
    "dedupe": ("remove repeated words:", lambda w: " ".join(dedupe(w))),
    "count": ("count the words:", lambda w: NUMBER_WORDS[len(w)]),
    "first": ("first word:", lambda w: w[0]),
    "last": ("last word:", lambda w: w[-1]),
    "parity": ("is the count even or odd:", lambda w: "even" if len(w) % 2 == 0 else "odd"),
    "translate": ("translate the words:", lambda w: " ".join(PRETRAIN_DICT[x] for x in w)),
    "sentiment": ("sentiment of the words:", sentiment),
}


def sample_words(task: str, rng: random.Random) -> list[str]:
    """The content words of one example of `task` (3 to 8 words, drawn with replacement)."""
    n = rng.randint(MIN_WORDS, MAX_WORDS)
    if task == "dedupe":
        # Draw from a small pool so that most sequences repeat a word.
        pool = rng.sample(CONTENT_WORDS, rng.randint(2, n))
        return [rng.choice(pool) for _ in range(n)]
    while True:
        words = [rng.choice(CONTENT_WORDS) for _ in range(n)]
        if task != "sentiment":
            return words
        pos = sum(w in POSITIVE_WORDS for w in words)
        neg = sum(w in NEGATIVE_WORDS for w in words)
        if pos != neg:  # a clear majority decides the label
            return words


def make_example(task: str, words: list[str]) -> tuple[str, str]:
    instruction, target = TASKS[task]
    return f"{instruction} {' '.join(words)}", target(words)


# ---------------------------------------------------------------------------------------------
# Tokenizer


def build_tokenizer() -> Tokenizer:
    """A word-level tokenizer: whitespace/punctuation split, one id per word, `</s>` appended."""
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(VOCAB)}, unk_token="<unk>"))
    # Split on whitespace, then split runs of punctuation off ("words:" gives "words" and ":").
    # Not the `Whitespace` pre-tokenizer: its \w+|[^\w\s]+ is Unicode-aware in Rust but
    # ASCII-only in the JavaScript library the project uses, so "café" would give one <unk> in
    # one and two in the other. `Punctuation` must be "contiguous": the JavaScript library always
    # keeps a run such as "!?" together.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(behavior="contiguous")]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", EOS_ID)]
    )
    tok.add_special_tokens(SPECIALS)  # already in the vocabulary: marks them special, same ids
    # No decoder: decoding joins the tokens with single spaces, which is what these texts are.
    return tok


# tokenizer_config.json. transformers 5 would write `"tokenizer_class": "TokenizersBackend"`,
# which transformers 4 cannot load; `PreTrainedTokenizerFast` loads in both. The JavaScript
# tokenizers library reads `unk_token` from here for a WordLevel model.
TOKENIZER_CONFIG = {
    "tokenizer_class": "PreTrainedTokenizerFast",
    "pad_token": "<pad>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "model_max_length": MODEL_MAX_LENGTH,
    "padding_side": "right",
    "clean_up_tokenization_spaces": False,
}


def write_tokenizer(tok: Tokenizer, out: Path) -> PreTrainedTokenizerFast:
    """Writes tokenizer.json (no padding or truncation settings in it) and tokenizer_config.json,
    and returns the transformers tokenizer loaded from them."""
    # As Tokenizer.save writes it, plus the final newline `deno fmt` wants.
    (out / "tokenizer.json").write_text(tok.to_str(pretty=True) + "\n")
    (out / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2) + "\n")
    return transformers.AutoTokenizer.from_pretrained(out)


# ---------------------------------------------------------------------------------------------
# Training and evaluation helpers


def encode_batch(tokenizer, sources: list[str], targets: list[str] | None = None):
    """Right-padded input ids and mask, and labels with -100 on padding."""
    enc = tokenizer(sources, padding=True, return_tensors="pt")
    batch = {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask}
    if targets is not None:
        lab = tokenizer(targets, padding=True, return_tensors="pt")
        batch["labels"] = lab.input_ids.masked_fill(lab.attention_mask == 0, -100)
    return batch


@torch.no_grad()
def greedy_decode(model, tokenizer, sources: list[str], batch_size: int = 256) -> list[str]:
    """Greedy decoding (at most MAX_NEW_TOKENS new tokens), decoded without special tokens."""
    model.eval()
    out: list[str] = []
    for i in range(0, len(sources), batch_size):
        enc = encode_batch(tokenizer, sources[i : i + batch_size])
        ids = model.generate(
            **enc, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, num_beams=1
        )
        out += tokenizer.batch_decode(ids, skip_special_tokens=True)
    return out


def exact_match(predictions: list[str], targets: list[str]) -> float:
    return 100.0 * sum(p == t for p, t in zip(predictions, targets)) / len(targets)


# ---------------------------------------------------------------------------------------------
# Main steps


def pretrain(tokenizer, steps: int, lr: float, log) -> tuple[T5ForConditionalGeneration, dict[str, float]]:
    """Pretrains the tiny T5 on the task mixture; returns it and its held-out exact match."""
    # Held-out evaluation examples, drawn first; training never uses a (task, words) pair of them.
    eval_rng = random.Random(SEED + 1)
    held_out = {t: [sample_words(t, eval_rng) for _ in range(EVAL_PER_TASK)] for t in TASKS}
    excluded = {(t, tuple(w)) for t, ws in held_out.items() for w in ws}

    torch.manual_seed(SEED)
    config = T5Config(**MODEL_CONFIG)
    model = T5ForConditionalGeneration(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    # Linear warmup from 0 over PRETRAIN_WARMUP steps, then linear decay to 0 at the last step.
    sched = get_linear_schedule_with_warmup(opt, PRETRAIN_WARMUP, steps)
    rng = random.Random(SEED)
    names = list(TASKS)
    start = time.time()
    model.train()
    for step in range(steps):
        sources, targets = [], []
        while len(sources) < PRETRAIN_BATCH:
            task = rng.choice(names)
            words = sample_words(task, rng)
            if (task, tuple(words)) in excluded:
                continue
            s, t = make_example(task, words)
            sources.append(s)
            targets.append(t)
        loss = model(**encode_batch(tokenizer, sources, targets)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"  step {step:5d}  loss {loss.item():.4f}  {time.time() - start:6.1f} s")
    log(f"pretraining: {steps} steps in {time.time() - start:.1f} s")

    scores = {}
    for task, ws in held_out.items():
        pairs = [make_example(task, w) for w in ws]
        preds = greedy_decode(model, tokenizer, [s for s, _ in pairs])
        scores[task] = exact_match(preds, [t for _, t in pairs])
    return model, scores


def adaptation_rows() -> dict[str, list[dict[str, str]]]:
    """The adaptation task's splits: distinct word sequences, none shared between splits."""
    rng = random.Random(ADAPT_SEED)
    seen: set[tuple[str, ...]] = set()
    splits: dict[str, list[dict[str, str]]] = {}
    for split in ("test", "validation", "train"):
        rows = []
        while len(rows) < ADAPT_SIZES[split]:
            words = sample_words("copy", rng)
            if tuple(words) in seen:
                continue
            seen.add(tuple(words))
            rows.append(
                {"words": " ".join(words), "translation": " ".join(ADAPT_DICT[w] for w in words)}
            )
        splits[split] = rows
    return splits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="tasks/default", type=Path)
    ap.add_argument("--steps", default=PRETRAIN_STEPS, type=int)
    ap.add_argument("--lr", default=PRETRAIN_LR, type=float)
    args = ap.parse_args()

    torch.set_num_threads(1)  # bitwise-reproducible on a given CPU
    torch.use_deterministic_algorithms(True)
    log = lambda s: print(s, flush=True)  # noqa: E731
    log(
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"tokenizers {tokenizers.__version__}, python {sys.version.split()[0]}"
    )
    t0 = time.time()

    # The tokenizer files first: training uses the tokenizer as transformers loads it.
    model_dir = args.out / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    model_dir.mkdir(parents=True)
    tokenizer = write_tokenizer(build_tokenizer(), model_dir)
    # One id per word (":" is a word of its own), then </s>.
    src, _ = make_example("reverse", ["cat", "dog", "sun"])
    expected = [VOCAB.index(w) for w in src.replace(":", " :").split()] + [EOS_ID]
    assert tokenizer(src).input_ids == expected, tokenizer(src).input_ids
    assert tokenizer.decode(expected, skip_special_tokens=True) == src.replace(":", " :")

    model, scores = pretrain(tokenizer, args.steps, args.lr, log)
    log("held-out exact match (greedy, %d examples per task):" % EVAL_PER_TASK)
    for task, score in scores.items():
        log(f"  {task:10s} {score:6.1f}")
    log(f"  {'mean':10s} {sum(scores.values()) / len(scores):6.1f}")

    # The checkpoint, beside the tokenizer files; it must reload to the same model.
    model.save_pretrained(model_dir, safe_serialization=True)
    reloaded = T5ForConditionalGeneration.from_pretrained(model_dir)
    for name, p in model.state_dict().items():
        assert torch.equal(p, reloaded.state_dict()[name]), name
    probe = [make_example(t, sample_words(t, random.Random(3)))[0] for t in TASKS]
    assert greedy_decode(reloaded, tokenizer, probe) == greedy_decode(model, tokenizer, probe)
    log(f"parameters: {sum(p.numel() for p in reloaded.parameters())}")

    # The adaptation task.
    data_dir = args.out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for split, rows in adaptation_rows().items():
        with open(data_dir / f"{split}.jsonl", "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    # The frozen model with no prompt on it (tools/check_default_preset.py trains the methods).
    test = [json.loads(x) for x in open(data_dir / "test.jsonl")]
    preds = greedy_decode(reloaded, tokenizer, [r["words"] for r in test])
    em = exact_match(preds, [r["translation"] for r in test])
    log(f"adaptation task, frozen model, no prompt: {em:.1f}% exact match on test")

    for p in sorted(args.out.rglob("*")):
        if p.is_file():
            log(f"  {p}  {p.stat().st_size} bytes")
    log(f"total {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
