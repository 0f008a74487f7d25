#!/usr/bin/env python3
"""Reference fixtures for rlaif's tokenizer.json reader, made with Hugging Face `tokenizers` (run by
hand; CI never runs this). For each pattern family it trains a small byte-level BPE and writes
Tests/ModelsTests/Fixtures/tokenizers/FAMILY/:

  tokenizer.json          as the library saves it (llama3's merges rewritten in the older
                          "a b" string form, so both JSON forms are read)
  tokenizer_config.json   bos/eos/pad tokens
  reference.json          {"cases": [{"text", "ids", "decoded"}]}: ids from
                          Tokenizer.encode(text, add_special_tokens=False) and the decoding of
                          those ids, on the same 240 strings for every family

Families: gpt2 (ByteLevel's own regex), llama3 (Split on Llama 3's regex, ignore_merges),
qwen2 (NFC, Split on Qwen2's regex), smollm (Digits, then ByteLevel's regex).

    python3 tools/make_tokenizer_reference.py
"""
import json
import os
import random

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures", "tokenizers")

LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
         r"|\s*[\r\n]+|\s+(?!\S)|\s+")

SPECIALS = {
    "gpt2": ["<|endoftext|>"],
    "llama3": ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    "qwen2": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    "smollm": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
}
CONFIG = {
    "gpt2": {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"},
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "qwen2": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "smollm": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>"},
}

FRAGMENTS = [
    "Hello", "world", "the quick brown fox", "RLAIF", "reward model", "It's", "they'll", "we'd've", "I'M", "DON'T",
    "12345", "3.14159", "2024-12-06", "1,000,000", "0x1F", "v2.0!", "café", "naïve", "ünïcödé", "Ελληνικά",
    "русский текст", "日本語のテキスト", "中文字符", "한국어", "עברית", "العربية", "हिन्दी", "🙂", "🚀🔥", "👩‍💻",
    "e\u0301", "\u00a0", "\t", "\n", "\r\n", "\n\n\n", "   ", "  ", "---", "...", "___", "<tag>", "{\"k\": 1}",
    "def f(x):\n    return x", "a+b=c", "$100", "50%", "#hashtag", "@user", "'quoted'", "\"double\"",
]


def corpus_cases(specials):
    rng = random.Random(0)
    cases = ["", " ", "a", "Hello world", "  leading and trailing  ", "line one\nline two\n\n\tindented\r\n",
             "I'm sure they'll say it's what we'd've DONE'S", "numbers 12345 and 3.14159, version 2.0!",
             "ünïcödé naïve café — “quotes” and emoji 🙂🚀", "日本語のテキストと中文", "tabs\tand\u00a0nbsp"]
    while len(cases) < 240:
        parts = []
        for _ in range(rng.randint(1, 7)):
            r = rng.random()
            if r < 0.08:
                parts.append(rng.choice(specials))
            elif r < 0.2:
                parts.append(rng.choice([" ", "  ", "\n", "\t", "\r\n", "   \n"]))
            else:
                parts.append(rng.choice(FRAGMENTS))
        joiner = rng.choice(["", " ", " ", "\n"])
        cases.append(joiner.join(parts))
    return cases


def training_text():
    rng = random.Random(1)
    return [" ".join(rng.choice(FRAGMENTS) for _ in range(12)) for _ in range(400)]


def build(family):
    tok = Tokenizer(models.BPE(ignore_merges=(family == "llama3")))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if family == "gpt2":
        tok.pre_tokenizer = byte_level
    elif family == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    else:
        pattern = LLAMA3 if family == "llama3" else QWEN2
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    if family == "qwen2":
        tok.normalizer = normalizers.NFC()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, min_frequency=2, special_tokens=SPECIALS[family],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(training_text(), trainer=trainer)
    return tok


def main():
    for family in SPECIALS:
        out = os.path.join(OUT, family)
        os.makedirs(out, exist_ok=True)
        tok = build(family)
        path = os.path.join(out, "tokenizer.json")
        tok.save(path)
        if family == "llama3":
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            data["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]]
            with open(path, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False)
            tok = Tokenizer.from_file(path)
        with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(CONFIG[family], f, indent=2)
        cases = []
        for text in corpus_cases(SPECIALS[family]):
            ids = tok.encode(text, add_special_tokens=False).ids
            cases.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
        with open(os.path.join(out, "reference.json"), "w", encoding="utf-8") as f:
            json.dump({"cases": cases}, f, ensure_ascii=False)
        lossless = sum(c["decoded"] == c["text"] for c in cases)
        print(f"wrote {out}: vocabulary {tok.get_vocab_size()}, {len(cases)} cases, {lossless} decode to their text")


if __name__ == "__main__":
    main()
