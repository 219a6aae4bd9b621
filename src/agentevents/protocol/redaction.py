"""PII redaction applied to every event's data before it leaves the worker.

Emails, payment card numbers (Luhn-checked), bearer tokens / JWTs, API keys, and US SSNs are
replaced by ``[REDACTED:<kind>]``. Pure: takes values, returns values.
"""

from __future__ import annotations

import re
from typing import Any

# Bounded parts (RFC 5321: local part <= 64, domain <= 255): unbounded ones backtrack
# quadratically over long runs of word characters (a 4,000-character value took 40 ms).
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,255}\.[A-Za-z]{2,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\b")
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}")
_API_KEY = re.compile(r"\b(?:sk|pk|api|key|tok)[-_][A-Za-z0-9]{16,}\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[REDACTED:card]" if 13 <= len(digits) <= 19 and luhn_ok(digits) else match.group()


# What each pattern cannot match without: a text with none of it is left as it is, at the cost
# of a few substring scans instead of six regex passes (most text holds no personal data).
_KEY_PREFIXES = tuple(f"{p}{sep}" for p in ("sk", "pk", "api", "key", "tok") for sep in "-_")
_DIGIT = re.compile(r"\d")
_SHORTEST = 6  # no pattern matches fewer characters (``a@b.cd``)


def may_hold_pii(text: str) -> bool:
    """False only when no pattern can match: no ``@`` (email), no ``eyJ`` (JWT), no ``bearer``
    in any case, no API-key prefix, and fewer than 9 digits (an SSN has 9, a card 13 or more)."""
    if len(text) < _SHORTEST:
        return False
    if "@" in text or "eyJ" in text or "bearer" in text.lower():
        return True
    if any(prefix in text for prefix in _KEY_PREFIXES):
        return True
    return len(_DIGIT.findall(text)) >= 9


def redact_text(text: str) -> tuple[str, int]:
    """Return the redacted text and how many values were replaced."""
    if not may_hold_pii(text):
        return text, 0
    count = 0

    def sub(pattern: re.Pattern[str], repl: Any, s: str) -> str:
        nonlocal count
        out, n = pattern.subn(repl, s)
        if callable(repl):
            n = sum(1 for m in pattern.finditer(s) if repl(m) != m.group())
        count += n
        return out

    text = sub(_JWT, "[REDACTED:token]", text)
    text = sub(_BEARER, "Bearer [REDACTED:token]", text)
    text = sub(_API_KEY, "[REDACTED:api_key]", text)
    text = sub(_EMAIL, "[REDACTED:email]", text)
    text = sub(_SSN, "[REDACTED:ssn]", text)
    text = sub(_CARD, _card, text)
    return text, count


def redact(value: Any) -> tuple[Any, int]:
    """Redact every string inside a JSON-like value (dict keys are kept as they are)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        total, out = 0, {}
        for k, v in value.items():
            out[k], n = redact(v)
            total += n
        return out, total
    if isinstance(value, list):
        total, items = 0, []
        for v in value:
            r, n = redact(v)
            items.append(r)
            total += n
        return items, total
    return value, 0
