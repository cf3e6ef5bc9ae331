"""Okapi BM25 ranking over short documents (runbooks, ticket summaries): pure Python, no I/O."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9]+")
# Words that say nothing about what a request is about; without them "how do I ..." or "I have a
# request" would match every how-to runbook equally.
_STOPWORD_TEXT = """
a about after all also am an and any anyone are as at be been before but by can could did do
does doing for from get got had has have having hello help hey hi how i if in into is issue
issues it its just know like me my need needs no not of on or our please problem problems
question questions request requests should so some someone than thank thanks that the their
them then there these they this those ticket to too try trying up us want was we were what
when where which who why will with would you your
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def tokenize(text: str) -> list[str]:
    """Lower-case words without stopwords, with a light plural fold (databases -> database)."""
    tokens = []
    for word in _WORD.findall(text.lower()):
        if word in STOPWORDS:
            continue
        if len(word) > 4 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        tokens.append(word)
    return tokens


@dataclass(frozen=True)
class Hit:
    index: int
    score: float


class BM25:
    """Okapi BM25 with the usual k1 and b; `idf` uses the +1 form so it is never negative."""

    def __init__(self, documents: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75):
        self._index([Counter(doc) for doc in documents], [len(doc) for doc in documents], k1, b)

    @classmethod
    def of_counts(
        cls,
        counts: Sequence[Mapping[str, int]],
        lengths: Sequence[int],
        k1: float = 1.5,
        b: float = 0.75,
    ) -> BM25:
        """The index of documents already counted (term -> occurrences, and length in terms):
        callers that rank the same documents again keep their counts instead of re-tokenising."""
        index = cls.__new__(cls)
        index._index(list(counts), list(lengths), k1, b)
        return index

    def _index(
        self, counts: list[Mapping[str, int]], lengths: list[int], k1: float, b: float
    ) -> None:
        self.k1 = k1
        self.b = b
        self.counts = counts
        self.lengths = lengths
        self.average_length = (sum(self.lengths) / len(self.lengths)) if self.lengths else 0.0
        frequency: Counter[str] = Counter()
        for doc in self.counts:
            frequency.update(doc.keys())
        n = len(self.counts)
        self.idf = {
            term: math.log((n - df + 0.5) / (df + 0.5) + 1.0) for term, df in frequency.items()
        }

    def score(self, query: Sequence[str], index: int) -> float:
        counts = self.counts[index]
        norm = 1 - self.b + self.b * (self.lengths[index] / (self.average_length or 1.0))
        total = 0.0
        for term in set(query):
            tf = counts.get(term, 0)
            if tf:
                total += self.idf[term] * tf * (self.k1 + 1) / (tf + self.k1 * norm)
        return total

    def rank(self, query: Sequence[str], limit: int = 3, minimum: float = 0.0) -> list[Hit]:
        """The best documents for the query, best first; documents scoring <= minimum are left out."""
        hits = [Hit(i, self.score(query, i)) for i in range(len(self.counts))]
        hits = [h for h in hits if h.score > minimum]
        hits.sort(key=lambda h: (-h.score, h.index))
        return hits[:limit]
