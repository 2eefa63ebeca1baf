"""Does the index answer the question at all? A calibrated yes/no from the top hit's evidence.

Fused scores cannot say: min-max fusion gives the top hit 1.0 whatever the query. The answer
sentence's own evidence can: how close its best sentence is to the question (the embedding's
cosine) and how much of the question's weight (IDF) it holds, read in the question's language
when the hit is a translation. A logistic model over those gives the probability that the top
hit answers; `scripts/tune_abstention.py` fits it on XQuAD dev (half the articles indexed, the
other half's questions unanswerable) and picks the threshold that keeps ≥ 95% of answerable
questions answered. Weights and threshold ship in `answerable_model.json`, with the embedding
model they were calibrated for: with any other model, answerability is not judged (None).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ANSWERABLE_MODEL_FILE = Path(__file__).with_name("answerable_model.json")
EVIDENCE_FEATURES = ("bias", "similarity", "overlap", "cross", "cross_similarity",
                     "cross_overlap")
_SCALE = 20.0  # cosines move by hundredths: scaled like the answer model's


@dataclass(frozen=True, slots=True)
class Evidence:
    """The top hit's answer evidence: its best sentence's cosine to the question, the largest
    share of the question's IDF weight one sentence holds, and whether that was read across
    languages (no aligned passage in the question's language)."""

    similarity: float
    overlap: float
    cross: bool

    def features(self) -> tuple[float, ...]:
        cross = 1.0 if self.cross else 0.0
        return (1.0, _SCALE * self.similarity, self.overlap, cross,
                cross * _SCALE * self.similarity, cross * self.overlap)


@dataclass(frozen=True, slots=True)
class AnswerableModel:
    """Logistic weights over EVIDENCE_FEATURES and the probability from which a question counts
    as answered: one threshold for evidence read in the question's language, one for evidence
    read across languages (weaker: only names and numbers are shared terms there)."""

    weights: tuple[float, ...]
    threshold: float
    cross_threshold: float
    embedding_model: str  # cosines are calibrated for this model only

    def judge(self, evidence: Evidence | None, embedding_model: str
              ) -> tuple[bool | None, float | None]:
        """(answered?, probability); (None, None) for another embedding model, whose cosines
        this calibration says nothing about; (False, 0.0) without evidence (no hit)."""
        if embedding_model != self.embedding_model:
            return None, None
        if evidence is None:
            return False, 0.0
        return self.answerable(evidence)

    def probability(self, evidence: Evidence) -> float:
        z = sum(w * x for w, x in zip(self.weights, evidence.features(), strict=True))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def answerable(self, evidence: Evidence) -> tuple[bool, float]:
        """(answered?, probability)."""
        p = self.probability(evidence)
        return p >= (self.cross_threshold if evidence.cross else self.threshold), p

    def to_json(self) -> dict[str, object]:
        return {"features": list(EVIDENCE_FEATURES),
                "weights": [round(w, 6) for w in self.weights],
                "threshold": round(self.threshold, 6),
                "cross_threshold": round(self.cross_threshold, 6),
                "embedding_model": self.embedding_model}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> AnswerableModel:
        names = data.get("features")
        weights = data.get("weights")
        thresholds = (data.get("threshold"), data.get("cross_threshold"))
        embedding_model = data.get("embedding_model")
        if (not isinstance(names, Sequence) or tuple(names) != EVIDENCE_FEATURES
                or not isinstance(weights, Sequence) or len(weights) != len(names)
                or not all(isinstance(t, int | float) for t in thresholds)
                or not isinstance(embedding_model, str)):
            raise ValueError("answerable model does not match this version of Qiao")
        return cls(tuple(float(w) for w in weights), float(str(thresholds[0])),
                   float(str(thresholds[1])), embedding_model)


@cache
def default_answerable_model() -> AnswerableModel:
    """The shipped model (fitted on XQuAD dev; see the tuning script)."""
    return AnswerableModel.from_json(
        json.loads(ANSWERABLE_MODEL_FILE.read_text(encoding="utf-8")))
