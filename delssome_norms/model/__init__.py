"""The pFIC model: batched simulation, BOLD, FC/FCD summaries and cost (no file I/O).

Zhang et al. 2024 (pFIC) / Zeng et al. 2026 (DELSSOME); equations and constants in docs/science.md §2–§4.

Modules, one job each: :mod:`.constants` (model and Balloon–Windkessel constants), :mod:`.timing`
(warm-up, burn-in, TR sampling with the reference code's indexing), :mod:`.fic` (rate function,
vectorised Newton FIC solve), :mod:`.balloon` (hemodynamics), :mod:`.integrate` (batched
Euler–Maruyama, the public :func:`simulate`), :mod:`.graphed` (static blocks replayed as CUDA
graphs), :mod:`._kernel` (fused C++ CPU kernel, compiled on first use), :mod:`.stability`
(linear stability of the FIC fixed point), :mod:`.summary` (FC,
chunked FCD, CDF) and :mod:`.cost` (losses).

Engines: on CPU :func:`simulate` uses the fused kernel when a C++ compiler is available (about
100x faster than a per-step torch loop; set ``DELSSOME_NORMS_NO_KERNEL=1`` to disable), otherwise
plain torch; on CUDA the torch engine runs as CUDA graphs. All engines integrate the same
equations (tests run them on identical noise); their noise streams differ, so results are
reproducible per engine, device, dtype, seed and batch shape.

Examples
--------
>>> import torch
>>> from delssome_norms.model import PFICParams, SimulationTiming, simulate, scale_sc
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> raw = torch.rand(4, 4)
>>> sc = scale_sc((raw + raw.T).fill_diagonal_(0))  # symmetric, no self-connections
>>> params = PFICParams(torch.full((2, 4), 3.0), torch.full((2, 4), 2.0),
...                     torch.full((2, 4), 0.005), torch.tensor([1.0, 0.5]))
>>> timing = SimulationTiming(tr=0.72, scan_length=14.4, dt=0.005, burn_in=0.72, fcd_window=5,
...                           warmup_steps=50)
>>> res = simulate(params, sc, timing, n_dup=2, seed=0)
>>> tuple(res.bold.shape), tuple(res.ei_ratio.shape), bool(res.valid.all())
((2, 2, 20, 4), (2, 4), True)
"""

from delssome_norms.model.balloon import (
    BalloonState,
    balloon_dfun,
    balloon_init,
    balloon_steady_state,
    balloon_step,
    bold_signal,
)
from delssome_norms.model.constants import (
    BALLOON_CONSTANTS,
    PFIC_CONSTANTS,
    BalloonConstants,
    PFICConstants,
    balloon_derived,
)
from delssome_norms.model.cost import Losses, cost
from delssome_norms.model.fic import (
    FICSolution,
    fixed_point_i_e,
    fixed_point_s_e,
    rate,
    solve_fic,
)
from delssome_norms.model.integrate import (
    PFICParams,
    SimulationResult,
    pfic_dfun,
    scale_sc,
    simulate,
)
from delssome_norms.model.stability import (
    fic_fixed_point_stable,
    fic_jacobian,
    fic_reduced_jacobian,
    fic_stability_margin,
)
from delssome_norms.model.summary import (
    FCD_BINS,
    Summary,
    bold_fc,
    bold_fcd_cdf,
    fcd_histogram,
    fcd_product_dtype,
    histogram_to_cdf,
    summarize,
    summarize_duplicates,
    window_fc_vectors,
)
from delssome_norms.model.timing import SimulationTiming

__all__ = [
    "BALLOON_CONSTANTS",
    "FCD_BINS",
    "PFIC_CONSTANTS",
    "BalloonConstants",
    "BalloonState",
    "FICSolution",
    "Losses",
    "PFICConstants",
    "PFICParams",
    "SimulationResult",
    "SimulationTiming",
    "Summary",
    "balloon_derived",
    "balloon_dfun",
    "balloon_init",
    "balloon_steady_state",
    "balloon_step",
    "bold_fc",
    "bold_fcd_cdf",
    "bold_signal",
    "cost",
    "fcd_histogram",
    "fcd_product_dtype",
    "fic_fixed_point_stable",
    "fic_jacobian",
    "fic_reduced_jacobian",
    "fic_stability_margin",
    "fixed_point_i_e",
    "fixed_point_s_e",
    "histogram_to_cdf",
    "pfic_dfun",
    "rate",
    "scale_sc",
    "simulate",
    "solve_fic",
    "summarize",
    "summarize_duplicates",
    "window_fc_vectors",
]
