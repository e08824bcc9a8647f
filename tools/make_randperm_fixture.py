#!/usr/bin/env python3
"""Writes tests/fixtures/randperm.json: torch.randperm permutations the TypeScript port must match.

Dev-only (needs torch and numpy); the project never runs Python. Usage:

    /tmp/ref/bin/python tools/make_randperm_fixture.py            # the fast sizes (seconds)
    /tmp/ref/bin/python tools/make_randperm_fixture.py --huge     # also the 64-bit branch
                                                                  # boundary (~2 min, ~4 GB RAM)

For each n the fixture keeps the first and last 16 entries and the SHA-256 of the whole
permutation as int32 little-endian bytes, so it stays small while pinning every entry.

Dataset sizes (rows of the Hugging Face splits; checked against the nyu-mll/glue and
aps/super_glue dataset cards' `num_examples`):
  GLUE validation: cola 1043, sst2 872, mrpc 408, qqp 40430, stsb 1500, qnli 5463, rte 277,
                   mnli validation_matched 9815 / validation_mismatched 9832
  GLUE train:      cola 8551, sst2 67349, mrpc 3668, qqp 363846, stsb 5749, qnli 104743,
                   rte 2490, mnli 392702
  SuperGLUE validation: boolq 3270, cb 56, wic 638, wsc.fixed 104, multirc 4848
  SuperGLUE train:      boolq 9427, cb 250, wic 5428, wsc.fixed 554, multirc 27243
Neighbours n-1 and n+1 of every size the splits use are included as well.
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

SEED = 42

# Sizes whose permutation defines a split (small sets: validation; large sets: train).
SPLIT_SIZES = {
    "cola.validation": 1043,
    "rte.validation": 277,
    "mrpc.validation": 408,
    "stsb.validation": 1500,
    "boolq.validation": 3270,
    "cb.validation": 56,
    "wic.validation": 638,
    "wsc.fixed.validation": 104,
    "multirc.validation": 4848,
    "qqp.train": 363846,
    "qnli.train": 104743,
    "sst2.train": 67349,
}
# Sizes only drawn when a split is capped (the authors' n_obs / max_*_samples).
CAP_SIZES = {
    "cola.train": 8551,
    "rte.train": 2490,
    "mrpc.train": 3668,
    "stsb.train": 5749,
    "boolq.train": 9427,
    "cb.train": 250,
    "wic.train": 5428,
    "wsc.fixed.train": 554,
    "multirc.train": 27243,
    "qqp.validation": 40430,
    "qnli.validation": 5463,
    "sst2.validation": 872,
    "mnli.train": 392702,
    "mnli.validation_matched": 9815,
    "mnli.validation_mismatched": 9832,
}
EDGE_SIZES = [0, 1, 2, 3, 10, 1000]
# torch switches to 64-bit draws at n >= UINT32_MAX // 20.
THRESHOLD = (2**32 - 1) // 20


def torch_perm(n, seed=SEED, generator=None):
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)


def entry(n, perm, label=None):
    a = perm.numpy().astype("<i4")
    assert a.shape == (n,)
    out = {
        "n": n,
        "head": a[:16].tolist(),
        "tail": a[-16:].tolist() if n else [],
        "sha256": hashlib.sha256(a.tobytes()).hexdigest(),
    }
    if label:
        out["label"] = label
    return out


def dump(obj):
    """JSON with one list item or key per line and everything below that compact."""
    lines = []
    for i, (k, v) in enumerate(obj.items()):
        sep = "," if i < len(obj) - 1 else ""
        if isinstance(v, list) and v and isinstance(v[0], dict):
            items = [" " * 2 + json.dumps(x, separators=(",", ":")) for x in v]
            lines.append(f" {json.dumps(k)}: [\n" + ",\n".join(items) + f"\n ]{sep}")
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}{sep}")
    return "{\n" + "\n".join(lines) + "\n}\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--huge", action="store_true", help="add n = THRESHOLD - 1, THRESHOLD")
    parser.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "randperm.json"),
    )
    args = parser.parse_args()

    labels = {}
    for name, n in {**SPLIT_SIZES, **CAP_SIZES}.items():
        labels.setdefault(n, []).append(name)
    sizes = set(EDGE_SIZES) | set(labels)
    for n in SPLIT_SIZES.values():
        sizes |= {n - 1, n + 1}
    perms = [
        entry(n, torch_perm(n), ",".join(labels.get(n, [])) or None) for n in sorted(sizes)
    ]

    # The reference check from docs/method.md.
    assert torch_perm(10).tolist() == [2, 6, 1, 8, 4, 5, 0, 9, 3, 7]

    # Seed handling: negative seeds wrap as uint64, only the low 32 bits matter.
    seeds = [
        {"seed": str(s), "n": 50, "perm": torch_perm(50, seed=s).tolist()}
        for s in [0, 1, 42, 5489, 2**31, 2**32 - 1, 2**32 + 42, -1, -(2**63), 2**64 - 1]
    ]

    # One generator reused across calls continues its stream.
    g = torch.Generator().manual_seed(SEED)
    stream = [entry(n, torch_perm(n, generator=g)) for n in [10, 7, 1, 0, 1000, 56]]

    # Raw MT19937 outputs (numpy's legacy RandomState seeding is the same init_genrand).
    raw = np.random.RandomState(SEED)._bit_generator.random_raw(1300).tolist()
    mt = {"seed": SEED, "first": raw[:8], "from620": raw[620:632], "from1240": raw[1240:1252]}

    fixture = {
        "about": "torch.randperm(n, generator=torch.Generator().manual_seed(seed)) on CPU; "
        "sha256 is over the permutation as int32 little-endian bytes. "
        "Written by tools/make_randperm_fixture.py.",
        "torch": torch.__version__,
        "seed": SEED,
        "threshold64": THRESHOLD,
        "perms": perms,
        "seeds": seeds,
        "stream": stream,
        "mt19937": mt,
    }

    if args.huge:
        fixture["huge"] = [entry(n, torch_perm(n)) for n in (THRESHOLD - 1, THRESHOLD)]
    elif os.path.exists(args.out):
        # Keep previously generated huge entries when regenerating only the fast part.
        with open(args.out) as f:
            old = json.load(f)
        if "huge" in old:
            fixture["huge"] = old["huge"]

    with open(args.out, "w") as f:
        f.write(dump(fixture))
    print(f"wrote {args.out}: {len(perms)} sizes", file=sys.stderr)


if __name__ == "__main__":
    main()
