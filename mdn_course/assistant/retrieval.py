"""Ranking course passages for a question with BM25 (the ``bm25s`` library).

Why bm25s: BM25 is the standard lexical ranking for short questions against short passages, and
it needs no model download, so the assistant works offline and gives the same ranking on every
machine. ``bm25s`` (0.3.x) is actively maintained, depends only on numpy and scipy (both already
in Colab), indexes the course in milliseconds with sparse matrices, and scores a question in well
under a millisecond. ``rank-bm25`` has had no release since 2022, and scikit-learn's TF-IDF lacks
BM25's length normalisation and saturation and is a far larger dependency for this one job.
Stemming uses PyStemmer (Snowball English), the stemmer bm25s is designed to take.

What is ours is only the tokenizer: course notation is normalised before BM25 sees it
(``$\\sigma_k$``, ``σ`` and ``sigma`` become one token; ``log_softmax`` also yields ``log`` and
``softmax``; ``NLL`` and "negative log-likelihood" meet), so a student's plain words find the
lesson's LaTeX. Passages are then ranked by BM25 and grouped by section: a section scores as its
best passage plus 0.3 times its second best (a section that explains the idea twice, in its text and
its narration, beats one stray FAQ sentence). BM25 runs with k1 = 1.2 and b = 0.75, the Lucene and
Elasticsearch defaults; on the question bank in tests/ these settings move top-1 accuracy by a few
points at most and top-3 not at all, so they are defaults, not a fit to the test questions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import bm25s
import numpy as np
import Stemmer

from .corpus import Passage, load_passages

__all__ = ["Index", "Hit", "tokenize", "build_index", "default_index"]

_GREEK = {"π": "pi", "μ": "mu", "σ": "sigma", "τ": "tau", "Σ": "sum", "∑": "sum", "λ": "lambda",
          "θ": "theta", "ε": "epsilon", "α": "alpha", "β": "beta", "Δ": "delta", "𝒩": "normal"}
# Spellings students use for the same idea (each side is expanded to both).
_SYNONYMS = [
    (r"\bnll\b", "negative log likelihood nll"),
    (r"\bmse\b", "mean squared error mse"),
    (r"\bmdn\b", "mixture density network mdn"),
    (r"\brnn\b", "recurrent rnn lstm"),
    (r"\blse\b|\blog[\s-]?sum[\s-]?exp\b|\blogsumexp\b", " logsumexp log sum exponential "),
    (r"\bexp\b", "exp exponential"),
    (r"\btemp\b", "temperature"),
    (r"\bstd\b", "standard deviation sigma"),
    (r"\bstddev\b", "standard deviation sigma"),
    (r"\bvariance\b", "variance sigma"),
    (r"\bgaussians?\b", "gaussian normal"),
    (r"\bnormal distribution\b", "gaussian normal"),
    (r"\bdreams?\b|\bdreaming\b|\bdreamed\b", "dream"),
    (r"\bnan\b", "nan inf underflow"),
    (r"\binf\b", "inf underflow"),
    (r"\bpi\b", "pi weight"),
    (r"\bmu\b", "mu mean"),
    (r"\bsigma\b", "sigma standard deviation"),
    (r"\btau\b", "tau temperature"),
]
_STOPWORDS = set(bm25s.stopwords.STOPWORDS_EN) | {
    "please", "explain", "tell", "mean", "means", "meaning", "does", "do", "doing", "what", "why",
    "how", "lesson", "course", "notebook", "cell", "thing", "things", "get", "got", "use", "used",
    "one", "would", "could", "should", "can", "really", "exactly", "actually", "like", "want", "need",
    "understand", "don", "isn", "doesn", "am", "im", "i", "me", "my", "you", "your", "we", "our", "here",
}
# "mean" is a stopword as a verb but the mean of a Gaussian matters: keep it when it follows a noun use.
_MEAN_NOUN = re.compile(r"\b(the|a|its|their|each|component'?s?|predicted) mean(s)?\b")
_TOKEN = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
_STEMMER = Stemmer.Stemmer("english")
SECOND_PASSAGE_WEIGHT = 0.3


# Single-letter symbols of the course's notation (case matters: "A" starts sentences, "a" is an article).
_SYMBOLS = {"K": "components", "D": "latent dimensions", "H": "hidden size", "B": "batch", "T": "time steps",
            "z": "latent state", "h": "hidden state", "x": "input", "y": "output"}
_SYMBOL = re.compile(r"(?<![\w\\])([KDHBTzhxy])(?![\w(])")


def _normalise(text: str) -> str:
    text = _SYMBOL.sub(lambda m: f" {m.group(1)} {_SYMBOLS[m.group(1)]} ", text)
    text = text.lower()
    for letter, word in _GREEK.items():
        text = text.replace(letter.lower(), f" {word} ").replace(letter, f" {word} ")
    text = _MEAN_NOUN.sub(lambda m: f"{m.group(1)} gaussmean", text)
    text = re.sub(r"\\([a-z]+)", r" \1 ", text)          # LaTeX commands: \sigma -> sigma
    text = re.sub(r"https?://\S+", " ", text)             # links carry no meaning for retrieval
    for pattern, expansion in _SYNONYMS:
        text = re.sub(pattern, f" {expansion} ", text)
    return text


def tokenize(text: str) -> List[str]:
    """Course-aware tokens: normalised notation, identifiers split at ``_`` as well as kept, stemmed."""
    words: List[str] = []
    for token in _TOKEN.findall(_normalise(text)):
        parts = [token] + (token.split("_") if "_" in token else [])
        for part in parts:
            if part == "gaussmean":
                words.append("mean")
                continue
            if len(part) < 2 or part in _STOPWORDS or part.isdigit():
                continue
            words.append(part)
    return _STEMMER.stemWords(words)


@dataclass(frozen=True)
class Hit:
    """A section found for a question: where it is, how well it matched, and its best passages."""
    notebook: str
    section: str
    score: float
    passages: Tuple[Passage, ...]


class Index:
    """BM25 over the course's passages, answering with sections ranked by their best passage."""

    def __init__(self, passages: Sequence[Passage]):
        if not passages:
            raise ValueError("the assistant's index needs at least one passage; is the notebooks/ folder empty?")
        self.passages: List[Passage] = list(passages)
        corpus = [tokenize(self._indexed_text(p)) for p in self.passages]
        self.vocabulary = {t for doc in corpus for t in doc}
        self._bm25 = bm25s.BM25(k1=1.2, b=0.75)
        self._bm25.index(corpus, show_progress=False)

    @staticmethod
    def _indexed_text(p: Passage) -> str:
        # The section heading is part of every passage under it, and an FAQ entry is found by its
        # question as well as its answer.
        return " ".join(x for x in (p.section, p.question, p.text) if x)

    def scores(self, question: str) -> np.ndarray:
        """BM25 score of every passage for ``question`` (zeros when no word of it is in the course)."""
        tokens = [t for t in tokenize(question) if t in self.vocabulary]
        if not tokens:
            return np.zeros(len(self.passages), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def known_words(self, question: str) -> List[str]:
        """The question's tokens that occur somewhere in the course."""
        return [t for t in tokenize(question) if t in self.vocabulary]

    def search(self, question: str, k: int = 3, notebook: Optional[str] = None,
               lesson_boost: float = 1.15) -> List[Hit]:
        """The ``k`` best sections for ``question``; ``notebook`` (the lesson the student is in) gets a small boost."""
        scores = self.scores(question)
        by_section: Dict[Tuple[str, str], List[Tuple[float, Passage]]] = {}
        for score, p in zip(scores.tolist(), self.passages):
            if score <= 0:
                continue
            if notebook and p.notebook == notebook:
                score *= lesson_boost
            by_section.setdefault((p.notebook, p.section), []).append((score, p))
        hits = []
        for (nb, section), found in by_section.items():
            found.sort(key=lambda sp: -sp[0])
            score = found[0][0] + (SECOND_PASSAGE_WEIGHT * found[1][0] if len(found) > 1 else 0.0)
            hits.append(Hit(nb, section, score, tuple(p for _, p in found)))
        hits.sort(key=lambda h: (-h.score, h.notebook, h.section))
        return hits[:k]


def build_index(include_faq: bool = True) -> Index:
    """Read the course as it is now and index it."""
    return Index(load_passages(include_faq=include_faq))


_DEFAULT: Dict[str, Index] = {}


def default_index() -> Index:
    """The index of the course, built on first use and kept for the session."""
    if "index" not in _DEFAULT:
        _DEFAULT["index"] = build_index()
    return _DEFAULT["index"]
