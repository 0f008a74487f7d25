#!/usr/bin/env python3
"""Checks that a run's exported models load in transformers and match rlaif (run by hand; needs
torch and transformers, which CI does not install).

    python3 tools/check_export.py RUN_DIR [RLAIF_BINARY]

* models/policy loads with AutoModelForCausalLM (GPT2LMHeadModel, LlamaForCausalLM, …) with no
  missing or unexpected weights, and the per-token log-probs of held-out responses (from
  RUN_DIR/evaluation.jsonl) equal `rlaif score`'s within 1e-4.
* models/reward (when the run trained one) loads with AutoModelForSequenceClassification with no
  missing or unexpected weights and gives finite scores; printed is how often it scores the
  ground truth's better response higher on those pairs.
Token ids are the exported tokenizer's (AutoTokenizer, for a run started from model.init) or UTF-8
bytes (rlaif's byte tokenizer, see rlaif_tokenizer.json).
"""
import json, os, subprocess, sys, tempfile

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

run = sys.argv[1]
binary = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", ".build", "release", "rlaif")
models = os.path.join(run, "models")
rows = [json.loads(l) for l in open(os.path.join(run, "evaluation.jsonl"))][:32]
pairs = [(r["prompt"], r["policy"]) for r in rows if r["policy"] and "\ufffd" not in r["policy"]]

if os.path.exists(os.path.join(models, "policy", "tokenizer.json")):
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(models, "policy"))
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)
    print(f"tokenizer: AutoTokenizer loads it ({type(tokenizer).__name__}, {len(tokenizer)} tokens)")
else:
    encode = lambda text: list(text.encode())
policy, info = AutoModelForCausalLM.from_pretrained(os.path.join(models, "policy"), output_loading_info=True)
assert not info["missing_keys"] and not info["unexpected_keys"], info
policy.eval()
with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
    for p, c in pairs:
        f.write(json.dumps({"prompt": p, "completion": c}) + "\n")
out = subprocess.run([binary, "score", "--model", os.path.join(models, "policy"), "--input", f.name],
                     check=True, capture_output=True, text=True).stdout.splitlines()
worst = 0.0
for (p, c), line in zip(pairs, out):
    ours = json.loads(line)["token_logprobs"]
    ids = torch.tensor([encode(p) + encode(c)])
    with torch.no_grad():
        lp = torch.log_softmax(policy(ids).logits.double(), -1)
    n = len(encode(p))
    theirs = [lp[0, n - 1 + i, ids[0, n + i]].item() for i in range(len(encode(c)))]
    worst = max(worst, max(abs(a - b) for a, b in zip(ours, theirs)))
print(f"policy: {len(pairs)} responses, largest log-prob difference vs rlaif score {worst:.2e}")
assert worst < 1e-4

reward_dir = os.path.join(models, "reward")
if os.path.isdir(reward_dir):
    reward, info = AutoModelForSequenceClassification.from_pretrained(reward_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    reward.eval()
    agree = total = 0
    for r in rows:
        q = r.get("quality")
        if not q or q["policy"] == q["sft"]:
            continue
        with torch.no_grad():
            s = [reward(torch.tensor([encode(r["prompt"]) + encode(r[k])])).logits.item() for k in ("policy", "sft")]
        assert all(map(lambda x: x == x and abs(x) < 1e6, s))
        total += 1
        agree += (s[0] > s[1]) == (q["policy"] > q["sft"])
    print(f"reward: loads; prefers the ground truth's better response in {agree}/{total} held-out pairs")
print("ok")
