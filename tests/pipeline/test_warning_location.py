"""The fit-quality notes of ``EIEstimator.fit`` and ``fit_subject`` point at the user's call (the
line a researcher wrote), not at a line inside the package."""

from __future__ import annotations

import warnings

from delssome_norms.datasets import load_reference_subjects
from delssome_norms.errors import FitQualityWarning
from delssome_norms.pipeline import EIEstimator, subject_from_arrays

TINY = dict(
    mode="surrogate", generations=3, popsize=16, mu=4, n_dup=1, test_top_k=1, dt_train=0.005,
    dt_val=0.005, dt_test=0.005,
)  # fmt: skip


def _notes(call) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, FitQualityWarning)]


def test_fit_and_fit_subject_notes_point_at_the_callers_line() -> None:
    subjects = load_reference_subjects()
    person = subjects.demographics.iloc[0]
    fc, cdf = subjects.fc[0], subjects.fcd_cdf[0]
    est = EIEstimator(**TINY)
    notes = _notes(lambda: est.fit(fc, cdf, tr=person["TR"], scan_length=person["scan_length"]))
    assert notes  # a tiny budget: at least the uncalibrated interval
    assert {w.filename for w in notes} == {__file__}
    subject = subject_from_arrays("s", fc, cdf, tr=person["TR"], scan_length=person["scan_length"])
    notes = _notes(lambda: EIEstimator(**TINY).fit_subject(subject))
    assert notes and {w.filename for w in notes} == {__file__}
