#!/usr/bin/env python3
"""Reference fixtures for rlaif's GPT-2, made with PyTorch + transformers (run by hand; CI never
runs this). Writes Tests/ModelsTests/Fixtures/gpt2-tiny/:

  config.json, model.safetensors   a tiny random GPT2LMHeadModel, via save_pretrained
  reference.safetensors            for fixed inputs: input_ids, logits, loss, per-token log-probs
                                   of each next token, and the gradient of the loss for every
                                   parameter (grad.<name>, HF names, wte's including the tied head)

and Tests/ModelsTests/Fixtures/bpe-tiny/:

  vocab.json, merges.txt           a small byte-level BPE (GPT-2's scheme) trained on a fixed text
  reference.json                   {"cases": [{"text", "ids"}]}: ids from transformers'
                                   GPT2Tokenizer (the reference implementation) on those files

    python3 tools/make_reference.py            # (re)make the fixtures
    python3 tools/make_reference.py check DIR  # load an rlaif-written checkpoint in transformers
                                               # and compare its logits with DIR/rlaif_logits.safetensors
"""
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures", "gpt2-tiny")


def make():
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=61, n_positions=16, n_embd=24, n_layer=2, n_head=3,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, activation_function="gelu_new",
        layer_norm_epsilon=1e-5, initializer_range=0.2,
    )
    model = GPT2LMHeadModel(config).float()
    # Non-trivial norms and biases, so their gradients and effects are exercised.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "ln_" in name:
                p.add_(0.1 * torch.randn_like(p))
    model.train()  # dropout is 0; train mode keeps autograd on
    model.save_pretrained(OUT, safe_serialization=True)
    if os.path.exists(os.path.join(OUT, "generation_config.json")):
        os.remove(os.path.join(OUT, "generation_config.json"))  # not part of the fixture

    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, config.vocab_size, (2, 9), generator=g)
    out = model(input_ids=input_ids, labels=input_ids)
    out.loss.backward()
    logprobs = torch.log_softmax(out.logits[:, :-1].double(), dim=-1).gather(-1, input_ids[:, 1:, None])[..., 0]

    ref = {
        "input_ids": input_ids.to(torch.int32).contiguous(),
        "logits": out.logits.detach().contiguous(),
        "loss": out.loss.detach().reshape(1),
        "logprobs": logprobs.float().contiguous(),
    }
    for name, p in model.named_parameters():
        ref["grad." + name] = p.grad.detach().contiguous()
    save_file(ref, os.path.join(OUT, "reference.safetensors"))
    print("wrote", OUT, "with", len(ref), "reference tensors; loss", out.loss.item())


TOKENIZER_OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures", "bpe-tiny")

CASES = [
    "Hello world",
    "Hello  world   with runs of spaces",
    "  leading and trailing  ",
    "line one\nline two\n\n\tindented\r\n",
    "I'm sure they'll say it's what we'd've DONE'S",
    "numbers 12345 and 3.14159, version 2.0!",
    "ünïcödé naïve café — “quotes” and emoji 🙂🚀",
    "日本語のテキストと中文",
    "mixed123abc___def---ghi...",
    "<|endoftext|>special in the middle<|endoftext|>",
    "",
    " ",
    "a",
    "tabs\tand\u00a0non-breaking spaces",
]


class OpenAIEncoder:
    """GPT-2's original byte-level BPE (OpenAI's encoder.py algorithm), as a second reference."""

    def __init__(self, vocab_path, merges_path):
        import json

        import regex

        with open(vocab_path, encoding="utf-8") as f:
            self.encoder = json.load(f)
        with open(merges_path, encoding="utf-8") as f:
            merges = [tuple(line.split()) for line in f.read().split("\n")[1:] if line]
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
        cs = bs[:]
        n = 0
        for b in range(256):
            if b not in bs:
                bs.append(b)
                cs.append(256 + n)
                n += 1
        self.byte_encoder = dict(zip(bs, map(chr, cs)))
        self.pattern = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
        self.special = "<|endoftext|>"

    def bpe(self, token):
        word = list(token)
        while len(word) > 1:
            pairs = [(word[i], word[i + 1]) for i in range(len(word) - 1)]
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    def encode(self, text):
        ids = []
        for k, part in enumerate(text.split(self.special)):
            if k > 0:
                ids.append(self.encoder[self.special])
            for token in self.pattern.findall(part):
                mapped = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
                ids.extend(self.encoder[t] for t in self.bpe(mapped))
        return ids


def make_tokenizer():
    import json

    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Tokenizer

    os.makedirs(TOKENIZER_OUT, exist_ok=True)
    corpus = (
        "The quick brown fox jumps over the lazy dog. " * 3
        + "Reinforcement learning from AI feedback trains a reward model on preferences. "
        + "It's what they'd've said; we'll see. Numbers like 12345 and 3.14159 appear. "
        + "Unicode: café naïve ünïcödé — 日本語 中文 🙂. "
        + "Whitespace   runs\n\nand\ttabs. "
    ) * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([corpus], vocab_size=400, min_frequency=2, special_tokens=["<|endoftext|>"])
    bpe.save_model(TOKENIZER_OUT)
    hf = GPT2Tokenizer(os.path.join(TOKENIZER_OUT, "vocab.json"), os.path.join(TOKENIZER_OUT, "merges.txt"))
    openai = OpenAIEncoder(os.path.join(TOKENIZER_OUT, "vocab.json"), os.path.join(TOKENIZER_OUT, "merges.txt"))
    cases = []
    for text in CASES:
        ids = hf.encode(text)
        assert ids == openai.encode(text), f"transformers and encoder.py disagree on {text!r}"
        assert hf.decode(ids) == text, f"no round trip for {text!r}"
        cases.append({"text": text, "ids": ids})
    with open(os.path.join(TOKENIZER_OUT, "reference.json"), "w", encoding="utf-8") as f:
        json.dump({"cases": cases}, f, ensure_ascii=False)
    print("wrote", TOKENIZER_OUT, "with", len(cases), "cases; vocabulary", len(hf))


def check(directory):
    model = GPT2LMHeadModel.from_pretrained(directory).float().eval()
    expected = load_file(os.path.join(directory, "rlaif_logits.safetensors"))
    with torch.no_grad():
        logits = model(input_ids=expected["input_ids"].long()).logits
    diff = (logits - expected["logits"]).abs().max().item()
    print(f"transformers loaded {directory}; max |logit difference| = {diff:.3g}")
    return 0 if diff < 1e-4 else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    make()
    make_tokenizer()
