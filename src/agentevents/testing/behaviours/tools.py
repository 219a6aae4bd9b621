"""The tool scenarios' scripted behaviours ("calculates \"6*7\" twice", "runs five tools at once")."""

from __future__ import annotations

from typing import Any

from ..limits import LARGE_FILE_FIGURES
from ..scripts import complete, register, steps
from ..toolcalls import (
    CARD,
    EMAIL,
    LARGE_FIGURE,
    NOTE_EMAIL,
    PAY_CARD_PURPOSE,
    PAY_PURPOSE,
    RESERVE_PURPOSE,
    RUN_FOLLOW_UP,
    SQL_FIRST_CUSTOMERS,
    TOOL_FOLLOW_UP,
)


def tool(name: str, params: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    return {"tool": name, "params": params or {}, **more}


def _calc_then_search_pii(expression: str) -> dict[str, Any]:
    return steps(tool("calculator", {"expression": expression}, purpose="check the order total"),
                 tool("search", {"query": f"orders of {EMAIL} paid with card {CARD}"},
                      purpose="find the customer's orders"))


def _three_in_sequence() -> dict[str, Any]:
    return steps(tool("calculator", {"expression": "12*(3+4)"}, purpose="price the order"),
                 tool("search", {"query": "compound interest"}, purpose="explain the interest rule"),
                 tool("finance", {"operation": "compound_interest", "principal": 1000, "rate": 0.05, "years": 10},
                      purpose="grow the savings"))


def _parallel_slow() -> dict[str, Any]:
    return steps({"parallel": [tool("wait", {"seconds": 1.0}), tool("wait", {"seconds": 1.0}),
                               tool("calculator", {"expression": "2+3"})]})


def _sums(n: int) -> dict[str, Any]:
    return steps(*(tool("calculator", {"expression": f"{i}+{i}"}) for i in range(1, n + 1)))


def _calc_for(expression: str, purpose: str) -> dict[str, Any]:
    return steps(tool("calculator", {"expression": expression}, purpose=purpose))


def _csv_rows(name: str, rows: int) -> dict[str, Any]:
    content = "region,amount\n" + "".join(f"region{i},{i * 10}\n" for i in range(1, rows + 1))
    return steps(tool("process_file", {"file": name}, purpose="read the attached figures"), files={name: content})


def _sql_first_customers() -> dict[str, Any]:
    return steps(tool("sql_query", {"query": SQL_FIRST_CUSTOMERS}, purpose="list the first customers"))


def _compound_interest(principal: int, rate: int, years: int) -> dict[str, Any]:
    return steps(tool("finance", {"operation": "compound_interest", "principal": principal, "rate": rate / 100,
                                  "years": years}, purpose="project the savings"))


GREETING_TOOL = {"name": "custom.greet", "description": "Greets a person by name",
                 "parameters": {"type": "object", "properties": {"who": {"type": "string"}}, "required": ["who"]},
                 "template": "Hello, {who}!"}
DISCOUNT_TOOL = {"name": "custom.discount", "description": "Price after a 10% discount",
                 "parameters": {"type": "object", "properties": {"price": {"type": "number"}},
                                "required": ["price"]},
                 "expression": "{price} * 0.9", "result_schema": {"type": "number", "minimum": 0}}


def _greeting() -> dict[str, Any]:
    return steps(tool("custom.greet", {"who": "Ada"}, purpose="greet the new customer"),
                 custom_tools=[GREETING_TOOL])


def _discount() -> dict[str, Any]:
    return steps(tool("custom.discount", {"price": 100}), tool("custom.discount", {"price": -50}),
                 custom_tools=[DISCOUNT_TOOL])


def _failing_then_calculator() -> dict[str, Any]:
    return steps(tool("fail", {"code": "upstream_unavailable", "message": "the pricing service is down"}),
                 tool("calculator", {"expression": "40+2"}, purpose="price it locally instead"))


def _timeout_then_calculator(seconds: int, limit_ms: int) -> dict[str, Any]:
    return steps(tool("wait", {"seconds": seconds}, timeout_s=limit_ms / 1000),
                 tool("calculator", {"expression": "40+2"}, purpose="use the quick estimate instead"))


def _invalid_then_corrected() -> dict[str, Any]:
    return steps(tool("calculator", {"expression": 42}), tool("calculator", {"expression": "6*7"}))


def _database_or_dataset() -> dict[str, Any]:
    return steps(tool("sql_query", {"query": "SELECT name, email FROM customers"}),
                 tool("analyze_data", {"dataset": "sales", "operation": "summary"},
                      purpose="answer from the dataset instead"))


def _rate_limited(n: int) -> dict[str, Any]:
    return steps({"repeat": n, "step": tool("calculator", {"expression": "1+1"})})


def _wait(seconds: float) -> dict[str, Any]:
    return steps(tool("wait", {"seconds": seconds}))


def _wait_ms(ms: int) -> dict[str, Any]:
    return steps(tool("wait", {"seconds": ms / 1000}))


def _five_tools_two_parallel() -> dict[str, Any]:
    return steps(tool("calculator", {"expression": "3*3"}), tool("search", {"query": "Mars"}),
                 {"parallel": [tool("wait", {"seconds": 0.2}), tool("echo", {"value": "ok"})]},
                 tool("finance", {"operation": "loan_payment", "principal": 10000, "rate": 0.04, "years": 5}))


def _large_figures() -> dict[str, Any]:
    return steps(tool("process_file", {"file": "figures.json", "operation": "parse"}),
                 files={"figures.json": "[" + ",".join([LARGE_FIGURE] * LARGE_FILE_FIGURES) + "]"})


def _search_nothing() -> dict[str, Any]:
    return steps(tool("search", {"query": "xyzzyq plughwort frobnicated"}))


def _batch(batches: int) -> dict[str, Any]:
    return steps(tool("batch_job", {"batches": batches, "rows_per_batch": 100, "delay_s": 0.1}))


FORMAT_SAMPLES = {  # T069: one tool call per result format
    "searches the knowledge base": steps(tool("search", {"query": "Mars"})),
    "reads an attached CSV file": steps(tool("process_file", {"file": "regions.csv"}),
                                        files={"regions.csv": "region,amount\nnorth,10\nsouth,20\n"}),
    "reads an attached text file": steps(tool("process_file", {"file": "notes.txt"}),
                                         files={"notes.txt": "Remember the milk.\nCall Bob about the invoice.\n"}),
    "calculates a number": steps(tool("calculator", {"expression": "6*7"})),
}


def _note_with_pii() -> dict[str, Any]:
    return steps(tool("process_file", {"file": "note.txt", "operation": "parse"}),
                 files={"note.txt": f"Customer {NOTE_EMAIL} paid with card {CARD} on Monday.\n"})


def _calc_twice(expression: str) -> dict[str, Any]:
    return steps(tool("calculator", {"expression": expression}), tool("calculator", {"expression": expression}))


def _calc_thrice_and_search(expression: str) -> dict[str, Any]:
    return steps(*(tool("calculator", {"expression": expression}) for _ in range(3)),
                 tool("search", {"query": "Mars"}))


def _chain() -> dict[str, Any]:
    return steps(tool("calculator", {"expression": "1000*2"}, purpose="total the deposits"),
                 tool("finance", {"operation": "compound_interest", "principal": "$prev", "rate": 0.05, "years": 1},
                      chain=True, purpose="grow the deposits for a year"))


def _recommends() -> dict[str, Any]:
    return steps(tool("search", {"query": "Mars"}, extra={"follow_up": TOOL_FOLLOW_UP["search"]}),
                 tool("calculator", {"expression": "225*1000000"}, extra={"follow_up": TOOL_FOLLOW_UP["calculator"]}),
                 complete(result={"answer": "Mars is about 225 million km away"}, summary="Answered.",
                          follow_up=RUN_FOLLOW_UP))


def _pay_after_approval() -> dict[str, Any]:
    return steps({"approval": "May I pay the invoice of 120 EUR?", "timeout_s": 20},
                 tool("echo", {"value": "invoice paid"}, purpose=PAY_PURPOSE))


def _five_at_once() -> dict[str, Any]:
    return steps({"parallel": [tool("wait", {"seconds": 0.3}), tool("wait", {"seconds": 0.2}),
                               tool("calculator", {"expression": "5*5"}), tool("search", {"query": "Mars"}),
                               tool("echo", {"value": "five"})]})


def _reserve_fail_rollback() -> dict[str, Any]:
    return steps(tool("echo", {"value": "2 seats reserved"}, purpose=RESERVE_PURPOSE),
                 tool("fail", {"code": "payment_declined", "message": "the card was declined"},
                      purpose=PAY_CARD_PURPOSE),
                 {"rollback": "payment declined"})


register('calculates "{expression}" and then searches for a customer\'s email and card number',
         _calc_then_search_pii)
register("uses the calculator, then search, then finance", _three_in_sequence)
register("runs two slow tools and the calculator in parallel", _parallel_slow)
register("calculates {n:d} different sums one after another", _sums)
register('calculates "{expression}" to {purpose}', _calc_for)
register('processes an attached CSV file "{name}" of {rows:d} rows', _csv_rows)
register("queries the first 3 customers from the demo database", _sql_first_customers)
register("computes compound interest on {principal:d} at {rate:d}% for {years:d} years", _compound_interest)
register("defines and uses its own greeting tool", _greeting)
register("defines a discount tool checked against a result schema and calls it with a valid and an invalid price",
         _discount)
register("calls a failing tool and then recovers with the calculator", _failing_then_calculator)
register("waits {seconds:d} seconds in a tool limited to {limit_ms:d} ms and then uses the calculator instead",
         _timeout_then_calculator)
register("gives the calculator a number instead of an expression and then corrects it", _invalid_then_corrected)
register("tries the database and falls back to the dataset analysis", _database_or_dataset)
register("calls the calculator {n:d} times as fast as it can", _rate_limited)
register("waits {seconds:g} seconds in a tool", _wait)
register("waits {ms:d} ms in a tool", _wait_ms)
register("uses five tools, two of them in parallel", _five_tools_two_parallel)
register("parses a very large attached file of figures", _large_figures)
register("searches for something the corpus does not contain", _search_nothing)
register("runs a batch job of {batches:d} batches", _batch)
for _phrase, _options in FORMAT_SAMPLES.items():
    register(_phrase, lambda options=_options: options)
register("reads an attached note containing an email and a card number", _note_with_pii)
register('calculates "{expression}" twice', _calc_twice)
register('calculates "{expression}" three times and searches once', _calc_thrice_and_search)
register("computes a principal and feeds it into compound interest", _chain)
register("recommends next steps after its tools and at the end", _recommends)
register("pays an invoice only after her approval", _pay_after_approval)
register("runs five tools at once", _five_at_once)
register("reserves seats, fails to take the payment and rolls back", _reserve_fail_rollback)


