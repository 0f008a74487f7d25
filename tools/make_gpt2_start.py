#!/usr/bin/env python3
"""A GPT-2 checkpoint to start the default run from (run by hand; the learning-bar check of
model.init): random weights at the default run's size (width 128, 3 layers, 4 heads) made by
transformers, with a byte-level BPE tokenizer trained by `tokenizers` on the synthetic task's
prompts and summaries (taken from a finished run's preferences.jsonl).

    [BPE_VOCAB=288] python3 tools/make_gpt2_start.py RUN_DIR OUT_DIR
    rlaif launch cluster.yaml --set model.init=OUT_DIR

docs/PRETRAINED.md has the win rates this reached.
"""
import json
import os
import sys

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel


def main(run, out):
    texts = []
    for line in open(os.path.join(run, "preferences.jsonl")):
        row = json.loads(line)
        texts += [row["prompt"], row.get("a", ""), row.get("b", "")]
    os.makedirs(out, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=int(os.environ.get("BPE_VOCAB", "288")), min_frequency=4, special_tokens=["<|endoftext|>"])
    bpe.save_model(out)
    vocab = len(json.load(open(os.path.join(out, "vocab.json"))))
    eot = json.load(open(os.path.join(out, "vocab.json")))["<|endoftext|>"]
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=vocab, n_positions=64, n_embd=128, n_layer=3, n_head=4,
                        bos_token_id=eot, eos_token_id=eot, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        activation_function="gelu_new")
    GPT2LMHeadModel(config).save_pretrained(out)
    print(f"wrote {out}: vocabulary {vocab}, {len(texts)} training texts")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
