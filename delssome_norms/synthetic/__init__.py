"""SYNTHETIC lifespan reference cohort with the paper's E/I findings built in (docs/science.md §8).

Real multi-site data cannot ship with the package, so the toolkit ships a cohort generated here:
every number in it is synthetic. The generator is a set of pure, seeded functions; the committed
output lives in ``delssome_norms/datasets/data/`` and is documented in ``reference_data/README.md``
(regenerate with ``reference_data/generate.py``).

Model set-up (:func:`build_model_setup`, simulations)
-----------------------------------------------------
* SC: ``log1p(w / min positive w)`` of the tvb-data template (:func:`simulation_sc`; the raw
  weights give FC of about 0 at every stable parameter set).
* wEE rule (:class:`WEERule`): the wEE that keeps the network's slowest mode decaying at
  ``stability_margin`` (0.5 s⁻¹) for a given wEI (:func:`max_growth_rate`); realistic FC needs the
  network near instability, and lower wEI tolerates less recurrent excitation.
* Regional maps: the shipped default DK68 myelin and gradient maps (real HCP group data,
  :mod:`delssome_norms.datasets.maps`); no simulation.
* E/I mapping (:class:`EIMapping`): at the noise-free FIC fixed point ``S_E* ≈ 0.1613`` in every
  region and ``S_I*`` depends only on wEI, so E/I = ``S_E* / S_I*(wEI)`` (:func:`fixed_point_ei`,
  from the model's FIC solver); the small noise-induced shift of the time-averaged E/I is
  calibrated from :func:`~delssome_norms.model.simulate` runs (:func:`calibrate_ei_mapping`).

Ground truth (per person)
-------------------------
Regional parameters follow the design ``X = [1, m, g]`` with ``g`` the default gradient and ``m``
the z-scored default myelin map (:func:`myelin_map`; both maps are the shipped real DK68 maps,
:mod:`delssome_norms.datasets.maps`):

    wEI_i = a + k m_i + b g_i,   wEE_i = h(a) + h'(a) (wEI_i - a),   G,   sigma_i = sigma,

so the truth is exactly 10 pFIC coefficients (:func:`coefficient_vectors`). G and sigma are shared;
the lifespan structure is carried by wEI, which governs E/I through feedback inhibition. It is
specified in E/I units and inverted through the mapping:

* population trajectory (:func:`target_trajectory`): a man's regional-mean E/I falls steeply in
  childhood, plateaus in the 20s, falls in mid-life and rises in very old age; the intercept
  ``a(age, sex)`` is solved so that the regional mean of the mapped E/I equals it
  (:func:`population_intercept`);
* women: ``+female_shift`` E/I everywhere, person-level spread ``female_sd_ratio`` times larger;
* sensory > association: ``k < 0`` (lower wEI, so higher E/I, in sensory regions);
* a person adds ``site_mean[s] + site_scale[s] * sd_sex * u`` to ``a`` (``u ~ N(0, 1)``) and has
  ``b_p = b * exp(gradient_slope_log_sd * v)``; 14 sites have random offsets in mean and scale.

The published table is what a fitting pipeline would report: true E/I times
``exp(noise_global_cv * e_p + noise_regional_cv * e_pi)`` (a per-person error shared by all
regions plus a regional one; sizes from the fitter's recovery benchmark:
:data:`NOISE_RECOVERY_NOTE`). The *null* cohort
(``effects=False``) uses the same people, sites and noise draws with a flat trajectory, no sex
difference and no regional pattern.

End-to-end subjects and patients
--------------------------------
An age x sex stratified subset of the table's people whose truth the fitter can represent
(:func:`fitter_valid`) and a few "patients" with a known deviation (a region group shifted by ±2
normative SD) are simulated with :func:`~delssome_norms.model.simulate` (TR 0.72 s,
:data:`SUBJECT_SCAN_LENGTH`-s scans, dt 0.005 s, 3 duplicates) and their FC and FCD-CDF stored
compactly; :func:`delssome_norms.datasets.reference.materialise_subjects` writes them in the
reference CSV layout for the CLI.

Modules, one job each: :mod:`.spec` (constants and the specification dataclasses),
:mod:`.ei_mapping` (pFIC maths: fixed-point E/I, the E/I mapping, the wEE rule), :mod:`.demographics`
(trajectories, people, sites, the E/I table, patients), :mod:`.simulation` (SC, calibration, model
set-up, subject selection and simulation), :mod:`.cohort` (:func:`generate_reference_cohort`) and
:mod:`.packaged` (writer of the packaged files, loaders of the generator's types). The package sits
above ``surrogate`` in the layers (it uses ``model``; ``datasets`` holds only the loaders).
"""

from delssome_norms.synthetic.cohort import (
    COEFFICIENT_NAMES,
    ReferenceCohort,
    SubjectTruth,
    coefficient_vectors,
    generate_reference_cohort,
    reusable_parts,
    simulate_subjects,
    subject_truth,
)
from delssome_norms.synthetic.demographics import (
    PATIENT_DEVIATIONS,
    People,
    class_term,
    ei_table,
    intercept_curve,
    make_patients,
    make_people,
    myelin_map,
    normative_sd,
    population_intercept,
    quantise_ei,
    regional_pattern,
    sample_demographics,
    sample_site_effects,
    target_trajectory,
)
from delssome_norms.synthetic.ei_mapping import (
    EIMapping,
    WEERule,
    fit_wee_rule,
    fixed_point_ei,
    max_growth_rate,
    network_jacobian,
)
from delssome_norms.synthetic.packaged import (
    load_ei_mapping,
    load_model_setup,
    load_reference_spec,
    load_reference_table,
    write_npz_deterministic,
    write_reference_cohort,
)
from delssome_norms.synthetic.simulation import (
    CALIBRATION_INTERCEPTS,
    CALIBRATION_SIGMAS,
    FIT_WEI_RANGE,
    SIMULATION_DTYPE,
    SIMULATION_ENGINE,
    ModelSetup,
    SimulatedSet,
    build_model_setup,
    calibrate_ei_mapping,
    calibration_design,
    fit_ei_mapping,
    fitter_valid,
    select_subjects,
    simulate_sets,
    simulation_sc,
    subject_timing,
)
from delssome_norms.synthetic.spec import (
    DEFAULT_SEED,
    DEFAULT_SITES,
    EI_QUANTUM,
    FORMAT_VERSION,
    N_DUPLICATES,
    NOISE_GLOBAL_CV,
    NOISE_RECOVERY_NOTE,
    NOISE_REGIONAL_CV,
    SUBJECT_DT,
    SUBJECT_SCAN_LENGTH,
    SUBJECT_TR,
    SYNTHETIC_LABEL,
    CohortSpec,
    SiteSpec,
    TrajectorySpec,
    seed_streams,
    simulation_seed,
)

__all__ = [
    "CALIBRATION_INTERCEPTS",
    "CALIBRATION_SIGMAS",
    "COEFFICIENT_NAMES",
    "DEFAULT_SEED",
    "DEFAULT_SITES",
    "EI_QUANTUM",
    "FIT_WEI_RANGE",
    "FORMAT_VERSION",
    "NOISE_GLOBAL_CV",
    "NOISE_RECOVERY_NOTE",
    "NOISE_REGIONAL_CV",
    "N_DUPLICATES",
    "PATIENT_DEVIATIONS",
    "SIMULATION_DTYPE",
    "SIMULATION_ENGINE",
    "SUBJECT_DT",
    "SUBJECT_SCAN_LENGTH",
    "SUBJECT_TR",
    "SYNTHETIC_LABEL",
    "CohortSpec",
    "EIMapping",
    "ModelSetup",
    "People",
    "ReferenceCohort",
    "SimulatedSet",
    "SiteSpec",
    "SubjectTruth",
    "TrajectorySpec",
    "WEERule",
    "build_model_setup",
    "calibrate_ei_mapping",
    "calibration_design",
    "class_term",
    "coefficient_vectors",
    "ei_table",
    "fit_ei_mapping",
    "fit_wee_rule",
    "fitter_valid",
    "fixed_point_ei",
    "generate_reference_cohort",
    "intercept_curve",
    "load_ei_mapping",
    "load_model_setup",
    "load_reference_spec",
    "load_reference_table",
    "make_patients",
    "make_people",
    "max_growth_rate",
    "myelin_map",
    "network_jacobian",
    "normative_sd",
    "population_intercept",
    "quantise_ei",
    "regional_pattern",
    "reusable_parts",
    "sample_demographics",
    "sample_site_effects",
    "seed_streams",
    "select_subjects",
    "simulate_sets",
    "simulate_subjects",
    "simulation_sc",
    "simulation_seed",
    "subject_timing",
    "subject_truth",
    "target_trajectory",
    "write_npz_deterministic",
    "write_reference_cohort",
]
