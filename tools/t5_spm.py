"""T5-style sentencepiece models for the tokenizer fixtures: training one, and reading it back.

DEV-ONLY, shared by tools/make_t5_fixtures.py and tools/make_tokenizer_fixtures.py.

- train_t5_unigram() trains a Unigram model with T5's settings (nmt_nfkc normalization,
  <pad>=0 </s>=1 <unk>=2, no <s>).
- The venvs that made the fixtures have no protobuf package, which transformers' and
  tokenizers' own sentencepiece converters need, so the two fields of the model (a protobuf
  ModelProto) that the fixtures use are read here by hand:

      ModelProto.pieces (1)                                  -> (piece (1), score (2)) per piece
      ModelProto.normalizer_spec (3).precompiled_charsmap (2) -> the nmt_nfkc rules as bytes

Import it from a script in tools/ (Python puts the script's folder on sys.path):

    from t5_spm import spm_charsmap, spm_pieces_and_charsmap, train_t5_unigram

`python3 tools/t5_spm.py` checks the protobuf reader (no sentencepiece needed).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def train_t5_unigram(
    corpus: Path, model_prefix: Path, vocab_size: int, character_coverage: float
) -> Any:
    """Trains `<model_prefix>.model` on the lines of `corpus` with T5's settings.

    Returns the loaded sentencepiece.SentencePieceProcessor. Single-threaded and unshuffled, so
    the same corpus gives the same model.
    """
    import sentencepiece as spm  # only here: the protobuf reader below works without it

    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(model_prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        normalization_rule_name="nmt_nfkc",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        character_coverage=character_coverage,
        num_threads=1,
        shuffle_input_sentence=False,
        minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_file=f"{model_prefix}.model")


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    """The base-128 varint at buf[i:], and the index after it."""
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def proto_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yields (field number, wire type, value) of a protobuf message, in order."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i : i + n], i + n
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def spm_pieces_and_charsmap(model_proto: bytes) -> tuple[list[tuple[str, float]], bytes]:
    """ModelProto.pieces as (piece, score) in id order, and the precompiled charsmap (b"" if none)."""
    pieces: list[tuple[str, float]] = []
    charsmap = b""
    for field, _, value in proto_fields(model_proto):
        if field == 1:
            piece, score = "", 0.0
            for f, _, v in proto_fields(value):
                if f == 1:
                    piece = v.decode("utf-8")
                elif f == 2:
                    score = struct.unpack("<f", v)[0]
            pieces.append((piece, score))
        elif field == 3:
            for f, _, v in proto_fields(value):
                if f == 2:
                    charsmap = v
    return pieces, charsmap


def spm_charsmap(model_proto: bytes) -> bytes:
    """ModelProto.normalizer_spec.precompiled_charsmap; ValueError when the model has none."""
    _, charsmap = spm_pieces_and_charsmap(model_proto)
    if not charsmap:
        raise ValueError("no precompiled charsmap")
    return charsmap


if __name__ == "__main__":
    # Self-check on a hand-built message: two pieces and a normalizer spec with a charsmap.
    def field(n: int, wire: int, payload: bytes) -> bytes:
        return bytes([n << 3 | wire]) + (bytes([len(payload)]) if wire == 2 else b"") + payload

    def piece(text: str, score: float) -> bytes:
        return field(1, 2, field(1, 2, text.encode()) + field(2, 5, struct.pack("<f", score)))

    proto = piece("<pad>", 0.0) + piece("\u2581a", -1.5) + field(3, 2, field(2, 2, b"\x01\x02"))
    assert spm_pieces_and_charsmap(proto) == ([("<pad>", 0.0), ("\u2581a", -1.5)], b"\x01\x02")
    assert spm_charsmap(proto) == b"\x01\x02"
    try:
        spm_charsmap(piece("x", 0.0))
        raise AssertionError("expected ValueError")
    except ValueError:
        pass
    print("t5_spm: ok")
