#!/usr/bin/env python3
"""A stand-in for an OpenAI-compatible chat-completions server, for rlaif's tests. Standard library
only. It is not a language model: it judges the synthetic fact-summary task with its rubric.

    python3 standin_chat_server.py [--key KEY]      prints "PORT <n>" once it listens on 127.0.0.1

Behaviour, so tests can assert on it:
  * POST /v1/chat/completions. With --key, a request without "Authorization: Bearer KEY" gets 401.
  * A decision question ("Preferred Summary=" last) is answered "1" or "2"; with "logprobs": true the
    first token's top_logprobs carry log P("1") and log P("2") = the rubric's soft label
    P(1) = sigmoid(quality(1) - quality(2)).
  * A rationale question ("Rationale:" last) is answered with a sentence naming the better summary.
  * A rating question ("Rating=" last) is answered with a score 1-10 and, with logprobs, the
    top_logprobs of "1".."10" (a discretized normal around 5.5 + 1.5 * quality).
  * Model "standin-text": no logprobs, and the decision wrapped in prose ("Summary 2 is better.").
  * Faults, keyed by the exact question text so retries of the same question behave differently:
      - a summary containing "#429": the first ask gets 429, the second 500, the third an answer;
      - a summary containing "#junk": every ask gets the content "I cannot decide." and no logprobs;
      - a summary containing "#broken": the first ask gets a 200 with a body that is not JSON;
      - a summary containing "#always429": every ask gets 429.
  * GET /stats: {"requests", "max_in_flight", "statuses", "auth_headers_seen", "arrivals"} (arrivals:
    each request's monotonic arrival time in seconds, in order).
"""
import json, math, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = sys.argv[sys.argv.index("--key") + 1] if "--key" in sys.argv else None
LOCK = threading.Lock()
STATS = {"requests": 0, "max_in_flight": 0, "statuses": {}, "auth_headers_seen": 0, "arrivals": []}
IN_FLIGHT = [0]
SEEN = {}

def quality(summary, prompt):
    post = prompt.rstrip(">")
    keys = {c.lower() for c in post if c.isupper()}
    facts = {c.lower() for c in post}
    score, seen = 0.0, set()
    if "." in summary:
        text = summary[: summary.index(".")]
    else:
        text, score = summary, -1.0
    for w in text:
        c = w.lower()
        if c not in "abcdefghijklmnop" or not c.isalpha(): score -= 0.5
        elif c in seen: score -= 0.5
        elif c in keys: score += 1
        elif c in facts: score -= 0.5
        else: score -= 1
        seen.add(c)
    return score

def field(text, name):
    """The last "NAME - value" line (few-shot examples come before the question)."""
    values = [line[len(name) + 3:] for line in text.splitlines() if line.startswith(name + " - ")]
    return values[-1] if values else ""

def completion(content, top=None):
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    if top is not None:
        first = max(top, key=lambda t: t[1])
        choice["logprobs"] = {"content": [{"token": first[0], "logprob": first[1],
            "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top]}]}
    return {"id": "standin", "object": "chat.completion", "choices": [choice]}

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args): pass

    def reply(self, status, body, raw=False):
        data = body if raw else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        with LOCK:
            STATS["statuses"][str(status)] = STATS["statuses"].get(str(status), 0) + 1

    def do_GET(self):
        with LOCK: body = json.loads(json.dumps(STATS))
        self.reply(200, body)

    def do_POST(self):
        with LOCK:
            STATS["requests"] += 1
            STATS["arrivals"].append(time.monotonic())
            IN_FLIGHT[0] += 1
            STATS["max_in_flight"] = max(STATS["max_in_flight"], IN_FLIGHT[0])
        try:
            self.handle_completion()
        finally:
            with LOCK: IN_FLIGHT[0] -= 1

    def handle_completion(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        auth = self.headers.get("Authorization")
        if auth:
            with LOCK: STATS["auth_headers_seen"] += 1
        if KEY is not None and auth != "Bearer " + KEY:
            return self.reply(401, {"error": {"message": "invalid api key"}})
        time.sleep(0.03)  # long enough for concurrent requests to overlap
        messages = body["messages"]
        question = "\n".join(m["content"] for m in messages if m["role"] == "user")
        last = messages[-1]["content"].rstrip()
        with LOCK:
            SEEN[question] = SEEN.get(question, 0) + 1
            asked = SEEN[question]
        if "#always429" in question: return self.reply(429, {"error": {"message": "quota exceeded"}})
        if "#429" in question and asked == 1: return self.reply(429, {"error": {"message": "slow down"}})
        if "#429" in question and asked == 2: return self.reply(500, {"error": {"message": "oops"}})
        if "#broken" in question and asked == 1: return self.reply(200, b"<html>gateway</html>", raw=True)
        if "#junk" in question: return self.reply(200, completion("I cannot decide."))
        want_logprobs = body.get("logprobs") and body.get("model") != "standin-text"
        prompt = field(question, "Text")
        if last.endswith("Rating="):
            q = quality(field(question, "Summary"), prompt)
            center = 5.5 + 1.5 * q
            w = [math.exp(-((k - center) ** 2) / 2) for k in range(1, 11)]
            total = sum(w)
            top = [(str(k), math.log(max(w[k - 1] / total, 1e-300))) for k in range(1, 11)]
            best = max(range(1, 11), key=lambda k: w[k - 1])
            return self.reply(200, completion(str(best), top if want_logprobs else None))
        q1, q2 = quality(field(question, "Summary 1"), prompt), quality(field(question, "Summary 2"), prompt)
        p1 = 1 / (1 + math.exp(-(q1 - q2)))
        better = "1" if p1 >= 0.5 else "2"
        if last.endswith("Rationale:"):
            return self.reply(200, completion(f"Summary {better} names more of the key facts and fewer others."))
        if body.get("model") == "standin-text":
            return self.reply(200, completion(f"Summary {better} is better."))
        top = [("1", math.log(max(p1, 1e-300))), ("2", math.log(max(1 - p1, 1e-300)))]
        return self.reply(200, completion(better, top if want_logprobs else None))

# A child of a Swift process can inherit a signal mask that blocks SIGTERM; the test must be able to stop us.
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("PORT", server.server_address[1], flush=True)
server.serve_forever()
