"""The completion scenarios' scripted behaviours ("works quietly for 2 seconds", "needs her approval
to transfer money")."""

from __future__ import annotations

from typing import Any

from ..scripts import complete, register, steps

FULL_SUMMARY = ("Compared three suppliers on price and delivery time. Supplier B is cheapest overall. "
                "Orders can be placed from Monday.")
FIRST_SENTENCE = "Compared three suppliers on price and delivery time."


def _quiet(seconds: float) -> dict[str, Any]:
    return steps({"think": "Waiting for the report to be ready."}, {"sleep": seconds})


for _verb in ("works", "work"):
    register(_verb + " quietly for {seconds:g} seconds", _quiet)
    register(_verb + " quietly for {seconds:g} second", _quiet)


def _thinks_and_calculates(thoughts: int, calculations: int) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for i in range(max(thoughts, calculations)):
        if i < thoughts:
            items.append({"think": f"Considering part {i + 1} of the bill."})
        if i < calculations:
            items.append({"tool": "calculator", "params": {"expression": f"{i + 2}*7"}, "purpose": "add up a part"})
    return steps(*items)


register("thinks {thoughts:d} times and uses the calculator {calculations:d} times", _thinks_and_calculates)

register("summarises its work in three sentences",
         lambda: steps({"think": "Comparing the suppliers."},
                       complete(result={"cheapest": "Supplier B"}, summary=FULL_SUMMARY)))

register("calculates a total, then overruns a {limit:g}-second limit",
         lambda limit: steps({"think": "Adding up the invoices."},
                             {"tool": "calculator", "params": {"expression": "120+80+45"},
                              "purpose": "total of the invoices"},
                             {"think": "Now checking every invoice against the ledger."},
                             {"sleep": 30}, timeout_s=limit))

register("hits a failing tool, then succeeds with another one",
         lambda: steps({"think": "Fetching today's exchange rate."},
                       {"tool": "fail", "params": {"code": "upstream_unavailable",
                                                   "message": "the rate service is down"}},
                       {"think": "The rate service failed; computing the amount from the stored rate instead."},
                       {"tool": "calculator", "params": {"expression": "100*1.08"}, "purpose": "convert the amount"}))

register("needs her approval to transfer money",
         lambda: steps({"think": "Preparing a transfer of 100 EUR to Bob."},
                       {"approval": "May I transfer 100 EUR to Bob?", "timeout_s": 15},
                       {"tool": "calculator", "params": {"expression": "100+2.5"},
                        "purpose": "transfer the amount with its fee"}))

register("books two items, fails the payment, rolls back and retries",
         lambda: steps({"think": "Booking the flight and the hotel, then paying."},
                       {"tool": "calculator", "params": {"expression": "2*150"}, "purpose": "book the flight"},
                       {"tool": "calculator", "params": {"expression": "3*80"}, "purpose": "book the hotel"},
                       {"tool": "fail", "params": {"code": "payment_declined", "message": "the card was declined"}},
                       {"rollback": "payment declined"},
                       {"think": "Retrying the whole booking with the backup card."},
                       {"tool": "calculator", "params": {"expression": "2*150+3*80"},
                        "purpose": "book flight and hotel together"}))


