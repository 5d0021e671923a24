"""Model formulas and design matrices of the growth charts.

Each distribution parameter has its own formula, in R terms
``~ bs(age_in_years, df = k, degree = 3) + numeric_sex + random(site_scanner)``, any part of which
may be absent (``~ 1`` is a constant). The fixed-effect design has columns
``[intercept, bs_1 .. bs_k, female]`` (``numeric_sex`` = 1 for female, as in the reference code),
and the site random intercept is carried separately as an integer site code per person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from delssome_norms.io.ei_table import SITE_COLUMN
from delssome_norms.norms.splines import BSplineBasis


@dataclass(frozen=True)
class ParameterTerms:
    """Terms of one distribution parameter's formula.

    Attributes
    ----------
    age_df : int or None
        Degrees of freedom of the cubic ``bs()`` age term (>= 3), or None for no age term.
    sex : bool
        Whether the formula has the sex fixed effect.
    random_site : bool
        Whether the formula has a site random intercept.
    """

    age_df: int | None = None
    sex: bool = False
    random_site: bool = False

    def formula(self, site_column: str = SITE_COLUMN) -> str:
        """The formula in R syntax, e.g. ``"bs(age_in_years, df=4, degree=3) + numeric_sex"``."""
        parts = []
        if self.age_df is not None:
            parts.append(f"bs(age_in_years, df={self.age_df}, degree=3)")
        if self.sex:
            parts.append("numeric_sex")
        if self.random_site:
            parts.append(f"random({site_column})")
        return " + ".join(parts) if parts else "1"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {"age_df": self.age_df, "sex": self.sex, "random_site": self.random_site}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParameterTerms:
        """Inverse of :meth:`to_dict`."""
        df = data.get("age_df")
        return cls(
            age_df=None if df is None else int(df),
            sex=bool(data.get("sex", False)),
            random_site=bool(data.get("random_site", False)),
        )


@dataclass(frozen=True)
class ParameterDesign:
    """Terms of one parameter plus the age basis frozen at training time.

    Attributes
    ----------
    terms : ParameterTerms
    basis : BSplineBasis or None
        The training ``bs()`` basis (None when the formula has no age term).
    """

    terms: ParameterTerms
    basis: BSplineBasis | None

    @classmethod
    def from_training(cls, terms: ParameterTerms, ages: np.ndarray) -> ParameterDesign:
        """Freeze the age basis (R's ``bs()`` knots) on the training ages."""
        basis = (
            BSplineBasis.from_data(ages, df=terms.age_df, degree=3) if terms.age_df is not None else None
        )
        return cls(terms, basis)

    @property
    def n_fixed(self) -> int:
        """Number of fixed-effect columns (intercept + spline columns + sex)."""
        return 1 + (self.basis.df if self.basis is not None else 0) + int(self.terms.sex)

    def column_names(self) -> list[str]:
        """Names of the fixed-effect columns, in R's coefficient naming."""
        names = ["(Intercept)"]
        if self.basis is not None:
            names += [
                f"bs(age_in_years, df={self.terms.age_df}, degree=3){i + 1}"
                for i in range(self.basis.df)
            ]
        if self.terms.sex:
            names.append("numeric_sex1")
        return names

    def matrix(self, ages: np.ndarray, female: np.ndarray) -> np.ndarray:
        """Fixed-effect design matrix.

        Parameters
        ----------
        ages : ndarray of shape (n,)
            Ages in years.
        female : ndarray of shape (n,)
            1 for female, 0 for male.

        Returns
        -------
        ndarray of shape (n, n_fixed), float64
        """
        ages = np.asarray(ages, dtype=np.float64).ravel()
        cols = [np.ones((ages.size, 1))]
        if self.basis is not None:
            cols.append(self.basis.transform(ages))
        if self.terms.sex:
            cols.append(np.asarray(female, dtype=np.float64).reshape(-1, 1))
        return np.hstack(cols)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (terms and knots)."""
        return {
            "terms": self.terms.to_dict(),
            "basis": self.basis.to_dict() if self.basis is not None else None,
            "columns": self.column_names(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParameterDesign:
        """Inverse of :meth:`to_dict`."""
        basis = BSplineBasis.from_dict(data["basis"]) if data.get("basis") else None
        return cls(ParameterTerms.from_dict(data["terms"]), basis)


def encode_sites(values, known: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Integer codes of site labels.

    Parameters
    ----------
    values : array-like of shape (n,)
        Site labels (converted to str).
    known : list of str, optional
        Known sites, in order; labels not in it get code -1. Without it the sorted unique labels
        define the codes (R's factor level order).

    Returns
    -------
    codes : ndarray of int64, shape (n,)
    sites : list of str
    """
    uniq, inverse = np.unique(np.asarray(values).astype(str), return_inverse=True)
    sites = [str(u) for u in uniq] if known is None else list(known)
    lookup = {s: i for i, s in enumerate(sites)}
    code_of_unique = np.array([lookup.get(str(u), -1) for u in uniq], dtype=np.int64)
    return code_of_unique[inverse.ravel()], sites
