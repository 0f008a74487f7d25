#!/usr/bin/env python3
"""A labeler program for rlaif's `command` labeler tests (standard library only). Reads one JSON
question per line on stdin and answers on stdout. It prefers the response with more upper-case
letters; a response containing "#junk" gets a garbled line, "#skip" no answer at all.
With --exit N it answers nothing and exits with status N; with --sleep S it sleeps S seconds first;
with --always-first it prefers whichever response it is shown first (a judge with only position bias);
a response containing "#twice" gets two different answers."""
import json, sys, time

if "--sleep" in sys.argv:
    time.sleep(float(sys.argv[sys.argv.index("--sleep") + 1]))
if "--exit" in sys.argv:
    print("labeler: out of quota", file=sys.stderr)
    sys.exit(int(sys.argv[sys.argv.index("--exit") + 1]))

def upper(s): return sum(c.isupper() for c in s)

for line in sys.stdin:
    q = json.loads(line)
    text = q.get("first", "") + q.get("second", "") + q.get("response", "")
    if "#skip" in text:
        continue
    if "#junk" in text:
        print("{not json", flush=True)
        continue
    if "#twice" in text:
        for p in (0.9, 0.1):
            print(json.dumps({"id": q["id"], "order": q.get("order"), "probability_first": p, "score": 5}), flush=True)
        continue
    if q["kind"] == "pair" and "--always-first" in sys.argv:
        print(json.dumps({"id": q["id"], "order": q["order"], "probability_first": 1.0,
                          "rationale": "the first is better"}), flush=True)
    elif q["kind"] == "pair":
        a, b = upper(q["first"]), upper(q["second"])
        p = 0.5 if a == b else (0.9 if a > b else 0.1)
        print(json.dumps({"id": q["id"], "order": q["order"], "probability_first": p,
                          "rationale": f"{a} vs {b} key facts"}), flush=True)
    else:
        print(json.dumps({"id": q["id"], "score": min(10, 1 + 3 * upper(q["response"]))}), flush=True)
