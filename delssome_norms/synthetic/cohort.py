"""The whole synthetic cohort: per-subject ground truth, simulations, :func:`generate_reference_cohort`.

See :mod:`delssome_norms.synthetic` (docs/science.md §8).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from delssome_norms.synthetic.demographics import (
    People,
    class_term,
    ei_table,
    make_patients,
    make_people,
    sample_demographics,
    sample_site_effects,
)
from delssome_norms.synthetic.ei_mapping import WEERule
from delssome_norms.synthetic.simulation import (
    FIT_WEI_RANGE,
    ModelSetup,
    SimulatedSet,
    build_model_setup,
    fitter_valid,
    select_subjects,
    simulate_sets,
    subject_timing,
)
from delssome_norms.synthetic.spec import DEFAULT_SEED, CohortSpec, seed_streams, simulation_seed

if TYPE_CHECKING:
    from delssome_norms.model import SimulationTiming

# --------------------------------------------------------------------------------------------------
# The whole cohort
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubjectTruth:
    """Ground truth of the simulated end-to-end subjects and patients (K people, N regions).

    Attributes
    ----------
    wee, wei, sigma : ndarray of shape (K, N)
    g : ndarray of shape (K,)
    coefficients : ndarray of shape (K, 10)
        Coefficients of the ``[1, myelin map, gradient]`` design (:func:`coefficient_vectors`);
        exact for controls, the pre-deviation values for patients.
    """

    wee: np.ndarray
    wei: np.ndarray
    sigma: np.ndarray
    g: np.ndarray
    coefficients: np.ndarray


@dataclass(frozen=True)
class ReferenceCohort:
    """Everything :func:`generate_reference_cohort` produces.

    Attributes
    ----------
    spec : CohortSpec
    seed : int
    setup : ModelSetup
    site_mean_offset, site_scale : ndarray of shape (n_sites,)
    people : People
        The normative table's people.
    table : pandas.DataFrame
        The cohort table (:func:`ei_table`).
    subject_index : ndarray of int
        Rows of ``people`` that are the end-to-end subjects.
    patients : People
    patient_deviation : ndarray of shape (n_patients, N)
    patient_labels : list of str
    truth : SubjectTruth
        Ground truth of the end-to-end subjects, then the patients.
    subjects : SimulatedSet or None
        Their simulations (None unless ``simulate_subjects``).
    """

    spec: CohortSpec
    seed: int
    setup: ModelSetup
    site_mean_offset: np.ndarray
    site_scale: np.ndarray
    people: People
    table: pd.DataFrame
    subject_index: np.ndarray
    patients: People
    patient_deviation: np.ndarray
    patient_labels: list[str]
    truth: SubjectTruth
    subjects: SimulatedSet | None = None


COEFFICIENT_NAMES = (
    "wEE_1", "wEE_m", "wEE_g", "wEI_1", "wEI_m", "wEI_g", "G", "sigma_1", "sigma_m", "sigma_g",
)  # fmt: skip
"""Names of the 10 coefficients of the ``[1, myelin map (m), gradient (g)]`` design."""


def coefficient_vectors(
    wei_intercept: np.ndarray, wei_slope: np.ndarray, spec: CohortSpec, rule: WEERule
) -> np.ndarray:
    """The 10 pFIC coefficients of the ``[1, myelin map, gradient]`` design, shape (P, 10).

    Order as :func:`delssome_norms.fit.parameterisation.coeffs_to_regional` with P = 3 and the
    z-scored myelin map in the myelin column: ``[wEE_1, wEE_m, wEE_g, wEI_1, wEI_m, wEI_g, G, sigma_1,
    sigma_m, sigma_g]``; wEE from :meth:`WEERule.regional` (``h(a) + h'(a) (k m + b g)``).

    Parameters
    ----------
    wei_intercept, wei_slope : ndarray of shape (P,)
        Each person's ``a`` and ``b``.
    spec : CohortSpec
        Gives ``k`` (``myelin_slope``), G and sigma.
    rule : WEERule

    Returns
    -------
    ndarray of shape (P, 10)
    """
    a = np.asarray(wei_intercept, dtype=np.float64)
    b = np.asarray(wei_slope, dtype=np.float64)
    k = np.full(len(a), spec.myelin_slope)
    dh = rule.derivative(a)
    zero = np.zeros(len(a))
    return np.column_stack(
        [
            rule(a),
            dh * k,
            dh * b,
            a,
            k,
            b,
            np.full(len(a), spec.G),
            np.full(len(a), spec.sigma),
            zero,
            zero,
        ]
    )


def subject_truth(
    people: People, index: np.ndarray, patients: People, spec: CohortSpec, setup: ModelSetup
) -> SubjectTruth:
    """Regional ground truth of the end-to-end subjects (``people[index]``) and the patients.

    Controls: wEI = a + k m + b g exactly. Patients: the wEI that gives their deviated true E/I
    (:meth:`EIMapping.inverse`). wEE from :meth:`WEERule.regional` around each intercept.

    Parameters
    ----------
    people : People
        The normative cohort.
    index : ndarray of int
        The end-to-end subjects' rows of ``people``.
    patients : People
        From :func:`~delssome_norms.synthetic.demographics.make_patients`.
    spec : CohortSpec
    setup : ModelSetup

    Returns
    -------
    SubjectTruth
        Controls first, then patients.
    """
    g = setup.gradient[None, :]
    a = np.concatenate([people.wei_intercept[index], patients.wei_intercept])
    b = np.concatenate([people.wei_slope[index], patients.wei_slope])
    wei_ctrl = people.wei_intercept[index, None] + people.wei_slope[index, None] * g
    wei_ctrl = wei_ctrl + class_term(g.shape[1], spec)
    wei = np.concatenate([wei_ctrl, setup.mapping.inverse(patients.ei_true, spec.sigma)])
    wee = setup.wee_rule.regional(a, wei)
    k = len(a)
    return SubjectTruth(
        wee=wee,
        wei=wei,
        sigma=np.full(wei.shape, spec.sigma),
        g=np.full(k, spec.G),
        coefficients=coefficient_vectors(a, b, spec, setup.wee_rule),
    )


def _part_rows(k: int, n_patients: int) -> dict[str, slice]:
    return {"subjects": slice(0, k - n_patients), "patients": slice(k - n_patients, k)}


_PART_CHUNK = {"subjects": 12, "patients": 64}
_REUSE_KEYS = (
    "tr",
    "scan_length",
    "dt",
    "burn_in",
    "fcd_window",
    "warmup_steps",
    "n_dup",
    "engine",
    "dtype",
    "seeds",
)


def reusable_parts(
    truth: SubjectTruth,
    n_patients: int,
    sc: np.ndarray,
    simulation: Mapping[str, Any],
    previous: tuple[SubjectTruth, SimulatedSet, Mapping[str, Any]] | None,
) -> dict[str, bool]:
    """Which parts (``subjects``, ``patients``) of an earlier simulation can be reused as they are.

    A part is reusable when the SC, the simulation settings (``simulation``: timing, duplicates,
    engine, precision, seeds) and that part's ground truth are exactly those of ``previous``
    (``(truth, simulations, {"simulation": settings, "sc": sc})``); the simulations are
    deterministic, so reusing equals recomputing.

    Parameters
    ----------
    truth : SubjectTruth
        The ground truth about to be simulated.
    n_patients : int
        Its last ``n_patients`` rows are the patients.
    sc : ndarray of shape (N, N)
    simulation : mapping
        The simulation settings about to be used.
    previous : tuple or None
        The earlier run; ``None``: nothing is reusable.

    Returns
    -------
    dict of str to bool
        ``{"subjects": ..., "patients": ...}``.
    """
    parts = dict.fromkeys(_PART_CHUNK, False)
    if previous is None:
        return parts
    old_truth, _, old = previous
    same_settings = all(simulation.get(k) == old.get("simulation", {}).get(k) for k in _REUSE_KEYS)
    if not same_settings or not np.array_equal(np.asarray(sc), np.asarray(old.get("sc"))):
        return parts
    k, old_k = len(truth.g), len(old_truth.g)
    rows, old_rows = _part_rows(k, n_patients), _part_rows(old_k, n_patients)
    for part in parts:
        a, b = rows[part], old_rows[part]
        parts[part] = all(
            np.array_equal(getattr(truth, f)[a], getattr(old_truth, f)[b])
            for f in ("wee", "wei", "sigma", "g")
        )
    return parts


def simulate_subjects(
    truth: SubjectTruth,
    n_patients: int,
    setup: ModelSetup,
    seed: int,
    timing: SimulationTiming | None = None,
    reuse: SimulatedSet | None = None,
    reuse_parts: Mapping[str, bool] | None = None,
    parts: Sequence[str] = ("subjects", "patients"),
) -> SimulatedSet:
    """Simulate the end-to-end subjects (chunks of 12) and the patients (one chunk).

    Controls use the torch seeds ``simulation_seed(seed, "subjects") + j``, patients
    ``simulation_seed(seed, "patients")``, so either part can be regenerated alone (``parts``;
    the result then holds only those rows). Parts flagged in ``reuse_parts``
    (:func:`reusable_parts`) are copied from ``reuse`` instead.

    Parameters
    ----------
    truth : SubjectTruth
        Controls first, then the ``n_patients`` patients.
    n_patients : int
    setup : ModelSetup
        Gives the SC.
    seed : int
        Master seed (torch seeds from :func:`~delssome_norms.synthetic.spec.simulation_seed`).
    timing : SimulationTiming, optional
        Default :func:`~delssome_norms.synthetic.simulation.subject_timing`.
    reuse : SimulatedSet, optional
        An earlier run to copy parts from.
    reuse_parts : mapping of str to bool, optional
        Which parts to copy from ``reuse``.
    parts : sequence of str
        Parts to produce: ``"subjects"`` and/or ``"patients"``.

    Returns
    -------
    SimulatedSet
    """
    timing = timing or subject_timing()
    k = len(truth.g)
    rows = _part_rows(k, n_patients)
    old_rows = _part_rows(len(reuse.valid), n_patients) if reuse is not None else None
    pieces = []
    for part, sl in rows.items():
        if sl.stop <= sl.start or part not in parts:
            continue
        if reuse is not None and old_rows is not None and (reuse_parts or {}).get(part):
            o = old_rows[part]
            pieces.append(
                SimulatedSet(*(getattr(reuse, f.name)[o] for f in dataclasses.fields(SimulatedSet)))
            )
            continue
        pieces.append(
            simulate_sets(
                truth.wee[sl],
                truth.wei[sl],
                truth.sigma[sl],
                truth.g[sl],
                setup.sc,
                timing,
                simulation_seed(seed, part),
                chunk=_PART_CHUNK[part],
            )
        )
    return SimulatedSet(
        *(np.concatenate([getattr(p, f.name) for p in pieces]) for f in dataclasses.fields(SimulatedSet))
    )


def generate_reference_cohort(
    seed: int = DEFAULT_SEED,
    effects: bool = True,
    spec: CohortSpec | None = None,
    setup: ModelSetup | None = None,
    simulate: bool = False,
    n_patients: int = 8,
    subjects_per_cell: int = 3,
    timing: SimulationTiming | None = None,
) -> ReferenceCohort:
    """Generate the SYNTHETIC reference cohort (deterministic for a given seed and set-up).

    Parameters
    ----------
    seed : int
        Master seed; independent streams for demographics, sites, people, estimation error,
        subject selection, patients and simulations are spawned from it, so the null cohort
        (``effects=False``) shares demographics, sites and draws with the effect cohort.
    effects : bool
        False: the null cohort (:meth:`CohortSpec.without_effects`).
    spec : CohortSpec, optional
        Default ``CohortSpec()``.
    setup : ModelSetup, optional
        SC, wEE rule, gradient and E/I mapping; default :func:`build_model_setup` (simulations,
        minutes). Pass :func:`delssome_norms.synthetic.load_model_setup()` to reuse the
        packaged one (seconds).
    simulate : bool
        Also simulate FC / FCD-CDF of the end-to-end subjects and the patients (minutes).
    n_patients : int
        Patients with a known deviation.
    subjects_per_cell : int
        End-to-end subjects per age-bin x sex cell (10 x 2 cells).
    timing : SimulationTiming, optional
        Simulation timing; default :func:`subject_timing`.

    Returns
    -------
    ReferenceCohort
    """
    spec = spec or CohortSpec()
    if not effects:
        spec = spec.without_effects()
    streams = seed_streams(seed)
    setup = setup or build_model_setup(spec, seed, timing)
    gradient, mapping = np.asarray(setup.gradient, dtype=np.float64), setup.mapping
    age, female, site = sample_demographics(np.random.default_rng(streams["demographics"]), spec)
    site_effects = sample_site_effects(np.random.default_rng(streams["sites"]), spec)
    people = make_people(
        np.random.default_rng(streams["persons"]),
        np.random.default_rng(streams["noise"]),
        age,
        female,
        site,
        site_effects,
        gradient,
        spec,
        mapping,
    )
    wei = people.wei_intercept[:, None] + people.wei_slope[:, None] * gradient[None, :]
    wei = wei + class_term(len(gradient), spec)
    if spec.effects:
        eligible = fitter_valid(wei, gradient)
    else:  # the null cohort has no regional pattern: only the range rule applies
        eligible = (wei.min(axis=1) >= FIT_WEI_RANGE[0]) & (wei.max(axis=1) <= FIT_WEI_RANGE[1])
    subject_index = select_subjects(
        np.random.default_rng(streams["selection"]), people, eligible, per_cell=subjects_per_cell
    )
    patients, deviation, labels = make_patients(
        np.random.default_rng(streams["patients"]), n_patients, site_effects, gradient, spec, mapping
    )
    truth = subject_truth(people, subject_index, patients, spec, setup)
    sims = simulate_subjects(truth, n_patients, setup, seed, timing) if simulate else None
    return ReferenceCohort(
        spec=spec,
        seed=seed,
        setup=setup,
        site_mean_offset=site_effects[0],
        site_scale=site_effects[1],
        people=people,
        table=ei_table(people, spec),
        subject_index=subject_index,
        patients=patients,
        patient_deviation=deviation,
        patient_labels=labels,
        truth=truth,
        subjects=sims,
    )
