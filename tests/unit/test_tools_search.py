"""search: BM25 over the shipped offline corpus."""

from __future__ import annotations

import asyncio
import json

from agentevents.tools._data import read_data_text
from agentevents.tools.base import ToolContext
from agentevents.tools.search import BM25Index, SearchTool, load_index, snippet, tokenize

CTX = ToolContext(user_id="u1", thread_id="t1", run_id="r1")


def search(params: dict) -> tuple[list[dict], dict]:
    result = asyncio.run(SearchTool().run(params, CTX))
    return result.result, result.metadata


def test_corpus_is_well_formed() -> None:
    docs = [json.loads(line) for line in read_data_text("corpus.jsonl").splitlines() if line.strip()]
    assert 35 <= len(docs) <= 60
    assert len({d["id"] for d in docs}) == len(docs)
    for doc in docs:
        assert set(doc) == {"id", "title", "source", "text"}
        assert doc["source"].startswith("corpus://")
        assert doc["text"].strip()
    topics = {d["source"].split("/")[2] for d in docs}
    assert {"astronomy", "history", "geography", "finance", "computing"} <= topics


def test_finds_the_relevant_document_first() -> None:
    results, metadata = search({"query": "tallest volcano on Mars"})
    assert results[0]["title"] == "Mars"
    assert "Olympus Mons" in results[0]["snippet"]
    assert metadata["source"][0] == "corpus://astronomy/mars"
    assert metadata["format"] == "json"


def test_result_shape_and_ordering() -> None:
    results, metadata = search({"query": "interest rate", "limit": 3})
    assert 1 <= len(results) <= 3
    assert all(set(r) == {"id", "title", "source", "snippet", "score"} for r in results)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert metadata["source"] == [r["source"] for r in results]


def test_limit_is_respected() -> None:
    results, _ = search({"query": "the largest planet ocean river desert", "limit": 2})
    assert len(results) == 2


def test_no_hits_is_an_empty_list_not_an_error() -> None:
    results, metadata = search({"query": "zyxwv qwertyuiop"})
    assert results == []
    assert metadata["confidence"] == 0.0
    assert metadata["source"] == []


def test_stopword_only_query_has_no_hits() -> None:
    results, _ = search({"query": "the of and"})
    assert results == []


def test_confidence_is_normalised_and_drops_for_unknown_terms() -> None:
    _, focused = search({"query": "Gutenberg printing press"})
    _, diluted = search({"query": "Gutenberg printing press zyxwv qwerty"})
    assert 0 < focused["confidence"] <= 1
    assert diluted["confidence"] < focused["confidence"]


def test_bm25_prefers_higher_term_frequency() -> None:
    index = BM25Index(
        [
            {"id": "a", "title": "x", "source": "s", "text": "apple apple apple pear"},
            {"id": "b", "title": "y", "source": "s", "text": "apple pear plum fig"},
            {"id": "c", "title": "z", "source": "s", "text": "banana"},
        ]
    )
    hits = index.search("apple", 10)
    assert [doc.id for doc, _ in hits] == ["a", "b"]


def test_tokenize_and_snippet() -> None:
    assert tokenize("The Speed, of LIGHT!") == ["speed", "light"]
    text = "First sentence about cats. Second sentence about light speed. Third."
    assert snippet(text, {"light"}) == "Second sentence about light speed."
    assert len(snippet("word " * 100, {"word"}, max_chars=50)) == 50


def test_index_is_cached() -> None:
    assert load_index() is load_index()
