"""Estimator objects over the fit (layer above ``surrogate``, below ``norms``; docs/science.md §5).

- :class:`EIEstimator`: one subject's regional E/I ratio from arrays or files, scikit-learn style
  (``get_params``/``set_params``/``clone``), the result kept in memory (:class:`EIResult`),
  writing the subject's files only when given ``out_dir``.
- :func:`results_table`: the cohort E/I table of several results (one region order, one pipeline).
- :func:`subject_from_arrays`: checked :class:`~delssome_norms.fit.SubjectInputs` from arrays.
"""

from delssome_norms.pipeline.estimator import EIEstimator, EIFitError, subject_from_arrays
from delssome_norms.pipeline.result import EIResult
from delssome_norms.pipeline.results_table import results_table

__all__ = ["EIEstimator", "EIFitError", "EIResult", "results_table", "subject_from_arrays"]
