"""DELSSOME surrogate: a transformer predicting the cost of pFIC parameter sets (docs/science.md §6).

Typical use::

    from delssome_norms.surrogate import SurrogateEvaluator, load_pretrained

    evaluate = SurrogateEvaluator(load_pretrained(), fc, fcd_cdf, sc, tr=0.72, scan_length=115.2)
    losses = evaluate(params, subject_index)          # same interface as fit's EulerEvaluator

    # surrogate-mode fits: pass the backend to fit's entry points
    from delssome_norms.surrogate import SURROGATE_BACKEND
    estimate_ei(subject, out, FitSettings(mode="surrogate"), surrogate=SURROGATE_BACKEND)

    # training data and weights (also: delssome-norms surrogate generate|train|evaluate)
    from delssome_norms.surrogate import GenerateSettings, generate_dataset, load_dataset
    from delssome_norms.surrogate import train_surrogate, save_pretrained

Modules: :mod:`~.network` (the predictor), :mod:`~.dataset` (on-disk training data),
:mod:`~.generate` (Euler CMA-ES runs on synthetic subjects), :mod:`~.train` (training and the
metrics report), :mod:`~.pretrained` (safetensors + JSON weights, compatibility checks),
:mod:`~.evaluate` (the train-stage evaluator). Validation and test stay simulated.
"""

from delssome_norms.surrogate.dataset import (
    DATASET_FORMAT_VERSION,
    SurrogateDataset,
    append_shard,
    load_dataset,
    save_dataset,
)
from delssome_norms.surrogate.evaluate import (
    SURROGATE_BACKEND,
    DelssomeBackend,
    SurrogateEvaluator,
    make_surrogate_evaluator,
)
from delssome_norms.surrogate.generate import GenerateSettings, generate_dataset, generate_group
from delssome_norms.surrogate.network import (
    COST_TERMS,
    CostPredictor,
    SubjectFeatures,
    SurrogateConfig,
    fc_upper_triangle,
    fcd_density,
)
from delssome_norms.surrogate.pretrained import (
    PRETRAINED_FORMAT_VERSION,
    PretrainedSurrogate,
    default_pretrained_path,
    load_pretrained,
    save_pretrained,
)
from delssome_norms.surrogate.train import (
    TrainResult,
    TrainSettings,
    evaluate_model,
    prediction_metrics,
    train_surrogate,
)

__all__ = [
    "COST_TERMS",
    "DATASET_FORMAT_VERSION",
    "PRETRAINED_FORMAT_VERSION",
    "SURROGATE_BACKEND",
    "CostPredictor",
    "DelssomeBackend",
    "GenerateSettings",
    "PretrainedSurrogate",
    "SubjectFeatures",
    "SurrogateConfig",
    "SurrogateDataset",
    "SurrogateEvaluator",
    "TrainResult",
    "TrainSettings",
    "append_shard",
    "default_pretrained_path",
    "evaluate_model",
    "fc_upper_triangle",
    "fcd_density",
    "generate_dataset",
    "generate_group",
    "load_dataset",
    "load_pretrained",
    "make_surrogate_evaluator",
    "prediction_metrics",
    "save_dataset",
    "save_pretrained",
    "train_surrogate",
]
