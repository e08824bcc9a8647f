#!/usr/bin/env python3
"""PyTorch reference fixtures for the trainable methods (ADePT, DePT, prompt tuning) and PEFT adapters.

DEV-ONLY. The project never runs Python; this script made the committed files under
tests/fixtures/peft/ and checks adapters that the TypeScript code writes. Run from anywhere:

    /tmp/ref/bin/python tools/make_peft_fixtures.py                  # writes tests/fixtures/peft/
    /tmp/ref/bin/python tools/make_peft_fixtures.py --verify-deno    # checks tests/fixtures/peft/deno_written/
    /tmp/ref/bin/python tools/make_peft_fixtures.py --verify-selftest /tmp/peft_selftest
        # writes Deno-style adapters with Python into the given folder (not the repository) and
        # runs the --verify-deno checks on them, to show the checks and the formats work.

Every method is built exactly as docs/method.md states, on the frozen
`T5ForConditionalGeneration.from_pretrained(tests/fixtures/t5/<variant>)` in eval mode (dropout
off everywhere, also in the offset network), for both tiny checkpoints:

    E     = shared.weight[input_ids]                      (B, S, C)
    ADePT E' = E + relu(E·A + a)·Bw + b                   at every source position, padding too
    DePT  E' = E + s·(A1·B1),  s = lora_alpha/sqrt(R) = 8/sqrt(R) (DePT: peft/tuners/prompt_tuning_lora.py:136)
    PT    E' = E
    X     = cat([P broadcast over B, E'], 1),  mask' = cat([ones(B, M), attention_mask], 1)
    loss  = model(inputs_embeds=X, attention_mask=mask', labels=labels).loss

All trainable tensors get RANDOM non-zero values (not the zero init of the papers) so that every
gradient is non-zero. See tests/fixtures/peft/README.md for the tensors written.

--verify-deno expects (each part is skipped, with a message, while its folder is missing):

    deno_written/prompt_tuning/   PEFT prompt-tuning adapter for tiny-t5-v1_0
                                  (adapter_config.json + adapter_model.safetensors); PEFT's logits
                                  must equal tiny-t5-v1_0/prompt_tuning.safetensors `logits` (1e-5)
    deno_written/adept_folded/model/    plain T5 checkpoint (config.json + model.safetensors):
                                  encoder.embed_tokens.weight = folded table, shared.weight (and
                                  decoder.embed_tokens.weight if written) = the original table
    deno_written/adept_folded/prompt/   PEFT prompt-tuning adapter holding the ADePT prompt
                                  -> logits must equal <variant>/adept.safetensors `logits` (1e-4);
                                  the variant is found by matching shared.weight

PEFT 0.21 + transformers 5.18: PeftModelForSeq2SeqLM.__init__ reads
`base_model._prepare_encoder_decoder_kwargs_for_generation`, which transformers 5.x renamed to
`_prepare_text_encoder_decoder_kwargs_for_generation`; without an alias PEFT cannot wrap a T5 at all
(AttributeError). The alias below is only used by PEFT's generate(), never by forward().
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import logging
import math
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import peft
import safetensors
import torch
import torch.nn.functional as F
import transformers
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import T5ForConditionalGeneration
from transformers.models.t5 import modeling_t5

ROOT = Path(__file__).resolve().parent.parent
T5_DIR = "tests/fixtures/t5"  # relative to ROOT (the script chdirs there)
OUT_DIR = "tests/fixtures/peft"
VARIANTS = ("tiny-t5-v1_0", "tiny-t5-v1_1")
METHODS = ("adept", "dept", "prompt_tuning")

# Shapes
B, S, T = 3, 7, 4
SRC_LENGTHS = (3, 7, 5)  # real tokens per row, the last one EOS (1); then pad 0
TGT_LENGTHS = (2, 4, 3)  # real label tokens per row, the last one EOS (1); then -100
M = 5  # prompt rows (all methods)
R_ADEPT = 3
R_DEPT = 3
LORA_ALPHA = 8  # DePT's default, never overridden by its train.py; every released checkpoint says 8
PAD, EOS = 0, 1
FIRST_REAL_ID, LAST_REAL_ID = 3, 239  # sentencepiece pieces; 240..255 are unused rows

# AdamW recipe (docs/method.md), constant learning rates, no scheduler
LR_PROMPT = 0.3
LR_OFFSET = 1e-2
BETAS = (0.9, 0.999)
EPS = 1e-6
WEIGHT_DECAY = 0.0
CLIP = 1.0
ADAMW_STEPS = 2

BATCH_SEED = 20240601
PARAM_SEED = 777

# Tolerances of the checks inside this script
FD_H = 1e-6  # float64 central differences
FD_COORDS = 4  # coordinates per tensor
FD_TOL = 1e-5  # |fd - autograd| / max(|autograd|, 1e-3 * max|grad|)
PEFT_TOL = 1e-5
FOLD_TOL = 1e-4

if not hasattr(T5ForConditionalGeneration, "_prepare_encoder_decoder_kwargs_for_generation"):
    T5ForConditionalGeneration._prepare_encoder_decoder_kwargs_for_generation = (
        T5ForConditionalGeneration._prepare_text_encoder_decoder_kwargs_for_generation
    )

from peft import PeftModel, PromptTuningConfig, get_peft_model  # noqa: E402  (after the alias)


# ---------------------------------------------------------------------------------------------
# Model, batch, parameters


def load_t5(variant_dir: str | Path) -> T5ForConditionalGeneration:
    model = T5ForConditionalGeneration.from_pretrained(str(variant_dir), attn_implementation="eager").eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def make_batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(BATCH_SEED)
    input_ids = torch.full((B, S), PAD, dtype=torch.int64)
    attention_mask = torch.zeros((B, S), dtype=torch.float32)
    labels = torch.full((B, T), -100, dtype=torch.int64)
    for i, (ls, lt) in enumerate(zip(SRC_LENGTHS, TGT_LENGTHS)):
        input_ids[i, : ls - 1] = torch.randint(FIRST_REAL_ID, LAST_REAL_ID + 1, (ls - 1,), generator=g)
        input_ids[i, ls - 1] = EOS
        attention_mask[i, :ls] = 1.0
        labels[i, : lt - 1] = torch.randint(FIRST_REAL_ID, LAST_REAL_ID + 1, (lt - 1,), generator=g)
        labels[i, lt - 1] = EOS
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def param_shapes(method: str, C: int) -> dict[str, tuple[int, ...]]:
    if method == "adept":
        return {"prompt": (M, C), "A": (C, R_ADEPT), "a": (R_ADEPT,), "Bw": (R_ADEPT, C), "b": (C,)}
    if method == "dept":
        return {"prompt": (M, C), "A1": (S, R_DEPT), "B1": (R_DEPT, C)}
    if method == "prompt_tuning":
        return {"prompt": (M, C)}
    raise ValueError(method)


def param_groups(method: str) -> list[tuple[str, float, list[str]]]:
    groups = [("prompt", LR_PROMPT, ["prompt"])]
    if method == "adept":
        groups.append(("offset", LR_OFFSET, ["A", "a", "Bw", "b"]))
    elif method == "dept":
        groups.append(("offset", LR_OFFSET, ["A1", "B1"]))
    return groups


def make_params(method: str, variant_index: int, wte: torch.Tensor) -> dict[str, torch.Tensor]:
    """Random non-zero values (float32)."""
    C = wte.shape[1]
    g = torch.Generator().manual_seed(PARAM_SEED + 100 * variant_index + METHODS.index(method))
    emb_std = wte.std().item()
    out: dict[str, torch.Tensor] = {}
    for name, shape in param_shapes(method, C).items():
        if name == "prompt":
            v = torch.randn(shape, generator=g) * emb_std
        elif name in ("A", "A1"):
            bound = 1.0 / math.sqrt(shape[1])  # kaiming_uniform_(a=sqrt(5)) on a (C, R) / (S, R) tensor
            v = (torch.rand(shape, generator=g) * 2.0 - 1.0) * bound
        else:  # a, Bw, b, B1
            v = torch.randn(shape, generator=g) * 0.1
        out[name] = v.to(torch.float32).contiguous()
    return out


def dept_scale(r: int) -> float:
    return LORA_ALPHA / math.sqrt(r)


def encoder_inputs(method: str, wte: torch.Tensor, p: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]):
    """X (B, M+S, C) and mask' (B, M+S) exactly as docs/method.md states, eval mode (no dropout)."""
    ids = batch["input_ids"].long()
    E = F.embedding(ids, wte)
    if method == "adept":
        H = E @ p["A"] + p["a"]
        E2 = E + F.relu(H) @ p["Bw"] + p["b"]
    elif method == "dept":
        E2 = E + dept_scale(p["A1"].shape[1]) * (p["A1"] @ p["B1"]).unsqueeze(0)
    elif method == "prompt_tuning":
        E2 = E
    else:
        raise ValueError(method)
    P = p["prompt"].unsqueeze(0).expand(ids.shape[0], -1, -1)
    X = torch.cat([P, E2], dim=1)
    mask = batch["attention_mask"].to(wte.dtype)
    mask2 = torch.cat([torch.ones(ids.shape[0], p["prompt"].shape[0], dtype=mask.dtype), mask], dim=1)
    return X, mask2


def method_forward(model, method, p, batch, keep_x=False):
    wte = model.shared.weight
    X, mask2 = encoder_inputs(method, wte, p, batch)
    if keep_x:
        X.retain_grad()
    out = model(inputs_embeds=X, attention_mask=mask2, labels=batch["labels"].long())
    return out.loss, out.logits, X


def fold_embedding(wte: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """ADePT folding: wte'[v] = wte[v] + relu(wte[v]·A + a)·Bw + b (dropout off)."""
    return wte + F.relu(wte @ p["A"] + p["a"]) @ p["Bw"] + p["b"]


# ---------------------------------------------------------------------------------------------
# float64 finite-difference check


@contextmanager
def float64_exact_layernorm():
    """T5LayerNorm computes the variance in float32 even for float64 inputs; use the input's dtype."""
    orig = modeling_t5.T5LayerNorm.forward

    def forward(self, hidden_states):
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))

    modeling_t5.T5LayerNorm.forward = forward
    try:
        yield
    finally:
        modeling_t5.T5LayerNorm.forward = orig


def fd_check(model32, method, params32, batch, grads32) -> dict:
    """Autograd in float64 vs central differences on a few coordinates of every tensor; also reports
    how far the float32 fixture gradients are from the float64 ones."""
    model = copy.deepcopy(model32).double().eval()
    p64 = {k: v.detach().double().clone().requires_grad_(True) for k, v in params32.items()}
    g = torch.Generator().manual_seed(99)
    report = {}
    with float64_exact_layernorm(), torch.enable_grad():
        loss, _, _ = method_forward(model, method, p64, batch)
        grads = torch.autograd.grad(loss, list(p64.values()))
        grads = dict(zip(p64.keys(), grads))
        with torch.no_grad():
            worst = 0.0
            for name, t in p64.items():
                gr = grads[name]
                flat = gr.reshape(-1)
                idx = [int(flat.abs().argmax())] + torch.randint(0, flat.numel(), (FD_COORDS - 1,), generator=g).tolist()
                scale = max(flat.abs().max().item() * 1e-3, 1e-12)
                errs = []
                for j in idx:
                    tf = t.view(-1)
                    old = tf[j].item()
                    tf[j] = old + FD_H
                    lp = method_forward(model, method, p64, batch)[0].item()
                    tf[j] = old - FD_H
                    lm = method_forward(model, method, p64, batch)[0].item()
                    tf[j] = old
                    fd = (lp - lm) / (2 * FD_H)
                    errs.append(abs(fd - flat[j].item()) / max(abs(flat[j].item()), scale))
                err = max(errs)
                worst = max(worst, err)
                g32 = grads32[name].double()
                rel32 = ((g32 - gr).norm() / gr.norm()).item()
                maxrel32 = ((g32 - gr).abs().max() / gr.abs().max()).item()
                report[name] = {"fd_max_rel_err": err, "f32_vs_f64_rel_norm_err": rel32, "f32_vs_f64_max_err_over_max": maxrel32}
                assert err < FD_TOL, f"{method}.{name}: finite differences disagree with autograd ({err:.3e})"
                assert rel32 < 1e-3, f"{method}.{name}: float32 gradient is {rel32:.3e} from float64"
    report["_worst_fd"] = worst
    report["_loss64"] = loss.item()
    return report


# ---------------------------------------------------------------------------------------------
# Fixtures


def versions() -> dict:
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "safetensors": safetensors.__version__,
    }


def run_method(model, method: str, variant_index: int, batch) -> tuple[dict, dict, dict]:
    wte = model.shared.weight
    params0 = make_params(method, variant_index, wte)
    out: dict[str, torch.Tensor] = {
        "input_ids": batch["input_ids"].to(torch.int32),
        "attention_mask": batch["attention_mask"].to(torch.float32),
        "labels": batch["labels"].to(torch.int32),
    }
    for k, v in params0.items():
        out[f"param.{k}"] = v.clone()

    # Loss, logits, gradients (float32 autograd)
    p = {k: v.clone().requires_grad_(True) for k, v in params0.items()}
    loss, logits, X = method_forward(model, method, p, batch, keep_x=True)
    loss.backward()
    out["loss"] = loss.detach().reshape(1)
    out["logits"] = logits.detach()
    # The encoder's input (not prefixed grad./param., so a loop over "grad.*" sees parameters only)
    out["encoder.inputs_embeds"] = X.detach()
    out["encoder.attention_mask"] = encoder_inputs(method, wte, params0, batch)[1]
    out["encoder.inputs_embeds_grad"] = X.grad.detach()
    grads32 = {k: v.grad.detach().clone() for k, v in p.items()}
    for k, v in grads32.items():
        out[f"grad.{k}"] = v
        assert (v != 0).any(), f"{method}: gradient of {k} is all zero"

    # Two AdamW steps, two groups, global clipping
    q = {k: torch.nn.Parameter(v.clone()) for k, v in params0.items()}
    groups = param_groups(method)
    opt = torch.optim.AdamW(
        [{"params": [q[n] for n in names], "lr": lr} for _, lr, names in groups],
        betas=BETAS,
        eps=EPS,
        weight_decay=WEIGHT_DECAY,
        foreach=False,
        fused=False,
    )
    all_params = list(q.values())
    steps_info = []
    for step in range(1, ADAMW_STEPS + 1):
        opt.zero_grad(set_to_none=True)
        l, _, _ = method_forward(model, method, q, batch)
        l.backward()
        gn = torch.nn.utils.clip_grad_norm_(all_params, CLIP, foreach=False)
        opt.step()
        out[f"adamw.loss{step}"] = l.detach().reshape(1)
        out[f"adamw.grad_norm{step}"] = gn.detach().reshape(1).to(torch.float32)
        for k, v in q.items():
            out[f"adamw.step{step}.{k}"] = v.detach().clone()
        steps_info.append({"loss": l.item(), "grad_norm": gn.item()})
    assert torch.equal(out["adamw.loss1"], out["loss"]), "AdamW step-1 loss differs from the plain loss"

    fd = fd_check(model, method, params0, batch, grads32)

    out = {k: v.contiguous() for k, v in out.items()}
    for k, v in out.items():
        assert v.dtype in (torch.float32, torch.int32), (k, v.dtype)
    return out, {"steps": steps_info, "fd": fd}, params0


def hparams(variant: str, method: str, C: int, V: int) -> dict:
    h = {
        "generator": "tools/make_peft_fixtures.py",
        "variant": variant,
        "method": method,
        "B": B, "S": S, "T": T, "M": M, "C": C, "V": V,
        "source_lengths": list(SRC_LENGTHS),
        "target_lengths": list(TGT_LENGTHS),
        "dropout": "off (model.eval(), no dropout in the offset network)",
        "optimizer": "torch.optim.AdamW(foreach=False, fused=False), bias correction on, constant lr",
        "lrs": {name: lr for name, lr, _ in param_groups(method)},
        "groups": {name: names for name, _, names in param_groups(method)},
        "betas": list(BETAS),
        "eps": EPS,
        "weight_decay": WEIGHT_DECAY,
        "clip": CLIP,
        "clip_fn": "torch.nn.utils.clip_grad_norm_(all params, 1.0, foreach=False) before each step",
        "adamw_steps": ADAMW_STEPS,
        "batch_seed": BATCH_SEED,
        "param_seed": PARAM_SEED,
        "versions": versions(),
    }
    if method == "adept":
        h["R"] = R_ADEPT
        h["formula"] = "E' = E + relu(E·A + a)·Bw + b at every source position; X = [P; E']"
    elif method == "dept":
        h["R"] = R_DEPT
        h["lora_alpha"] = LORA_ALPHA
        h["scale"] = dept_scale(R_DEPT)
        h["formula"] = "E' = E + s·(A1·B1), s = lora_alpha/sqrt(R) = 8/sqrt(R); X = [P; E']"
    else:
        h["formula"] = "X = [P; E]"
    return h


def write_fixtures(out_root: Path) -> dict:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    batch = make_batch()
    summary = {}
    pt_v10 = None
    for vi, variant in enumerate(VARIANTS):
        model = load_t5(Path(T5_DIR) / variant)
        C, V = model.shared.weight.shape[1], model.config.vocab_size
        dest = out_root / variant
        dest.mkdir(parents=True, exist_ok=True)
        for method in METHODS:
            tensors, info, params0 = run_method(model, method, vi, batch)
            # ONE metadata key: safetensors keeps __metadata__ in a Rust HashMap, so with two keys their
            # order in the header (and the file's bytes) changes from run to run.
            meta = {"config": json.dumps(hparams(variant, method, C, V), sort_keys=True)}
            path = dest / f"{method}.safetensors"
            save_file(tensors, str(path), metadata=meta)
            fd = info["fd"]
            print(
                f"{variant}/{method}: loss {tensors['loss'].item():.6f}  "
                f"grad_norm1 {info['steps'][0]['grad_norm']:.4f} loss2 {info['steps'][1]['loss']:.6f} "
                f"grad_norm2 {info['steps'][1]['grad_norm']:.4f}  fd max rel err {fd['_worst_fd']:.2e}  "
                f"f32-vs-f64 grad rel err max {max(v['f32_vs_f64_rel_norm_err'] for k, v in fd.items() if not k.startswith('_')):.2e}  "
                f"({path.stat().st_size} bytes)"
            )
            for k, v in fd.items():
                if not k.startswith("_"):
                    print(f"    {k:7s} fd {v['fd_max_rel_err']:.2e}  f32/f64 rel-norm {v['f32_vs_f64_rel_norm_err']:.2e}")
            summary[f"{variant}/{method}"] = info
            if variant == "tiny-t5-v1_0" and method == "prompt_tuning":
                pt_v10 = (tensors, params0)
    write_peft_fixture(out_root, batch, *pt_v10)
    return summary


# ---------------------------------------------------------------------------------------------
# PEFT prompt-tuning fixture (written by PEFT itself)


def decoder_rows_fill(C: int) -> torch.Tensor:
    """Deterministic values for the prompt rows PEFT's PROMPT_TUNING never reads (rows M..2M-1:
    the 'decoder' half of num_transformer_submodules=2): 0.001 * (row*C + col)."""
    return (torch.arange(M * C, dtype=torch.float32).reshape(M, C) * 1e-3).contiguous()


def write_peft_fixture(out_root: Path, batch, pt_tensors: dict, pt_params: dict) -> None:
    variant = "tiny-t5-v1_0"
    base_dir = f"{T5_DIR}/{variant}"  # relative to the repository root: what PEFT records
    torch.manual_seed(0)
    model = load_t5(base_dir)
    C = model.shared.weight.shape[1]
    cfg = PromptTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=M)
    pm = get_peft_model(model, cfg)
    emb = pm.prompt_encoder["default"].embedding
    assert emb.weight.shape == (2 * M, C), emb.weight.shape  # num_transformer_submodules = 2
    assert pm.word_embeddings is model.encoder.embed_tokens
    with torch.no_grad():
        emb.weight[:M] = pt_params["prompt"]
        emb.weight[M:] = decoder_rows_fill(C)
    dest = out_root / variant / "peft_prompt_tuning"
    if dest.exists():
        shutil.rmtree(dest)
    pm.save_pretrained(str(dest))
    (dest / "README.md").unlink(missing_ok=True)  # PEFT's boilerplate model card, not part of the format

    pm.eval()
    with torch.no_grad():
        out = pm(
            input_ids=batch["input_ids"].long(),
            attention_mask=batch["attention_mask"],
            labels=batch["labels"].long(),
        )
    # Reload what PEFT wrote onto a fresh base model: same logits
    fresh = PeftModel.from_pretrained(load_t5(base_dir), str(dest)).eval()
    with torch.no_grad():
        out2 = fresh(
            input_ids=batch["input_ids"].long(),
            attention_mask=batch["attention_mask"],
            labels=batch["labels"].long(),
        )
    ref_logits = pt_tensors["logits"]
    d1 = (out.logits - ref_logits).abs().max().item()
    d2 = (out2.logits - ref_logits).abs().max().item()
    assert d1 <= PEFT_TOL and d2 <= PEFT_TOL, f"PEFT logits differ from the PT fixture: {d1:.3e}, {d2:.3e}"
    assert abs(out.loss.item() - pt_tensors["loss"].item()) <= 1e-6
    ref = {
        "peft_logits": out.logits.detach().to(torch.float32).contiguous(),
        "peft_loss": out.loss.detach().reshape(1).to(torch.float32),
        "input_ids": pt_tensors["input_ids"],
        "attention_mask": pt_tensors["attention_mask"],
        "labels": pt_tensors["labels"],
    }
    meta = {
        "config": json.dumps(
            {
                "generator": "tools/make_peft_fixtures.py",
                "adapter": f"{OUT_DIR}/{variant}/peft_prompt_tuning",
                "base_model": base_dir,
                "encoder_rows": f"prompt_embeddings[0:{M}] == prompt_tuning.safetensors param.prompt",
                "unused_rows": f"prompt_embeddings[{M}:{2 * M}] = 0.001*(row*C+col), never read by PROMPT_TUNING",
                "versions": versions(),
            },
            sort_keys=True,
        ),
    }
    save_file(ref, str(out_root / variant / "peft_prompt_tuning.reference.safetensors"), metadata=meta)
    print(f"PEFT prompt tuning: |peft - PT fixture| max {d1:.3e}, after reload {d2:.3e}, "
          f"bitwise equal: {torch.equal(out.logits, ref_logits)}")


# ---------------------------------------------------------------------------------------------
# --verify-deno


class Skip(Exception):
    pass


def load_fixture(variant: str, method: str) -> dict[str, torch.Tensor]:
    return load_file(f"{OUT_DIR}/{variant}/{method}.safetensors")


def fixture_batch(fx: dict) -> dict[str, torch.Tensor]:
    return {
        "input_ids": fx["input_ids"].long(),
        "attention_mask": fx["attention_mask"].float(),
        "labels": fx["labels"].long(),
    }


@contextmanager
def capture_transformers_warnings():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    lg = logging.getLogger("transformers")
    lg.addHandler(handler)
    try:
        yield stream
    finally:
        lg.removeHandler(handler)


def describe_adapter(path: Path) -> str:
    cfg = json.loads((path / "adapter_config.json").read_text())
    with safe_open(str(path / "adapter_model.safetensors"), "pt") as f:
        shapes = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    return (f"peft_type={cfg.get('peft_type')} task_type={cfg.get('task_type')} "
            f"num_virtual_tokens={cfg.get('num_virtual_tokens')} "
            f"num_transformer_submodules={cfg.get('num_transformer_submodules')} tensors={shapes}")


def verify_prompt_tuning(path: Path, variant: str = "tiny-t5-v1_0") -> float:
    if not (path / "adapter_config.json").exists():
        raise Skip(f"{path}: missing (the Deno side has not written a PEFT prompt-tuning adapter there yet)")
    fx = load_fixture(variant, "prompt_tuning")
    model = load_t5(f"{T5_DIR}/{variant}")
    pm = PeftModel.from_pretrained(model, str(path)).eval()
    with torch.no_grad():
        out = pm(**fixture_batch(fx))
    d = (out.logits - fx["logits"]).abs().max().item()
    print(f"  {path}: {describe_adapter(path)}")
    print(f"  PEFT logits vs {variant}/prompt_tuning fixture: max |diff| {d:.3e} (tol {PEFT_TOL})")
    assert d <= PEFT_TOL, f"{path}: PEFT's logits differ from the PT fixture by {d:.3e}"
    return d


def identify_variant(model_dir: Path) -> str:
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        shared = f.get_tensor("shared.weight")
    for v in VARIANTS:
        with safe_open(f"{T5_DIR}/{v}/model.safetensors", "pt") as f:
            if torch.equal(f.get_tensor("shared.weight"), shared):
                return v
    raise AssertionError(f"{model_dir}: shared.weight matches none of {VARIANTS} (it must hold the ORIGINAL table)")


def verify_adept_folded(path: Path) -> float:
    model_dir, prompt_dir = path / "model", path / "prompt"
    if not (model_dir / "config.json").exists() or not (prompt_dir / "adapter_config.json").exists():
        raise Skip(f"{path}: missing model/ or prompt/ (the Deno side has not exported a folded ADePT model yet)")
    variant = identify_variant(model_dir)
    fx = load_fixture(variant, "adept")
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        names = sorted(f.keys())
    base = load_t5(f"{T5_DIR}/{variant}")
    params = {k[len("param."):]: v for k, v in fx.items() if k.startswith("param.")}
    expect_folded = fold_embedding(base.shared.weight, params)

    with capture_transformers_warnings() as log:
        model = load_t5(model_dir)
    enc = model.encoder.embed_tokens.weight
    dec = model.decoder.embed_tokens.weight
    print(f"  {model_dir}: variant {variant}; embedding tensors in the file: "
          f"{[n for n in names if 'embed' in n or n in ('shared.weight', 'lm_head.weight')]}")
    print(f"  transformers warnings: {log.getvalue().strip() or '(none)'}")
    assert enc.data_ptr() != model.shared.weight.data_ptr(), "encoder.embed_tokens was re-tied to shared"
    fold_err = (enc - expect_folded).abs().max().item()
    print(f"  encoder.embed_tokens vs fold(wte, fixture params): max |diff| {fold_err:.3e}")
    assert fold_err <= FOLD_TOL, f"encoder.embed_tokens.weight is not the folded table ({fold_err:.3e})"
    assert torch.equal(model.shared.weight, base.shared.weight), "shared.weight is not the original table"
    assert torch.equal(dec, base.shared.weight), "decoder.embed_tokens.weight is not the original table"
    assert torch.equal(model.lm_head.weight, base.lm_head.weight), "lm_head.weight differs from the base model"
    got = dict(model.named_parameters(remove_duplicate=False))
    want = dict(base.named_parameters(remove_duplicate=False))
    assert got.keys() == want.keys()
    for n in want:
        if n != "encoder.embed_tokens.weight":
            assert torch.equal(got[n], want[n]), f"{n} differs from the base checkpoint"

    pm = PeftModel.from_pretrained(model, str(prompt_dir)).eval()
    assert pm.word_embeddings is model.encoder.embed_tokens
    print(f"  {prompt_dir}: {describe_adapter(prompt_dir)}")
    with torch.no_grad():
        out = pm(**fixture_batch(fx))
    d = (out.logits - fx["logits"]).abs().max().item()
    print(f"  folded model + PEFT prompt logits vs {variant}/adept fixture: max |diff| {d:.3e} (tol {FOLD_TOL})")
    assert d <= FOLD_TOL, f"{path}: folded logits differ from the ADePT fixture by {d:.3e}"
    return d


def verify_deno(root: Path) -> int:
    torch.set_num_threads(1)
    checks = [("prompt_tuning", lambda: verify_prompt_tuning(root / "prompt_tuning")),
              ("adept_folded", lambda: verify_adept_folded(root / "adept_folded"))]
    ran = 0
    for name, fn in checks:
        print(f"[verify-deno] {name}")
        try:
            fn()
            ran += 1
            print(f"[verify-deno] {name}: OK")
        except Skip as e:
            print(f"[verify-deno] {name}: SKIPPED: {e}")
    return ran


# ---------------------------------------------------------------------------------------------
# --verify-selftest: write Deno-style folders with plain Python (no PEFT writer) and verify them


def write_prompt_adapter(dest: Path, prompt: torch.Tensor, submodules: int, base: str) -> None:
    """What a non-PEFT writer needs: adapter_config.json + adapter_model.safetensors."""
    dest.mkdir(parents=True, exist_ok=True)
    rows = prompt if submodules == 1 else torch.cat([prompt, torch.zeros_like(prompt)], 0)
    cfg = {
        "base_model_name_or_path": base,
        "inference_mode": True,
        "num_transformer_submodules": submodules,
        "num_virtual_tokens": prompt.shape[0],
        "peft_type": "PROMPT_TUNING",
        "prompt_tuning_init": "RANDOM",
        "task_type": "SEQ_2_SEQ_LM",
        "token_dim": prompt.shape[1],
    }
    (dest / "adapter_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    save_file({"prompt_embeddings": rows.contiguous()}, str(dest / "adapter_model.safetensors"), metadata={"format": "pt"})


def write_folded_model(dest: Path, variant: str, params: dict, with_decoder: bool) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    src = Path(T5_DIR) / variant
    shutil.copy(src / "config.json", dest / "config.json")
    sd = load_file(str(src / "model.safetensors"))
    sd["encoder.embed_tokens.weight"] = fold_embedding(sd["shared.weight"], params).contiguous()
    if with_decoder:
        sd["decoder.embed_tokens.weight"] = sd["shared.weight"].clone()
    save_file(sd, str(dest / "model.safetensors"), metadata={"format": "pt"})


def verify_selftest(work: Path) -> None:
    work = work.resolve()
    assert ROOT not in work.parents and work != ROOT, "write the self-test outside the repository"
    if work.exists():
        shutil.rmtree(work)
    print(f"[selftest] writing Deno-style adapters into {work}")
    pt = load_fixture("tiny-t5-v1_0", "prompt_tuning")
    print("[selftest] missing folders skip:")
    assert verify_deno(work / "empty") == 0
    for submodules in (2, 1):
        root = work / f"pt_submodules{submodules}"
        write_prompt_adapter(root / "prompt_tuning", pt["param.prompt"], submodules, f"{T5_DIR}/tiny-t5-v1_0")
        print(f"[selftest] prompt tuning, num_transformer_submodules={submodules}")
        assert verify_deno(root) == 1
    # PEFT's own folder, as a Deno copy of it would look
    root = work / "pt_peft_written"
    shutil.copytree(f"{OUT_DIR}/tiny-t5-v1_0/peft_prompt_tuning", root / "prompt_tuning")
    print("[selftest] prompt tuning, the PEFT-written fixture folder")
    assert verify_deno(root) == 1
    for variant in VARIANTS:
        fx = load_fixture(variant, "adept")
        params = {k[len("param."):]: v for k, v in fx.items() if k.startswith("param.")}
        for with_decoder in (False, True):
            root = work / f"{variant}_decoder{int(with_decoder)}"
            write_folded_model(root / "adept_folded" / "model", variant, params, with_decoder)
            write_prompt_adapter(root / "adept_folded" / "prompt", params["prompt"], 2, "model")
            print(f"[selftest] ADePT folded, {variant}, decoder.embed_tokens.weight written: {with_decoder}")
            assert verify_deno(root) == 1
    # Negative controls: each must fail
    fx = load_fixture("tiny-t5-v1_0", "adept")
    params = {k[len("param."):]: v for k, v in fx.items() if k.startswith("param.")}
    negatives = {
        # an unfolded table equals shared.weight, so transformers ties it back (and the offset is lost)
        "unfolded": ({**params, "Bw": torch.zeros_like(params["Bw"]), "b": torch.zeros_like(params["b"])}, params["prompt"]),
        "wrong_fold": ({**params, "Bw": params["Bw"] * 1.01}, params["prompt"]),
        "wrong_prompt": (params, params["prompt"] + 1e-3),
    }
    for name, (fold_params, prompt) in negatives.items():
        root = work / f"negative_{name}" / "adept_folded"
        write_folded_model(root / "model", "tiny-t5-v1_0", fold_params, False)
        write_prompt_adapter(root / "prompt", prompt, 2, "model")
        try:
            verify_adept_folded(root)
        except AssertionError as e:
            print(f"[selftest] negative control '{name}' fails as it should: {e}")
        else:
            raise AssertionError(f"negative control {name} passed")
    root = work / "negative_pt" / "prompt_tuning"
    write_prompt_adapter(root, pt["param.prompt"] + 1e-3, 2, f"{T5_DIR}/tiny-t5-v1_0")
    try:
        verify_prompt_tuning(root)
    except AssertionError as e:
        print(f"[selftest] negative control 'pt_wrong_prompt' fails as it should: {e}")
    else:
        raise AssertionError("negative control pt_wrong_prompt passed")
    print("[selftest] OK")


# ---------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verify-deno", nargs="?", const="", default=None, metavar="DIR",
                    help="check adapters the Deno code wrote (default tests/fixtures/peft/deno_written)")
    ap.add_argument("--verify-selftest", default=None, metavar="DIR",
                    help="write Deno-style adapters with Python into DIR (outside the repo) and verify them")
    args = ap.parse_args()
    cwd = Path.cwd()
    resolve = lambda p: (cwd / p).resolve()
    os.chdir(ROOT)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_warning()
    if args.verify_deno is not None:
        root = resolve(args.verify_deno) if args.verify_deno else ROOT / OUT_DIR / "deno_written"
        ran = verify_deno(root)
        print(f"[verify-deno] {ran} check(s) ran, all passed" if ran else "[verify-deno] nothing to check")
        return
    if args.verify_selftest is not None:
        verify_selftest(resolve(args.verify_selftest))
        return
    out = Path(OUT_DIR)
    out.mkdir(parents=True, exist_ok=True)
    write_fixtures(out)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and "deno_written" not in p.parts)
    print(f"total {total} bytes under {OUT_DIR} ; versions {json.dumps(versions())}")


if __name__ == "__main__":
    main()
