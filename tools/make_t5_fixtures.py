#!/usr/bin/env python3
"""Write tiny random T5 checkpoints in the Hub's format, plus reference tensors from transformers.

DEV-ONLY. The project never runs Python; this script made the committed files under
tests/fixtures/t5/ and is kept so they can be regenerated and audited.

    /tmp/ref/bin/python tools/make_t5_fixtures.py [--out tests/fixtures/t5]

For each of two variants it writes `<out>/<model>/`:

    config.json              hand-written, shaped like the published t5-base / flan-t5-base configs
    generation_config.json   as transformers' save_pretrained writes it
    model.safetensors        as transformers' save_pretrained writes it (F32)
    tokenizer.json           tiny T5-style Unigram tokenizer (sentencepiece, nmt_nfkc), HF format
    tokenizer_config.json    as transformers' T5Tokenizer.save_pretrained writes it
    reference.safetensors    reference tensors (float32 model.eval(), dropout off), see README.md
    reference.json           scalar facts, strings, tokenizer reference ids, versions

and `<out>/transformers5-saved/<model>.config.json`, the config.json that transformers' own
save_pretrained wrote for the same model (not used by the checkpoints; for the parser's tests).

Variants:
    tiny-t5-v1_0  ReLU FFN, tied embeddings, decoder output rescaled by d_model**-0.5 (t5-base)
    tiny-t5-v1_1  gated-gelu (gelu_new) FFN, untied lm_head, no rescale (T5 v1.1 / flan-T5)

The weights start from transformers' own _init_weights (initializer_factor 1.0) and are then
trained for 1000 Adam steps (--steps) on a toy copy task, so greedy decodes depend on the input.
The script checks that every greedy step has a top-1/top-2 logit margin of at least MIN_MARGIN,
that the saved files reload to the same tensors, and that the reload has the intended
tying/scaling, and it fails otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import safetensors
import sentencepiece as spm
import tokenizers
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer

from t5_spm import spm_pieces_and_charsmap, train_t5_unigram  # tools/t5_spm.py

# ---------------------------------------------------------------------------------------------
# Sizes (shared by both variants)
D_MODEL = 64
NUM_LAYERS = 2
NUM_HEADS = 4
D_KV = 16
D_FF = 128
NUM_BUCKETS = 32
MAX_DISTANCE = 128
SPM_VOCAB = 230  # sentencepiece pieces, including <pad>=0, </s>=1, <unk>=2
EXTRA_IDS = 10  # <extra_id_9> .. <extra_id_0> appended after the pieces, as T5 does
TOKENIZER_SIZE = SPM_VOCAB + EXTRA_IDS  # 240, like t5's 32100
VOCAB_SIZE = 256  # embedding rows, padded like t5's 32128
DROPOUT = 0.1
EPS = 1e-6

# Reference batch
SRC_LEN = 12
PROMPT_LEN = 5
MAX_NEW_TOKENS = 20
MIN_MARGIN = 1e-2  # greedy top-1 minus top-2 logit, every step of every unfinished sequence

SOURCES = [
    "sentence: it's a charming and often affecting journey, full of light and music.",
    "question: What is the capital of France?",
    "the cat.",
]
TARGETS = [
    "the capital of France",
    "1",
    "entailment",
]

# Strings whose ids the Deno tokenizer test must reproduce exactly.
TOKENIZER_SENTENCES = [
    "sentence: it's a charming and often affecting journey.",
    "Classify this text is postive or not:",
    "premise: The   quick brown fox\tjumps over\nthe lazy dog. hypothesis: 42 foxes!",
    "Caf\u00e9 na\u00efve \ufb01ne \uff21\uff22\uff23 \u2460 \u00bd",
    "The <extra_id_0> walks in <extra_id_1> park",
    "Unknown glyphs: \u6f22\u5b57 \U0001f600 \u00a7",
    "",
]

CORPUS = """
The quick brown fox jumps over the lazy dog.
A man is playing a guitar on the stage while the crowd sings along.
Someone is making music in the park on a sunny afternoon.
Paris is the capital and largest city of France.
What is the capital of France?
The cat sat on the mat and watched the birds outside the window.
A cat was sitting on a mat near the open door.
It's a charming and often affecting journey.
The film is funny, warm and surprisingly honest about growing up.
This movie was boring, too long and the acting was terrible.
The weather today is sunny with a light breeze from the west.
Studies have shown that owning a dog is good for you.
She sells sea shells by the sea shore.
The company reported higher profits in the third quarter of the year.
Shares fell sharply after the bank announced new rules for lending.
The president met with leaders from several countries to discuss trade.
Scientists discovered a new species of frog in the rain forest.
The children played football in the garden until it was dark.
He forgot his keys at the office and had to walk back in the rain.
The committee will vote on the proposal next Tuesday morning.
Water boils at one hundred degrees Celsius at sea level.
The train to London leaves every hour from platform nine.
Please remember to turn off the lights when you leave the room.
The book tells the story of a young girl who travels across the ocean.
Our team won the championship after a long and difficult season.
The museum is open from ten in the morning until six in the evening.
Many people believe that reading every day improves memory.
The restaurant serves fresh fish, bread and vegetables from local farms.
I would like to buy two tickets for the concert on Friday night.
The river flows through the valley and into the northern sea.
Doctors recommend drinking plenty of water during hot weather.
The students asked the teacher many questions about the history lesson.
A woman is slicing an onion in the kitchen.
Two dogs are running through a field of tall grass.
The old bridge was closed for repairs last summer.
Prices of fruit and milk have risen again this month.
They built a small house near the lake with their own hands.
The answer to the question is hidden in the second paragraph.
Is the sky blue because of the way sunlight is scattered?
The hypothesis is not supported by the evidence in the passage.
premise: A boy is jumping on a skateboard. hypothesis: The boy is skating.
question: Who wrote the novel? sentence: The novel was written by a famous author.
sentence1: The storm damaged many houses. sentence2: Many homes were hurt by the storm.
question1: How do I learn to cook? question2: What is the best way to learn cooking?
sentence: the acting is great but the story is weak.
sentence: an utterly delightful and moving film.
Classify this text is positive or not: the food was excellent.
Numbers like 1, 2, 3, 10, 42 and 2024 appear in text as well.
Caf\u00e9, na\u00efve and fianc\u00e9e are words borrowed from French.
"Yes," she said, "we can meet at 5 o'clock (or later)."
Entailment, neutral and contradiction are the three labels.
True or false: the earth goes around the sun once a year.
""".strip().split("\n")


# ---------------------------------------------------------------------------------------------
# Tokenizer


def make_tokenizer(work: Path) -> T5Tokenizer:
    """Trains a tiny sentencepiece Unigram model (nmt_nfkc) and wraps it as transformers 5.x does.

    transformers converts spiece.model with the protobuf package, which this venv lacks, so the
    pieces and the precompiled charsmap are read here and handed to T5Tokenizer exactly as
    T5Converter.convert_from_spm would: the pieces, then <extra_id_{N-1}> .. <extra_id_0>.
    """
    corpus = work / "corpus.txt"
    corpus.write_text("\n".join(CORPUS * 4) + "\n", encoding="utf-8")
    sp = train_t5_unigram(corpus, work / "spiece", SPM_VOCAB, character_coverage=1.0)
    pieces, charsmap = spm_pieces_and_charsmap(sp.serialized_model_proto())
    api = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    assert [p for p, _ in pieces] == [p for p, _ in api], "protobuf parse disagrees with spm"
    assert len(pieces) == SPM_VOCAB and pieces[:3] == [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    assert len(charsmap) > 1000, "nmt_nfkc precompiled charsmap missing"
    vocab = pieces + [(f"<extra_id_{i}>", 0.0) for i in range(EXTRA_IDS - 1, -1, -1)]
    tok = T5Tokenizer(vocab=vocab, _spm_precompiled_charsmap=charsmap, extra_ids=EXTRA_IDS)
    assert len(tok) == TOKENIZER_SIZE, len(tok)
    assert tok.convert_tokens_to_ids("<extra_id_0>") == TOKENIZER_SIZE - 1
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    # The HF tokenizer and sentencepiece itself agree on plain text.
    for s in CORPUS[:10]:
        assert tok(s).input_ids == sp.encode(s) + [1], s
    return tok


# ---------------------------------------------------------------------------------------------
# Configs


def config_json(variant: str) -> dict:
    """The config.json written to disk, shaped like the published ones (shared/hub-configs)."""
    if variant == "v1_0":
        # Like the old t5-base export: no feed_forward_proj, num_decoder_layers,
        # relative_attention_max_distance or tie_word_embeddings (transformers' defaults apply).
        return {
            "architectures": ["T5ForConditionalGeneration"],
            "d_ff": D_FF,
            "d_kv": D_KV,
            "d_model": D_MODEL,
            "decoder_start_token_id": 0,
            "dropout_rate": DROPOUT,
            "eos_token_id": 1,
            "initializer_factor": 1.0,
            "is_encoder_decoder": True,
            "layer_norm_epsilon": EPS,
            "model_type": "t5",
            "n_positions": 512,
            "num_heads": NUM_HEADS,
            "num_layers": NUM_LAYERS,
            "output_past": True,
            "pad_token_id": 0,
            "relative_attention_num_buckets": NUM_BUCKETS,
            "vocab_size": VOCAB_SIZE,
        }
    # Like flan-t5-base's config.json.
    return {
        "architectures": ["T5ForConditionalGeneration"],
        "d_ff": D_FF,
        "d_kv": D_KV,
        "d_model": D_MODEL,
        "decoder_start_token_id": 0,
        "dense_act_fn": "gelu_new",
        "dropout_rate": DROPOUT,
        "eos_token_id": 1,
        "feed_forward_proj": "gated-gelu",
        "initializer_factor": 1.0,
        "is_encoder_decoder": True,
        "is_gated_act": True,
        "layer_norm_epsilon": EPS,
        "model_type": "t5",
        "n_positions": 512,
        "num_decoder_layers": NUM_LAYERS,
        "num_heads": NUM_HEADS,
        "num_layers": NUM_LAYERS,
        "output_past": True,
        "pad_token_id": 0,
        "relative_attention_max_distance": MAX_DISTANCE,
        "relative_attention_num_buckets": NUM_BUCKETS,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": transformers.__version__,
        "use_cache": True,
        "vocab_size": VOCAB_SIZE,
    }


def build_model(variant: str, seed: int) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    kw = dict(
        vocab_size=VOCAB_SIZE,
        d_model=D_MODEL,
        d_kv=D_KV,
        d_ff=D_FF,
        num_layers=NUM_LAYERS,
        num_decoder_layers=NUM_LAYERS,
        num_heads=NUM_HEADS,
        relative_attention_num_buckets=NUM_BUCKETS,
        relative_attention_max_distance=MAX_DISTANCE,
        dropout_rate=DROPOUT,
        layer_norm_epsilon=EPS,
        initializer_factor=1.0,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    if variant == "v1_0":
        config = T5Config(feed_forward_proj="relu", **kw)
    else:
        config = T5Config(feed_forward_proj="gated-gelu", tie_word_embeddings=False, **kw)
    model = T5ForConditionalGeneration(config)
    if variant == "v1_1":
        # transformers 5.x always ties lm_head to shared at construction (T5Config forces
        # tie_word_embeddings=True and keeps only scale_decoder_outputs=False); untie it by hand
        # with the init _init_weights gives an untied head.
        model.lm_head.weight = torch.nn.Parameter(torch.randn(VOCAB_SIZE, D_MODEL))
        assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
        assert model.config.scale_decoder_outputs is False
    else:
        assert model.lm_head.weight.data_ptr() == model.shared.weight.data_ptr()
        assert model.config.scale_decoder_outputs is True
    return model


# ---------------------------------------------------------------------------------------------
# Toy training so greedy decodes are input-dependent and free of near-ties


def copy_batch(gen: torch.Generator, corpus_ids: list[list[int]], batch: int):
    """Half corpus sentences, half random token strings; the target is the source itself."""
    seqs = []
    for b in range(batch):
        if b % 2 == 0:
            ids = corpus_ids[int(torch.randint(len(corpus_ids), (1,), generator=gen))]
            n = int(torch.randint(2, SRC_LEN, (1,), generator=gen))
            ids = ids[:n]
        else:
            n = int(torch.randint(1, SRC_LEN, (1,), generator=gen))
            ids = torch.randint(3, SPM_VOCAB, (n,), generator=gen).tolist()
        seqs.append(ids + [1])
    L = max(len(s) for s in seqs)
    inp = torch.zeros(batch, L, dtype=torch.long)
    mask = torch.zeros(batch, L, dtype=torch.long)
    lab = torch.full((batch, L), -100, dtype=torch.long)
    for i, s in enumerate(seqs):
        inp[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
        lab[i, : len(s)] = torch.tensor(s)
    return inp, mask, lab


def train_copy(model, tok, seed: int, steps: int) -> list[float]:
    corpus_ids = [tok(s, add_special_tokens=False).input_ids for s in CORPUS]
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(steps):
        inp, mask, lab = copy_batch(gen, corpus_ids, 16)
        loss = model(input_ids=inp, attention_mask=mask, labels=lab).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


# ---------------------------------------------------------------------------------------------
# References


def pad_batch(rows: list[list[int]], length: int, fill: int) -> torch.Tensor:
    out = torch.full((len(rows), length), fill, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
    return out


def greedy_margins(scores, sequences) -> float:
    """Smallest top-1 minus top-2 logit over all steps where the sequence was unfinished."""
    worst = math.inf
    finished = torch.zeros(sequences.shape[0], dtype=torch.bool)
    for t, s in enumerate(scores):
        top = torch.topk(s, 2, dim=-1).values
        margin = top[:, 0] - top[:, 1]
        for b in range(s.shape[0]):
            if not finished[b]:
                worst = min(worst, float(margin[b]))
        finished |= sequences[:, t + 1] == 1
    return worst


def greedy_no_cache(model, input_ids, attention_mask) -> torch.Tensor:
    """Greedy decoding by re-running the whole decoder each step (what a cache-less GPU port does)."""
    B = input_ids.shape[0]
    enc = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
    out = torch.zeros(B, 1, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    for _ in range(MAX_NEW_TOKENS):
        logits = model(
            encoder_outputs=enc, attention_mask=attention_mask, decoder_input_ids=out, use_cache=False
        ).logits[:, -1]
        nxt = logits.argmax(-1)
        nxt = torch.where(done, torch.zeros_like(nxt), nxt)
        out = torch.cat([out, nxt[:, None]], 1)
        done |= nxt == 1
        if bool(done.all()):
            break
    return out


def references(model, tok) -> tuple[dict[str, torch.Tensor], dict]:
    torch.manual_seed(1234)
    enc = [tok(s, truncation=True, max_length=SRC_LEN).input_ids for s in SOURCES]
    tgt = [tok(s).input_ids for s in TARGETS]
    T = max(len(t) for t in tgt)
    input_ids = pad_batch(enc, SRC_LEN, 0)
    attention_mask = pad_batch([[1] * len(e) for e in enc], SRC_LEN, 0)
    labels = pad_batch(tgt, T, -100)
    decoder_input_ids = model._shift_right(labels)
    lengths = [len(e) for e in enc]
    assert len(set(lengths)) == 3 and max(lengths) == SRC_LEN and min(lengths) < SRC_LEN
    assert len({len(t) for t in tgt}) == 3
    assert all(e[-1] == 1 for e in enc)

    ref: dict[str, torch.Tensor] = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "decoder_input_ids": decoder_input_ids,
    }

    # Plain case: inputs_embeds = embedding(input_ids), gradient of the loss with respect to it.
    inputs_embeds = model.shared(input_ids).detach().clone().requires_grad_(True)
    out = model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels)
    out.loss.backward()
    out_ids = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    assert torch.allclose(out_ids.logits, out.logits, atol=1e-6)
    # The loss is the mean cross-entropy over the labels that are not -100.
    valid = labels != -100
    manual = torch.nn.functional.cross_entropy(out.logits[valid], labels[valid])
    assert torch.allclose(manual, out.loss, atol=1e-6)
    assert torch.equal(decoder_input_ids[:, 1:], labels[:, :-1].masked_fill(~valid[:, :-1], 0))
    ref["inputs_embeds"] = inputs_embeds.detach()
    ref["encoder_last_hidden_state"] = out.encoder_last_hidden_state.detach()
    ref["logits"] = out.logits.detach()
    ref["loss"] = out.loss.detach().reshape(1)
    ref["grad_inputs_embeds"] = inputs_embeds.grad.detach()

    # Relative position bias of the first layer (shared by all layers of a stack).
    enc_attn = model.encoder.block[0].layer[0].SelfAttention
    dec_attn = model.decoder.block[0].layer[0].SelfAttention
    assert not enc_attn.is_decoder and dec_attn.is_decoder
    with torch.no_grad():
        ref["encoder_position_bias"] = enc_attn.compute_bias(SRC_LEN, SRC_LEN)
        ref["decoder_position_bias"] = dec_attn.compute_bias(T, T)
        ref["prompt_encoder_position_bias"] = enc_attn.compute_bias(
            PROMPT_LEN + SRC_LEN, PROMPT_LEN + SRC_LEN
        )
    rel = torch.arange(-300, 301)
    ref["relative_position"] = rel
    bucket = type(enc_attn)._relative_position_bucket
    ref["relative_bucket_bidirectional"] = bucket(
        rel, bidirectional=True, num_buckets=NUM_BUCKETS, max_distance=MAX_DISTANCE
    )
    ref["relative_bucket_unidirectional"] = bucket(
        rel, bidirectional=False, num_buckets=NUM_BUCKETS, max_distance=MAX_DISTANCE
    )

    # Greedy decoding, batched, KV cache as transformers does it; cross-checked without cache.
    with torch.no_grad():
        g = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            num_beams=1,
            do_sample=False,
            max_new_tokens=MAX_NEW_TOKENS,
            decoder_start_token_id=0,
            eos_token_id=1,
            pad_token_id=0,
            return_dict_in_generate=True,
            output_scores=True,
        )
        plain = greedy_no_cache(model, input_ids, attention_mask)
    seqs = g.sequences
    assert torch.equal(seqs, plain), (seqs, plain)
    margin = greedy_margins(g.scores, seqs)
    if margin < MIN_MARGIN:
        raise SystemExit(f"greedy top-1/top-2 margin {margin} < {MIN_MARGIN}: pick another seed")
    assert int(seqs.max()) < TOKENIZER_SIZE, "greedy produced a padded vocabulary row"
    ref["greedy_ids"] = seqs
    decoded = tok.batch_decode(seqs, skip_special_tokens=True)
    distinct = {tuple(r.tolist()) for r in seqs}
    assert len(distinct) == 3, "greedy outputs must differ per input"
    gen_lengths = []
    for r in seqs.tolist():
        body = r[1:]
        gen_lengths.append(body.index(1) + 1 if 1 in body else len(body))

    # Soft prompt case: M random rows before the input embeddings, mask extended with ones.
    prompt = torch.randn(PROMPT_LEN, D_MODEL)
    x = torch.cat([prompt.expand(input_ids.shape[0], -1, -1), model.shared(input_ids).detach()], 1)
    x = x.clone().requires_grad_(True)
    pmask = torch.cat([torch.ones(input_ids.shape[0], PROMPT_LEN, dtype=torch.long), attention_mask], 1)
    pout = model(inputs_embeds=x, attention_mask=pmask, labels=labels)
    pout.loss.backward()
    ref["prompt_embeds"] = prompt
    ref["prompt_attention_mask"] = pmask
    ref["prompt_inputs_embeds"] = x.detach()
    ref["prompt_encoder_last_hidden_state"] = pout.encoder_last_hidden_state.detach()
    ref["prompt_logits"] = pout.logits.detach()
    ref["prompt_loss"] = pout.loss.detach().reshape(1)
    ref["prompt_grad_inputs_embeds"] = x.grad.detach()
    ref["prompt_grad_prompt"] = x.grad.detach()[:, :PROMPT_LEN].sum(0)

    facts = {
        "sources": SOURCES,
        "targets": TARGETS,
        "source_ids": enc,
        "target_ids": tgt,
        "source_lengths": lengths,
        "target_lengths": [len(t) for t in tgt],
        "loss": out.loss.item(),
        "prompt_loss": pout.loss.item(),
        "greedy_ids": seqs.tolist(),
        "greedy_decoded": decoded,
        "greedy_generated_lengths": gen_lengths,
        "greedy_min_top2_margin": margin,
    }
    return ref, facts


# ---------------------------------------------------------------------------------------------


def write_model(out: Path, name: str, variant: str, seed: int, tok: T5Tokenizer, steps: int) -> None:
    model = build_model(variant, seed)
    losses = train_copy(model, tok, seed, steps)
    dest = out / name
    if dest.exists():
        shutil.rmtree(dest)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        dest.mkdir(parents=True)
        for f in sorted(os.listdir(tmp)):
            if f != "config.json":
                shutil.copy(Path(tmp) / f, dest / f)
        # What transformers 5.x itself writes as config.json (kept aside for the config parser's
        # tests: it says tie_word_embeddings true even for the untied v1.1 model and adds
        # scale_decoder_outputs).
        saved = out / "transformers5-saved"
        saved.mkdir(exist_ok=True)
        shutil.copy(Path(tmp) / "config.json", saved / f"{name}.config.json")
    (dest / "config.json").write_text(json.dumps(config_json(variant), indent=2) + "\n")

    # Reload from the written folder: the references come from the files, not from memory.
    loaded = T5ForConditionalGeneration.from_pretrained(dest, attn_implementation="eager").eval()
    sd, sd2 = model.state_dict(), loaded.state_dict()
    assert sd.keys() == sd2.keys()
    for k in sd:
        assert torch.equal(sd[k], sd2[k]), k
    tied = loaded.lm_head.weight.data_ptr() == loaded.shared.weight.data_ptr()
    assert tied == (variant == "v1_0"), "lm_head tying differs after reload"
    assert loaded.config.scale_decoder_outputs == (variant == "v1_0")
    assert loaded.config.dense_act_fn == ("relu" if variant == "v1_0" else "gelu_new")
    assert loaded.config.num_decoder_layers == NUM_LAYERS
    assert loaded.config.relative_attention_max_distance == MAX_DISTANCE
    for p in loaded.parameters():
        p.requires_grad_(False)  # frozen backbone; gradients flow to the inputs only

    ref, facts = references(loaded, tok)
    ints = {k for k, v in ref.items() if v.dtype == torch.long}
    ref = {k: (v.to(torch.int64) if k in ints else v.to(torch.float32)).contiguous() for k, v in ref.items()}
    save_file(ref, str(dest / "reference.safetensors"), metadata={"generator": "tools/make_t5_fixtures.py"})

    with safe_open(str(dest / "model.safetensors"), "pt") as f:
        weight_names = sorted(f.keys())
        weight_shapes = {k: list(f.get_slice(k).get_shape()) for k in weight_names}
        weight_dtypes = sorted({f.get_slice(k).get_dtype() for k in weight_names})
    embedding_names = [
        k
        for k in ("shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight")
        if k in weight_names
    ]
    tok_ids = {s: tok(s).input_ids for s in TOKENIZER_SENTENCES}
    facts = {
        "model": name,
        "variant": "T5 v1.0 (t5-base style)" if variant == "v1_0" else "T5 v1.1 / flan-T5 style",
        "seed": seed,
        "versions": versions(),
        "vocab_size": VOCAB_SIZE,
        "tokenizer_size": TOKENIZER_SIZE,
        "spm_vocab_size": SPM_VOCAB,
        "extra_ids": EXTRA_IDS,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "unk_token_id": 2,
        "decoder_start_token_id": 0,
        "tied_lm_head": tied,
        "scale_decoder_outputs": bool(loaded.config.scale_decoder_outputs),
        "dense_act_fn": loaded.config.dense_act_fn,
        "is_gated_act": bool(loaded.config.is_gated_act),
        "train_steps": steps,
        "train_loss_first_last": [losses[0], sum(losses[-20:]) / 20],
        "src_len": SRC_LEN,
        "prompt_len": PROMPT_LEN,
        "max_new_tokens": MAX_NEW_TOKENS,
        **facts,
        "embedding_tensor_names": embedding_names,
        "weight_dtypes": weight_dtypes,
        "weights": weight_shapes,
        "reference_tensors": {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)} for k, v in ref.items()},
        "tokenizer_reference": [{"text": s, "ids": ids} for s, ids in tok_ids.items()],
        "tokenizer_decode_reference": [
            {"ids": ids, "text": tok.decode(ids, skip_special_tokens=True)} for ids in tok_ids.values()
        ],
    }
    (dest / "reference.json").write_text(compact_json(facts))
    size = sum(p.stat().st_size for p in dest.iterdir())
    print(f"{name}: {size / 1024:.0f} KiB, loss {facts['loss']:.4f}, greedy {facts['greedy_decoded']}, "
          f"margin {facts['greedy_min_top2_margin']:.4f}, embedding names {embedding_names}")


def compact_json(obj) -> str:
    """Indented JSON with lists of numbers kept on one line."""
    text = json.dumps(obj, indent=1, ensure_ascii=False)
    one_line = lambda m: re.sub(r"\s+", " ", m.group(0)).replace("[ ", "[").replace(" ]", "]")
    return re.sub(r"\[[-+\d\s,.eE]+\]", one_line, text) + "\n"


def versions() -> dict:
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "sentencepiece": spm.__version__,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests/fixtures/t5"))
    ap.add_argument("--steps", type=int, default=1000, help="Adam steps of the toy copy task")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        tok = make_tokenizer(Path(work))
    write_model(out, "tiny-t5-v1_0", "v1_0", 10, tok, args.steps)
    write_model(out, "tiny-t5-v1_1", "v1_1", 10, tok, args.steps)
    print(json.dumps(versions()))


if __name__ == "__main__":
    main()
