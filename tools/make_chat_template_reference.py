#!/usr/bin/env python3
"""Reference renderings for rlaif's chat templates, made with transformers' apply_chat_template
(run by hand; CI never runs this). Writes Tests/ModelsTests/Fixtures/chat-templates.json:

  {"templates": {NAME: SOURCE}, "cases": [{"template", "messages", "add_generation_prompt",
   "expected" (the rendered text) or "error" (true where the template raises)}]}

Templates: ChatML, Llama 3 (bos inside, trim), Zephyr (written on separate lines, relying on
trim_blocks), a Mistral-style one (slicing, raise_exception for roles that do not alternate), and
one in Qwen 2.5's manner (namespace, loop filters, is defined, tojson, string methods). Each is
rendered for a single user turn, a system turn, multi-turn history, with and without the
generation prompt.

    python3 tools/make_chat_template_reference.py
"""
import json
import os

from transformers import PreTrainedTokenizerFast

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures", "chat-templates.json")
TOKENIZER = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures", "tokenizers", "qwen2", "tokenizer.json")

TEMPLATES = {
    "chatml": (
        "{%- for message in messages %}"
        "{%- if loop.first and message['role'] != 'system' %}"
        "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
        "{%- endif %}"
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    ),
    "llama3": (
        "{% set loop_messages = messages %}{% for message in loop_messages %}"
        "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
        "+ message['content'] | trim + '<|eot_id|>' %}"
        "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
        "{{ content }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
    ),
    "zephyr": (
        "{% for message in messages %}\n"
        "{% if message['role'] == 'user' %}\n"
        "{{ '<|user|>\\n' + message['content'] + eos_token }}\n"
        "{% elif message['role'] == 'system' %}\n"
        "{{ '<|system|>\\n' + message['content'] + eos_token }}\n"
        "{% elif message['role'] == 'assistant' %}\n"
        "{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n"
        "{% endif %}\n"
        "{% if loop.last and add_generation_prompt %}\n"
        "{{ '<|assistant|>' }}\n"
        "{% endif %}\n"
        "{% endfor %}"
    ),
    "mistral": (
        "{%- if messages[0]['role'] == 'system' %}\n"
        "    {%- set system_message = messages[0]['content'] %}\n"
        "    {%- set loop_messages = messages[1:] %}\n"
        "{%- else %}\n"
        "    {%- set loop_messages = messages %}\n"
        "{%- endif %}\n"
        "\n"
        "{{- bos_token }}\n"
        "{%- for message in loop_messages %}\n"
        "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
        "        {{- raise_exception('After the optional system message, conversation roles must alternate "
        "user/assistant/user/assistant/...') }}\n"
        "    {%- endif %}\n"
        "    {%- if message['role'] == 'user' %}\n"
        "        {%- if loop.first and system_message is defined %}\n"
        "            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n"
        "        {%- else %}\n"
        "            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n"
        "        {%- endif %}\n"
        "    {%- elif message['role'] == 'assistant' %}\n"
        "        {{- ' ' + message['content'] + eos_token}}\n"
        "    {%- else %}\n"
        "        {{- raise_exception('Only user and assistant roles are supported!') }}\n"
        "    {%- endif %}\n"
        "{%- endfor %}\n"
    ),
    "namespace": (
        "{%- set ns = namespace(system=none, turns=0, last_user='') -%}\n"
        "{%- for m in messages if m.role == 'system' -%}{%- set ns.system = m.content.strip() -%}{%- endfor -%}\n"
        "{%- for m in messages -%}\n"
        "  {%- if m.role == 'user' -%}{%- set ns.turns = ns.turns + 1 -%}{%- set ns.last_user = m.content -%}{%- endif -%}\n"
        "{%- endfor -%}\n"
        "{%- if ns.system is not none -%}[SYS {{ ns.system | tojson }}]\n{% endif -%}\n"
        "{%- for m in messages | rejectattr('role', 'equalto', 'system') -%}\n"
        "<{{ m.role | upper }}#{{ loop.index }}/{{ loop.length }}>{{ m.content.rstrip() }}"
        "{% if not loop.last %}\n{% endif %}\n"
        "{%- endfor %}\n"
        "{%- if add_generation_prompt %}\n"
        "<ASSISTANT turns={{ ns.turns }} last={{ ns.last_user[:5] ~ '...' if ns.last_user | length > 5 "
        "else ns.last_user }}>\n"
        "{%- endif %}"
    ),
}

CONVERSATIONS = [
    [{"role": "user", "content": "Hello there!"}],
    [{"role": "system", "content": "  You answer briefly.  "}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "Tell me a joke."}, {"role": "assistant", "content": "Why did the model cross "
     "the road?\n"}, {"role": "user", "content": "  Why?  "}],
    [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello! 🙂"}, {"role": "user", "content": "Say \"quote\" and \\n"}],
    [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
]


def main():
    tok = PreTrainedTokenizerFast(tokenizer_file=TOKENIZER, bos_token="<|im_start|>", eos_token="<|im_end|>")
    cases = []
    for name, source in TEMPLATES.items():
        tok.chat_template = source
        for messages in CONVERSATIONS:
            for generation in (False, True):
                case = {"template": name, "messages": messages, "add_generation_prompt": generation}
                try:
                    case["expected"] = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
                except Exception as error:  # the template's own raise_exception
                    case["error"] = True
                    case["message"] = str(error)
                cases.append(case)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "templates": TEMPLATES, "cases": cases},
                  f, ensure_ascii=False, indent=1)
    print("wrote", OUT, len(cases), "cases,", sum("error" in c for c in cases), "raising")


if __name__ == "__main__":
    main()
