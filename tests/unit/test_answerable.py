"""The answerable model: probabilities, thresholds by language pairing, calibration scope."""

from __future__ import annotations

import pytest

from index.search.answerable import (
    AnswerableModel,
    Evidence,
    default_answerable_model,
)


def test_more_evidence_means_more_likely_answerable() -> None:
    model = default_answerable_model()
    weak = Evidence(similarity=0.80, overlap=0.1, cross=False)
    strong = Evidence(similarity=0.88, overlap=0.8, cross=False)
    assert model.probability(strong) > model.probability(weak)
    assert model.answerable(strong)[0] and not model.answerable(weak)[0]


def test_cross_language_evidence_has_its_own_threshold() -> None:
    model = AnswerableModel((0.0,) * 6, threshold=0.6, cross_threshold=0.4, embedding_model="m")
    assert model.judge(Evidence(0.8, 0.0, cross=True), "m") == (True, 0.5)
    assert model.judge(Evidence(0.8, 0.0, cross=False), "m") == (False, 0.5)
    assert model.judge(None, "m") == (False, 0.0)  # no hit at all
    assert model.judge(Evidence(0.8, 0.0, cross=False), "other-model") == (None, None)


def test_json_round_trip_and_mismatch() -> None:
    model = default_answerable_model()
    assert AnswerableModel.from_json(model.to_json()) == model
    with pytest.raises(ValueError, match="does not match"):
        AnswerableModel.from_json({**model.to_json(), "features": ["bias"]})
