"""``search``: BM25 ranking over the offline corpus shipped in ``agentevents/data/corpus.jsonl``."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from agentevents.tools._data import read_data_text
from agentevents.tools.base import ToolContext, ToolResult

CORPUS_FILE = "corpus.jsonl"
DEFAULT_LIMIT = 5
MAX_LIMIT = 20
SNIPPET_CHARS = 200

_TOKEN = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "did",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "the",
        "this",
        "that",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
    }
)


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric tokens without stopwords."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]


@dataclass
class Document:
    id: str
    title: str
    source: str
    text: str
    terms: Counter[str] = field(default_factory=Counter)
    length: int = 0


class BM25Index:
    """Okapi BM25 over title (counted twice) and text."""

    def __init__(self, docs: list[dict[str, str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.docs: list[Document] = []
        for raw in docs:
            doc = Document(id=raw["id"], title=raw["title"], source=raw["source"], text=raw["text"])
            tokens = tokenize(doc.title) * 2 + tokenize(doc.text)
            doc.terms, doc.length = Counter(tokens), len(tokens)
            self.docs.append(doc)
        self.avg_len = sum(d.length for d in self.docs) / len(self.docs) if self.docs else 0.0
        df: Counter[str] = Counter()
        for doc in self.docs:
            df.update(doc.terms.keys())
        n = len(self.docs)
        self.idf = {term: math.log(1 + (n - count + 0.5) / (count + 0.5)) for term, count in df.items()}

    def score(self, doc: Document, query_terms: list[str]) -> float:
        total = 0.0
        for term in query_terms:
            tf = doc.terms.get(term, 0)
            if tf:
                norm = self.k1 * (1 - self.b + self.b * doc.length / self.avg_len)
                total += self.idf[term] * tf * (self.k1 + 1) / (tf + norm)
        return total

    def max_score(self, query_terms: list[str]) -> float:
        """Upper bound of ``score`` for these terms (tf -> infinity), used to normalise confidence.

        Terms absent from the corpus count with the highest possible idf, so they lower confidence.
        """
        n = len(self.docs)
        unseen_idf = math.log(1 + (n + 0.5) / 0.5)
        return sum(self.idf.get(t, unseen_idf) * (self.k1 + 1) for t in query_terms)

    def search(self, query: str, limit: int) -> list[tuple[Document, float]]:
        terms = list(dict.fromkeys(tokenize(query)))
        scored = [(doc, self.score(doc, terms)) for doc in self.docs]
        hits = [(doc, s) for doc, s in scored if s > 0]
        hits.sort(key=lambda pair: (-pair[1], pair[0].id))
        return hits[:limit]


@lru_cache(maxsize=1)
def load_index() -> BM25Index:
    """Read and index the shipped corpus (once, on first use)."""
    docs = [json.loads(line) for line in read_data_text(CORPUS_FILE).splitlines() if line.strip()]
    return BM25Index(docs)


def snippet(text: str, query_terms: set[str], max_chars: int = SNIPPET_CHARS) -> str:
    """The sentence sharing the most terms with the query, trimmed to ``max_chars``."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()] or [text]
    best = max(sentences, key=lambda s: len(query_terms & set(tokenize(s))))
    return best if len(best) <= max_chars else best[: max_chars - 1].rstrip() + "…"


PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "minLength": 1, "maxLength": 500},
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    },
    "required": ["query"],
    "additionalProperties": False,
}


class SearchTool:
    version = "1.2.0"
    cacheable = True
    name = "search"
    description = "Search an offline reference corpus (science, history, geography, finance, computing)."
    parameters: dict[str, Any] = PARAMETERS
    permission: str | None = None
    timeout_s = 10.0
    category = "search"

    async def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolResult:
        query = str(params.get("query", ""))
        limit = max(1, min(MAX_LIMIT, int(params.get("limit", DEFAULT_LIMIT))))
        index = load_index()
        hits = index.search(query, limit)
        terms = set(tokenize(query))
        results = [
            {
                "id": d.id,
                "title": d.title,
                "source": d.source,
                "snippet": snippet(d.text, terms),
                "score": round(s, 4),
            }
            for d, s in hits
        ]
        ceiling = index.max_score(list(dict.fromkeys(tokenize(query))))
        confidence = round(min(1.0, hits[0][1] / ceiling), 3) if hits and ceiling > 0 else 0.0
        metadata = {"source": [r["source"] for r in results], "confidence": confidence, "format": "json"}
        return ToolResult(result=results, metadata=metadata)
