"""The thinking scenarios' scripted behaviours: the agent's reasoning is built from the functions
here, and the checks compare what arrived with the same functions, so a changed, lost, reordered
or doubled thought shows."""

from __future__ import annotations

from ..scripts import register, steps


def numbered_thought(i: int, n: int) -> str:
    return f"Thought {i} of {n}: weighing the next step."


def reasoning_step(i: int, n: int) -> str:
    return f"Step {i} of {n}: " + ("understand the question", "gather the facts", "compare the options",
                                   "check the numbers", "write the answer")[(i - 1) % 5] + "."


WRITINGS = {
    "Japanese": "東京の天気を確認しています。明日は晴れの予報です。",
    "Arabic": "أقوم بتحليل البيانات الآن، ثم سأكتب الملخص.",
    "German": "Die Größe der Straße überrascht mich: äöü ÄÖÜ ß, und ein Café (cafe\u0301).",
    "emoji": "Fertig 🎉 👩🏽‍💻 🇩🇪 ❤️ 🧑‍🤝‍🧑",
}

PII = {"email": "jane.doe@example.com", "card": "4111 1111 1111 1111",
       "token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lLWRvZSJ9.c2lnbmF0dXJlLXZhbHVl"}
PII_THOUGHT = (f"The customer {PII['email']} paid with card {PII['card']} and sent the access token "
               f"{PII['token']} by mistake.")

STRUCTURED = {
    "phase": "comparison",
    "items": [{"name": "Plan A", "monthly_cost": 29.99, "fits": True, "tags": ["roaming", "5G"]},
              {"name": "Plan B", "monthly_cost": 19.5, "fits": False, "notes": None},
              {"name": "Plan Ç", "monthly_cost": 0, "fits": True, "tags": []}],
    "conclusion": {"choice": "Plan A", "confidence": 0.82, "reasons": ["coverage", "price"], "ranked": [1, 3, 2]},
}

ERROR_BEFORE = "Looking up today's exchange rate."
ERROR = {"code": "source_unavailable", "message": "the exchange-rate service did not answer"}
RECOVERY = "Recovering: the rate service is down, so I use yesterday's cached rate instead."

DRAFT = {"draft": "Paris is the capital of France.", "confidence": 0.6}

LONG_THOUGHTS = (
    "I compared the three phone plans. The second one is cheaper. It also includes roaming in the EU.",
    "Next I checked the contract terms. Two plans need 24 months. Only the third can be cancelled monthly.",
    "My recommendation is the third plan. It costs a little more. It keeps you free to leave.",
)


def long_thought(n: int) -> str:
    """n characters of varied prose, without digits (so no redaction rule applies)."""
    words = ("the agent keeps reasoning about the question and writes down every consideration "
             "it finds relevant, one after another, ").split()
    out, i = [], 0
    while sum(len(w) + 1 for w in out) < n + 1:
        out.append(words[i % len(words)])
        i += 1
    return " ".join(out)[:n]


def first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".") + "."


def _thinks_apart(n: int, pause: float) -> dict:
    items: list[dict] = []
    for i in range(1, n + 1):
        items.append({"think": numbered_thought(i, n)})
        if i < n:
            items.append({"sleep": pause})
    return steps(*items)


def _every(every: int, total: int) -> dict:
    items: list[dict] = [{"think": "Update 0: starting the long analysis."}]
    for i in range(1, total // every + 1):
        items += [{"sleep": every}, {"think": f"Update {i}: still analysing, {i * every} s in."}]
    return steps(*items)


register("thinks once", lambda: steps({"think": "A single, short thought."}))
register("thinks {n:d} times, {pause:g} seconds apart", _thinks_apart)
register("thinks every {every:d} seconds for {total:d} seconds", _every)
register("thinks {n:d} times in a quick burst", lambda n: steps({"burst": n, "text": "burst thought"}))
register("thinks {n:d} times as fast as it can", lambda n: steps({"burst": n, "text": "update"}))
register("reasons in {n:d} steps", lambda n: steps(*({"think": reasoning_step(i, n)} for i in range(1, n + 1))))
for _writing, _text in WRITINGS.items():
    register(f"reasons in {_writing}", lambda text=_text: steps({"think": text}))
register("reasons about a customer's email, card number and access token",
         lambda: steps({"think": PII_THOUGHT}))
register("reasons with structured details",
         lambda: steps({"think": "Comparing the plans side by side.", "metadata": STRUCTURED}))
register("hits an error while reasoning and recovers",
         lambda: steps({"think": ERROR_BEFORE}, {"error": ERROR}, {"think": RECOVERY},
                       {"complete": {"status": "completed", "result": {"rate": 1.08}, "summary": "Converted."}}))
register("drafts an answer, then works past its {limit:d}-second limit",
         lambda limit: steps({"think": "Drafting a first answer."}, {"partial": DRAFT}, {"sleep": limit + 10},
                             timeout_s=limit))
register("has a {n:d}-character thought", lambda n: steps({"think": long_thought(n)}))
register("reasons at length", lambda: steps(*({"think": t} for t in LONG_THOUGHTS)))


