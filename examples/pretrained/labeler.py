#!/usr/bin/env python3
"""A stand-in judge for examples/pretrained.yaml (standard library only; a real run would point
labeler.kind openai at a hosted or local LLM). rlaif's `command` labeler protocol: one JSON
question per line on stdin, one JSON answer per line on stdout. It prefers the response that
names the question's topic and ends its sentence, then the shorter one."""
import json
import re
import sys


def quality(prompt, response):
    topic = re.findall(r"(?:about|is|Describe) ([a-z ]+)\.", prompt)
    named = bool(topic) and topic[-1].split()[-1] in response.lower()
    return 2 * named + response.strip().endswith(".") - len(response) / 200


for line in sys.stdin:
    q = json.loads(line)
    prompt = q.get("prompt", "")
    if q["kind"] == "pair":
        a, b = quality(prompt, q["first"]), quality(prompt, q["second"])
        p = 0.5 if a == b else (0.9 if a > b else 0.1)
        print(json.dumps({"id": q["id"], "order": q["order"], "probability_first": p}), flush=True)
    else:
        print(json.dumps({"id": q["id"], "score": max(1, min(10, round(3 + 3 * quality(prompt, q["response"]))))}),
              flush=True)
