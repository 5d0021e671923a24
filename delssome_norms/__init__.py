"""delssome_norms: regional cortical E/I ratio from resting-state fMRI and lifespan growth charts.

The toolkit implements the parametric feedback-inhibition-control (pFIC) model fitted with CMA-ES and
the DELSSOME surrogate (Zeng et al. 2026, bioRxiv 10.1101/2025.04.07.647497), and GAMLSS-style
growth charts of the fitted E/I ratio. Subpackages, lowest first; each imports only itself and
lower ones (enforced by ``tests/test_layers.py``; see CONTRIBUTING.md "Layout"):
``errors`` → ``io`` → ``datasets`` → ``model`` → ``fit`` → ``surrogate`` → ``pipeline`` →
``synthetic`` → ``norms`` → ``stats`` → ``plotting`` → ``demo`` → ``cli``.
"""

from importlib.metadata import PackageNotFoundError, version

from delssome_norms.errors import InvalidInputError, NotFittedError, NotYetAvailableError

try:
    __version__ = version("delssome_norms")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["InvalidInputError", "NotFittedError", "NotYetAvailableError", "__version__"]
