"""E/I estimation: regional parameterisation, CMA-ES search, train → validation → test, cohorts.

Typical use::

    from delssome_norms.fit import FitSettings, load_subject, estimate_ei, run_cohort, collect

    subject = load_subject("sub-01", tr=0.72, scan_length=864, fc="FC.csv", fcd_cdf="FCD_CDF.csv")
    estimate_ei(subject, "out/sub-01", FitSettings(seed=1))
    run_cohort("subjects.csv", "out/", FitSettings(seed=1), shard="1/4")
    collect("out/", "demogr.csv", "cohort_ei.csv")

``fit`` never imports ``surrogate``: the train stage scores candidates through an evaluator
(:mod:`delssome_norms.fit.evaluate`).
"""

from delssome_norms.fit.checkpoint import Checkpoint, GenerationRecord, replay
from delssome_norms.fit.cmaes import CMAESSearch, CMAESSettings
from delssome_norms.fit.cohort import (
    CohortPlan,
    CohortSummary,
    parse_shard,
    plan_cohort,
    run_cohort,
    shard_groups,
)
from delssome_norms.fit.collect import collect
from delssome_norms.fit.design import design_matrix, diffusion_gradient
from delssome_norms.fit.evaluate import (
    EulerEvaluator,
    Evaluator,
    SurrogateBackend,
    check_mode,
    make_evaluator,
)
from delssome_norms.fit.lockstep import (
    GroupProgress,
    SubjectOutcome,
    choose_group_size,
    estimate_ei,
    fit_group,
    plan_groups,
)
from delssome_norms.fit.outputs import is_complete, write_failures
from delssome_norms.fit.parameterisation import (
    Bounds,
    Parameterisation,
    RegionalParams,
    coeffs_to_regional,
    regional_to_coeffs,
    wei_range,
)
from delssome_norms.fit.settings import FitSettings
from delssome_norms.fit.stages import SubjectResult
from delssome_norms.fit.subject import SubjectInputs, empirical_statistics, load_subject
from delssome_norms.fit.synthetic import SyntheticSubject, synthetic_subject

__all__ = [
    "Bounds",
    "CMAESSearch",
    "CMAESSettings",
    "Checkpoint",
    "CohortPlan",
    "CohortSummary",
    "EulerEvaluator",
    "Evaluator",
    "FitSettings",
    "GenerationRecord",
    "GroupProgress",
    "Parameterisation",
    "RegionalParams",
    "SubjectInputs",
    "SubjectOutcome",
    "SubjectResult",
    "SurrogateBackend",
    "SyntheticSubject",
    "check_mode",
    "choose_group_size",
    "coeffs_to_regional",
    "collect",
    "design_matrix",
    "diffusion_gradient",
    "empirical_statistics",
    "estimate_ei",
    "fit_group",
    "is_complete",
    "load_subject",
    "make_evaluator",
    "parse_shard",
    "plan_cohort",
    "plan_groups",
    "regional_to_coeffs",
    "replay",
    "run_cohort",
    "shard_groups",
    "synthetic_subject",
    "wei_range",
    "write_failures",
]
