"""Dev-only: writes tests/fixtures/t5_buckets.json, the relative-position buckets transformers'
T5 computes (T5Attention._relative_position_bucket, float32 math as in torch) for relative
positions -1100..1100, for a few (num_buckets, max_distance) pairs, both directions.

Run: /tmp/ref/bin/python tools/make_bucket_fixture.py
"""
import json
import torch
import transformers
from transformers.models.t5.modeling_t5 import T5Attention

rp = torch.arange(-1100, 1101)
out = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__},
       "relative_positions": [int(-1100), int(1100)], "cases": []}
for nb, md in [(32, 128), (32, 64), (16, 128), (64, 256)]:
    for bidir in (True, False):
        b = T5Attention._relative_position_bucket(rp, bidirectional=bidir, num_buckets=nb, max_distance=md)
        out["cases"].append({"num_buckets": nb, "max_distance": md, "bidirectional": bidir,
                             "buckets": [int(x) for x in b]})
with open("tests/fixtures/t5_buckets.json", "w") as f:
    json.dump(out, f, separators=(",", ":"))
print("wrote tests/fixtures/t5_buckets.json")
