"""Batched penalised-likelihood fitting of GAMLSS models with site random intercepts.

All targets (e.g. the mean E/I ratio and 68 regions) share one design, so they are fitted together:
every array carries a leading target axis and one damped Newton iteration (exact Hessian, closed
form for SHASHo2 / SHASHo / NO and torch autograd for the other families, Levenberg damping and a
backtracking line search per target) updates every target at once, in numpy float64. There is no
Python loop over targets.

Model (per target ``t``; ``k`` runs over the family's parameters mu, sigma, nu, tau)::

    eta_k = X_k beta_k + gamma_k[site]        g_k(theta_k) = eta_k   (family links)
    y ~ Family(theta_1, ..., theta_K)
    maximise  l(beta, gamma) - sum_k lambda_k / 2 * ||gamma_k||^2

The random-intercept penalty ``lambda_k`` (= residual variance / random-effect variance on the
working scale) is chosen the way R gamlss's ``random()`` smoother does it (local maximum likelihood,
Schall's / Fellner–Schall-type iteration; Rigby & Stasinopoulos 2005, gamlss ``gamlss.random``):
with the RS working weights ``w`` and working residuals ``r = (dl/deta) / w``, the partial residuals
``y_i = gamma[site_i] + r_i`` are smoothed by ``gamma_j = sum_j w y / (sum_j w + lambda)``, and

    edf = sum_j W_j / (W_j + lambda),   sig2 = sum w (y - gamma[site])^2 / (N - edf),
    tau2 = sum_j gamma_j^2 / edf,       lambda <- sig2 / tau2,

iterated from ``lambda = 10`` (at most 50 times, |change| < 1e-7 or lambda > 1e7), each outer
iteration (from the current lambda once a fit is still running after :data:`WARM_LAMBDA_AFTER`
iterations). This is a REML/ML-type (Schall 1991) update of the random-effect variance on the IRLS
working model. At convergence the estimates satisfy both the penalised score equations and
gamlss's lambda fixed point.

R's RS algorithm reaches the same likelihood but stops on a global-deviance change < 0.001, before
the split of the overall level between the intercept and the mean of the site intercepts has
converged (the deviance does not depend on it). Here the site intercepts sum to zero exactly, as
they do at the optimum; population curves therefore differ from R's by a near-constant ~1e-3 on
the reference data. :mod:`delssome_norms.norms.rs` reproduces R's path when R-identical numbers
are needed.

Effective degrees of freedom follow gamlss: fixed-effect columns plus ``edf`` of each random term.
Convergence is reported per target; callers must not use unconverged targets silently.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from delssome_norms.norms.distributions import Family, link

LAMBDA_START = 10.0
"""gamlss ``random(start = 10)``: first value of the local lambda iteration."""
LAMBDA_MIN, LAMBDA_MAX = 1e-7, 1e7
"""gamlss's bounds on the random-effect penalty."""
WARM_LAMBDA_AFTER = 25
"""Newton iterations after which the local lambda iteration starts from the current penalties
instead of :data:`LAMBDA_START`. The local iteration can have two fixed points (e.g. sigma's site
term with a site of 10 people next to one of 290): restarting it from 10 at every Newton
iteration then hopped between them in a cycle and the fit never converged. Fits that converge
before (all 69 targets of the reference chart take at most 16) keep gamlss's rule."""


@dataclass
class FitResult:
    """Estimates of a batched fit (leading axis = target).

    Attributes
    ----------
    beta : list of ndarray, one per parameter, shape (T, p_k)
        Fixed-effect coefficients on the linear-predictor scale.
    gamma : list of (ndarray of shape (T, S) or None)
        Site random intercepts per parameter (None without a random term).
    lam : list of (ndarray of shape (T,) or None)
        Random-effect penalties (residual / random-effect variance on the working scale).
    edf_random : list of (ndarray of shape (T,) or None)
        Effective degrees of freedom of each random term.
    loglik : ndarray of shape (T,)
        Log-likelihood at the estimates (site effects included; no penalty).
    edf : ndarray of shape (T,)
        Effective number of parameters (fixed columns + random-term edf).
    n_obs : ndarray of shape (T,)
        Observations used per target (missing values are skipped).
    converged : ndarray of bool, shape (T,)
    n_iter : ndarray of int, shape (T,)
        Iteration at which each target met the convergence criterion (or the maximum).
    decrement : ndarray of shape (T,)
        Final Newton decrement (expected gain of the penalised log-likelihood from one more step).
    weights : list of ndarray, shape (T, N)
        gamlss RS working weights at the estimates (0 where y is missing).
    """

    beta: list[np.ndarray]
    gamma: list[np.ndarray | None]
    lam: list[np.ndarray | None]
    edf_random: list[np.ndarray | None]
    loglik: np.ndarray
    edf: np.ndarray
    n_obs: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    decrement: np.ndarray
    weights: list[np.ndarray] = field(default_factory=list)

    def penalty(self) -> np.ndarray:
        """Random-effect penalty ``sum_k lam_k / 2 ||gamma_k||^2`` per target, shape (T,)
        (``loglik - penalty()`` is the penalised log-likelihood the fit maximises)."""
        pen = np.zeros(self.loglik.shape[0])
        for g, lam in zip(self.gamma, self.lam):
            if g is not None:
                pen = pen + 0.5 * lam * (g**2).sum(1)
        return pen


@contextlib.contextmanager
def limit_threads(n_threads: int | None) -> Iterator[None]:
    """Temporarily limit torch and BLAS threads (None: leave them as they are).

    The fitter's matrices are small (targets x people x a few dozen columns), so extra threads
    mostly add synchronisation; on a busy machine they can slow it down tenfold.
    """
    if n_threads is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - optional
            ctx = contextlib.nullcontext()
        else:
            ctx = threadpool_limits(limits=int(n_threads))
        with ctx:
            yield
    finally:
        torch.set_num_threads(old)


def _initial_constants(family: Family) -> dict[str, float]:
    """Starting values of nu and tau (parameter scale) that make each family close to normal."""
    return {
        "SHASHo2": {"nu": 0.0, "tau": 1.0},
        "SHASHo": {"nu": 0.0, "tau": 1.0},
        "SHASH": {"nu": 1.0, "tau": 1.0},
        "JSU": {"nu": 0.0, "tau": 2.0},
        "GG": {"nu": 1.0},
        "NO": {},
    }.get(family.name, {"nu": 0.0, "tau": 1.0})


def _masked_lstsq(X: np.ndarray, Y: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Per-target least squares with a 0/1 mask: solves (X' M_t X) b_t = X' M_t y_t for all t."""
    XtX = np.einsum("nt,np,nq->tpq", M, X, X)
    XtY = np.einsum("nt,np->tp", M * Y, X)
    ridge = 1e-10 * np.trace(XtX, axis1=1, axis2=2)[:, None, None] * np.eye(X.shape[1])
    return np.linalg.solve(XtX + ridge, XtY[..., None])[..., 0]


def initial_values(
    y: np.ndarray, mask: np.ndarray, family: Family, designs: list[np.ndarray]
) -> list[np.ndarray]:
    """Starting fixed-effect coefficients per parameter, shape (T, p_k) each.

    mu from least squares (of log y for a log link), sigma's intercept from the residual spread,
    nu and tau at values that make the family close to normal; other coefficients 0.
    """
    n_targets = y.shape[1]
    yy = np.where(mask > 0, y, 0.0)
    if family.links[0] == "log":
        yy = np.where(mask > 0, np.log(np.where(mask > 0, y, 1.0)), 0.0)
    b_mu = _masked_lstsq(designs[0], yy, mask)
    resid = (yy - designs[0] @ b_mu.T) * mask
    sd = np.sqrt((resid**2).sum(0) / np.maximum(mask.sum(0) - designs[0].shape[1], 1.0))
    sd = np.maximum(sd, 1e-8)
    betas = [b_mu]
    consts = _initial_constants(family)
    for k in range(1, family.n_params):
        b = np.zeros((n_targets, designs[k].shape[1]))
        name = family.params[k]
        if name == "sigma":
            b[:, 0] = np.log(sd)
        else:
            b[:, 0] = link(family.links[k], np.asarray(consts[name]))
        betas.append(b)
    return betas


def column_fill(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Value put in the missing cells of each column of ``y`` (N, T): the mean of its observed
    values, 1.0 for a column without any. The mask keeps these cells out of the likelihood; they
    only need to be finite. ``nanmean``'s arithmetic (sum of the observed values / their count)
    without its "Mean of empty slice" warning for an all-missing column."""
    count = mask.sum(0)
    total = np.where(mask, y, 0.0).sum(0)
    return np.divide(total, count, out=np.ones(y.shape[1]), where=count > 0)


class _Problem:
    """Arrays of one batched fit and the functions that evaluate it (numpy, float64).

    Parameters live in one matrix ``theta`` of shape (T, Q): for each distribution parameter k its
    fixed effects (``slices[k]``) followed by its site intercepts (``gamma_slices[k]``) if any.
    The Hessian is assembled block by block from products of design columns precomputed once
    (the site part is one-hot, so its blocks are per-site sums).
    """

    def __init__(
        self,
        y: np.ndarray,
        family: Family,
        designs: list[np.ndarray],
        random: list[bool],
        site: np.ndarray,
        n_sites: int,
    ) -> None:
        self.family = family
        self.K = family.n_params
        mask = np.isfinite(y)
        fill = column_fill(y, mask)
        self.Y = np.ascontiguousarray(np.where(mask, y, fill[None, :]).T)  # (T, N)
        self.M = np.ascontiguousarray(mask.T.astype(np.float64))  # (T, N)
        self.mask_np = mask
        self.complete = bool(mask.all())
        self.site = np.asarray(site, dtype=np.int64)
        self.n_sites = n_sites
        self.random = list(random)
        self.X = [np.ascontiguousarray(d, dtype=np.float64) for d in designs]
        self.p = [d.shape[1] for d in designs]
        N = self.site.size
        self.Z = np.zeros((N, max(n_sites, 1)))
        if n_sites:
            self.Z[np.arange(N), self.site] = 1.0
        self.slices, self.gamma_slices = [], []
        start = 0
        for k in range(self.K):
            width = self.p[k] + (n_sites if random[k] else 0)
            self.slices.append(slice(start, start + self.p[k]))
            self.gamma_slices.append(slice(start + self.p[k], start + width) if random[k] else None)
            start += width
        self.Q = start
        self.n_obs = self.M.sum(1)
        # products of design columns: (N, p_k * p_j) and (N, p_k * S)
        self.XX = {}
        for k in range(self.K):
            for j in range(k, self.K):
                self.XX[k, j] = (self.X[k][:, :, None] * self.X[j][:, None, :]).reshape(N, -1)
        self.XZ = {
            k: (self.X[k][:, :, None] * self.Z[:, None, :]).reshape(N, -1)
            for k in range(self.K)
            if any(random)
        }

    # -- evaluation ------------------------------------------------------------------------
    def etas(self, theta: np.ndarray) -> list[np.ndarray]:
        out = []
        for k in range(self.K):
            eta = theta[:, self.slices[k]] @ self.X[k].T
            gs = self.gamma_slices[k]
            if gs is not None:
                eta = eta + theta[:, gs][:, self.site]
            out.append(eta)
        return out

    def loglik(self, theta: np.ndarray) -> np.ndarray:
        """Per-target log-likelihood (T,); NaN where a parameter is invalid."""
        with np.errstate(all="ignore"):
            params = self.family.to_params(self.etas(theta))
            ll = self.family.logpdf(self.Y, *params)
            return np.where(self.M > 0, ll, 0.0).sum(1)

    def penalty(self, theta: np.ndarray, lam: np.ndarray) -> np.ndarray:
        pen = np.zeros(theta.shape[0])
        for k, gs in enumerate(self.gamma_slices):
            if gs is not None:
                pen = pen + 0.5 * lam[:, k] * (theta[:, gs] ** 2).sum(1)
        return pen

    def derivatives(self, theta: np.ndarray):
        """Scores and second derivatives per observation on the linear-predictor scale.

        Returns
        -------
        ll : (T,), g : list of K arrays (T, N), h : K x K nested list of arrays (T, N),
        params : list of K arrays (T, N)
        """
        etas = self.etas(theta)
        with np.errstate(all="ignore"):
            ll, g, h = self.family.derivatives(self.Y, etas)
            params = self.family.to_params(etas)
        if self.complete:
            return ll.sum(1), g, h, params
        M = self.M > 0
        g = [np.where(M, gk, 0.0) for gk in g]
        h = [
            [np.where(M, h[k][j], 0.0) if j >= k else None for j in range(self.K)] for k in range(self.K)
        ]
        for k in range(self.K):
            for j in range(k):
                h[k][j] = h[j][k]
        return np.where(M, ll, 0.0).sum(1), g, h, params

    def gradient_hessian(self, g, h) -> tuple[np.ndarray, np.ndarray]:
        """Assemble the gradient (T, Q) and Hessian (T, Q, Q) of the log-likelihood."""
        T = g[0].shape[0]
        S = self.n_sites
        grad = np.empty((T, self.Q))
        hess = np.zeros((T, self.Q, self.Q))
        for k in range(self.K):
            grad[:, self.slices[k]] = g[k] @ self.X[k]
            gk = self.gamma_slices[k]
            if gk is not None:
                grad[:, gk] = g[k] @ self.Z
            for j in range(k, self.K):
                hkj = h[k][j]
                gj = self.gamma_slices[j]
                sk, sj = self.slices[k], self.slices[j]
                block = (hkj @ self.XX[k, j]).reshape(T, self.p[k], self.p[j])
                hess[:, sk, sj] = block
                if gj is not None:
                    hess[:, sk, gj] = (hkj @ self.XZ[k]).reshape(T, self.p[k], S)
                if gk is not None:
                    hess[:, gk, sj] = (hkj @ self.XZ[j]).reshape(T, self.p[j], S).transpose(0, 2, 1)
                if gk is not None and gj is not None:
                    diag = hkj @ self.Z
                    idx = np.arange(S)
                    hess[:, gk.start + idx, gj.start + idx] = diag
                if j != k:
                    rows = slice(sk.start, (gk or sk).stop)
                    cols = slice(sj.start, (gj or sj).stop)
                    hess[:, cols, rows] = hess[:, rows, cols].transpose(0, 2, 1)
        return grad, hess

    # -- random-effect penalty (gamlss random(), local ML) ------------------------------------
    def random_edf(self, g, params, lam: np.ndarray) -> np.ndarray:
        """Effective degrees of freedom (T, K) of each random term at penalties ``lam`` (T, K)."""
        edf = np.zeros((lam.shape[0], self.K))
        for k, gs in enumerate(self.gamma_slices):
            if gs is not None:
                nw = (self.family.working_weights(k, g[k], params) * self.M) @ self.Z
                edf[:, k] = np.where(nw > 0, nw / (nw + lam[:, k, None]), 0.0).sum(1)
        return edf

    def update_lambda(
        self, theta, g, params, start: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """gamlss ``random()`` lambda for each random term, given the current estimates.

        ``start`` (T, K): where the local iteration starts (default :data:`LAMBDA_START`, as in
        gamlss); see :data:`WARM_LAMBDA_AFTER`.

        Returns
        -------
        lam : (T, K) (ones where a parameter has no random term)
        edf : (T, K) (zeros where a parameter has no random term)
        """
        T = theta.shape[0]
        lam = np.ones((T, self.K))
        edf_all = np.zeros((T, self.K))
        for k in range(self.K):
            gs = self.gamma_slices[k]
            if gs is None:
                continue
            wt = self.family.working_weights(k, g[k], params) * self.M
            gamma = theta[:, gs]
            with np.errstate(divide="ignore", invalid="ignore"):
                ypart = gamma[:, self.site] + np.where(self.M > 0, g[k] / wt, 0.0)
            nw = wt @ self.Z
            swy = (wt * ypart) @ self.Z
            swyy = (wt * ypart * ypart).sum(1)
            present = nw > 0
            cur = np.full(T, LAMBDA_START) if start is None else start[:, k].copy()
            active = np.ones(T, dtype=bool)
            with np.errstate(divide="ignore", invalid="ignore"):
                for _ in range(50):
                    denom = nw + cur[:, None]
                    gam = np.where(present, swy / denom, 0.0)
                    edf_new = np.where(present, nw / denom, 0.0).sum(1)
                    rss = swyy - 2.0 * (gam * swy).sum(1) + (gam * gam * nw).sum(1)
                    sig2 = rss / (self.n_obs - edf_new)
                    tau2 = (gam * gam).sum(1) / edf_new
                    new = np.maximum(sig2 / tau2, LAMBDA_MIN)
                    new = np.where(np.isfinite(new), new, LAMBDA_MAX)
                    done = (np.abs(new - cur) < 1e-7) | (new > LAMBDA_MAX)
                    cur = np.where(active, np.minimum(new, LAMBDA_MAX), cur)
                    active &= ~done
                    if not active.any():
                        break
            lam[:, k] = cur
            edf_all[:, k] = np.where(present, nw / (nw + cur[:, None]), 0.0).sum(1)
        return lam, edf_all


def _solve_damped(hpen: np.ndarray, gpen: np.ndarray) -> np.ndarray:
    """Solve hpen @ step = gpen per target, adding Levenberg damping where hpen is not PD."""
    H = torch.from_numpy(hpen)
    G = torch.from_numpy(gpen)
    Q = H.shape[-1]
    eye = torch.eye(Q, dtype=H.dtype)
    scale = H.diagonal(dim1=1, dim2=2).abs().amax(1).clamp_min(1e-12)
    damping = torch.zeros_like(scale)
    step = torch.zeros_like(G)
    todo = torch.ones(H.shape[0], dtype=torch.bool)
    for attempt in range(12):
        idx = torch.nonzero(todo).squeeze(1)
        chol, info = torch.linalg.cholesky_ex(H[idx] + damping[idx, None, None] * eye)
        ok = info == 0
        if bool(ok.any()):
            sol = torch.cholesky_solve(G[idx[ok]].unsqueeze(-1), chol[ok]).squeeze(-1)
            step[idx[ok]] = sol
            todo[idx[ok]] = False
        if not bool(todo.any()):
            break
        damping = torch.where(todo, torch.where(damping > 0, damping * 10.0, 1e-8 * scale), damping)
        if attempt == 11:
            step[todo] = G[todo] / scale[todo, None]  # gradient step as a last resort
    return step.numpy()


def fit_gamlss(
    y: np.ndarray,
    family: Family,
    designs: list[np.ndarray],
    random: list[bool],
    site: np.ndarray,
    n_sites: int,
    *,
    init: list[np.ndarray] | None = None,
    max_iter: int = 200,
    tol: float = 1e-9,
    lambda_tol: float = 1e-6,
    n_threads: int | None = 1,
    fixed_lambda: np.ndarray | None = None,
) -> FitResult:
    """Fit one GAMLSS model to every column of ``y`` at once.

    Parameters
    ----------
    y : ndarray of shape (N, T)
        Responses, one column per target; NaN marks a missing value (skipped for that target).
    family : Family
        Response distribution.
    designs : list of ndarray, one per parameter, shape (N, p_k)
        Fixed-effect design matrices (shared by all targets).
    random : list of bool, one per parameter
        Whether the parameter has a site random intercept.
    site : ndarray of int, shape (N,)
        Site code of each observation, 0 .. n_sites - 1.
    n_sites : int
    init : list of ndarray (T, p_k), optional
        Starting fixed effects (default :func:`initial_values`).
    max_iter : int
        Maximum Newton iterations.
    tol : float
        Convergence when the Newton decrement (expected gain of the penalised log-likelihood
        from one more step) is below ``tol * n_obs`` ...
    lambda_tol : float
        ... and the random-effect penalties changed by less than this (relative) in the last
        iteration.
    n_threads : int or None
        Torch/BLAS threads during the fit (None leaves the global settings).
    fixed_lambda : ndarray of shape (T, K), optional
        Hold the random-effect penalties at these values (all positive; the columns of
        parameters without a random term are not used) instead of estimating them: the fit then
        maximises one fixed penalised log-likelihood, so nested fits with the same penalties
        have ordered optima (used for likelihood-ratio tests of fixed effects, see
        :func:`delssome_norms.stats.chart_sex_tests`).

    Returns
    -------
    FitResult
    """
    with limit_threads(n_threads):
        return _fit_gamlss(
            y, family, designs, random, site, n_sites, init, max_iter, tol, lambda_tol, fixed_lambda
        )


def _fit_gamlss(
    y, family, designs, random, site, n_sites, init, max_iter, tol, lambda_tol, fixed_lambda=None
):
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"y must be (N, T), got shape {y.shape}")
    prob = _Problem(y, family, designs, random, site, n_sites)
    T = y.shape[1]
    if init is None:
        init = initial_values(y, prob.mask_np.astype(np.float64), family, designs)
    theta = np.zeros((T, prob.Q))
    for k in range(prob.K):
        theta[:, prob.slices[k]] = init[k]
    lam = np.full((T, prob.K), LAMBDA_START)
    edf_rand = np.zeros((T, prob.K))
    has_random = any(gs is not None for gs in prob.gamma_slices)
    estimate_lambda = has_random and fixed_lambda is None
    if fixed_lambda is not None:
        fixed = np.asarray(fixed_lambda, dtype=np.float64)
        if fixed.shape != (T, prob.K) or not np.all(np.isfinite(fixed) & (fixed > 0)):
            raise ValueError(f"fixed_lambda must be positive and of shape {(T, prob.K)}")
        lam = fixed.copy()
    converged = np.zeros(T, dtype=bool)
    n_iter = np.full(T, max_iter, dtype=np.int64)
    decrement = np.full(T, np.inf)
    threshold = tol * np.maximum(prob.n_obs, 1.0)
    pen_mask = np.zeros((prob.K, prob.Q))
    for k, gs in enumerate(prob.gamma_slices):
        if gs is not None:
            pen_mask[k, gs] = 1.0

    for it in range(1, max_iter + 1):
        ll, g, h, params = prob.derivatives(theta)
        lam_change = np.zeros(T)
        if estimate_lambda:
            start = lam if it > WARM_LAMBDA_AFTER else None
            new_lam, edf_rand = prob.update_lambda(theta, g, params, start=start)
            rel = (np.abs(new_lam - lam) / np.maximum(np.abs(lam), 1e-12)).max(1)
            lam_change = np.where(new_lam.max(1) >= LAMBDA_MAX, 0.0, rel)
            lam = new_lam
        grad, hess = prob.gradient_hessian(g, h)
        pen_diag = lam @ pen_mask  # (T, Q)
        gpen = grad - pen_diag * theta
        hpen = -hess
        hpen[:, np.arange(prob.Q), np.arange(prob.Q)] += pen_diag
        step = _solve_damped(hpen, gpen)
        dec = (gpen * step).sum(1)
        decrement = np.abs(dec)
        # backtracking line search on the penalised log-likelihood, per target
        f0 = ll - prob.penalty(theta, lam)
        alpha = np.ones(T)
        accepted = np.zeros(T, dtype=bool)
        new_theta = theta.copy()
        for _ in range(30):
            todo = ~accepted
            cand = theta[todo] + alpha[todo, None] * step[todo]
            sub = _SubProblem(prob, todo)
            f1 = sub.loglik(cand) - prob.penalty(cand, lam[todo])
            good = np.isfinite(f1) & (f1 >= f0[todo] - 1e-12 * np.abs(f0[todo]))
            idx = np.flatnonzero(todo)[good]
            new_theta[idx] = cand[good]
            accepted[idx] = True
            if accepted.all():
                break
            alpha = np.where(accepted, alpha, alpha * 0.5)
        theta = new_theta
        now = (decrement < threshold) & (lam_change < lambda_tol) & ~converged
        n_iter[now] = it
        converged |= now
        if converged.all():
            break

    ll, g, h, params = prob.derivatives(theta)
    if estimate_lambda:
        _, edf_rand = prob.update_lambda(theta, g, params)
    elif has_random:
        edf_rand = prob.random_edf(g, params, lam)
    weights = [family.working_weights(k, g[k], params) * prob.M for k in range(prob.K)]
    beta, gamma, lam_out, edf_out = [], [], [], []
    edf_total = np.zeros(T)
    for k in range(prob.K):
        beta.append(theta[:, prob.slices[k]].copy())
        edf_total += prob.p[k]
        gs = prob.gamma_slices[k]
        if gs is None:
            gamma.append(None)
            lam_out.append(None)
            edf_out.append(None)
        else:
            gamma.append(theta[:, gs].copy())
            lam_out.append(lam[:, k].copy())
            edf_out.append(edf_rand[:, k].copy())
            edf_total += edf_rand[:, k]
    return FitResult(
        beta=beta,
        gamma=gamma,
        lam=lam_out,
        edf_random=edf_out,
        loglik=ll,
        edf=edf_total,
        n_obs=prob.n_obs.copy(),
        converged=converged,
        n_iter=n_iter,
        decrement=decrement,
        weights=weights,
    )


class _SubProblem:
    """View of a :class:`_Problem` restricted to some targets (for the line search)."""

    def __init__(self, prob: _Problem, rows: np.ndarray) -> None:
        self.prob, self.rows = prob, rows

    def loglik(self, theta: np.ndarray) -> np.ndarray:
        p = self.prob
        with np.errstate(all="ignore"):
            etas = []
            for k in range(p.K):
                eta = theta[:, p.slices[k]] @ p.X[k].T
                gs = p.gamma_slices[k]
                if gs is not None:
                    eta = eta + theta[:, gs][:, p.site]
                etas.append(eta)
            ll = p.family.logpdf(p.Y[self.rows], *p.family.to_params(etas))
            return np.where(p.M[self.rows] > 0, ll, 0.0).sum(1)


@dataclass
class OffsetFit:
    """Site offsets estimated with the population model frozen (leading axes: target, site).

    Attributes
    ----------
    offsets : ndarray of shape (T, S, R)
        Offset of each new site on the linear-predictor scale of each parameter with a random
        site term (R of them, in parameter order).
    loglik : ndarray of shape (T, S)
        Log-likelihood of each site's controls at the offsets.
    n_obs : ndarray of shape (T, S)
    converged : ndarray of bool, shape (T, S)
    """

    offsets: np.ndarray
    loglik: np.ndarray
    n_obs: np.ndarray
    converged: np.ndarray


def fit_site_offsets(
    y: np.ndarray,
    family: Family,
    etas: list[np.ndarray],
    random: list[bool],
    site: np.ndarray,
    n_sites: int,
    *,
    penalty: np.ndarray | None = None,
    max_iter: int = 100,
    tol: float = 1e-10,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> OffsetFit:
    """Estimate new sites' random-intercept offsets by maximum likelihood, population fit frozen.

    This is the adaptation step of Bethlehem et al. (2022, Nature "Brain charts for the human
    lifespan"): the fixed effects, nu and tau stay as fitted; each new site gets offsets of the
    parameters that have a site term in the model (mu and sigma by default), estimated from that
    site's controls. With ``penalty`` the offsets are shrunk as the training random effects were
    (posterior mode under the estimated random-effect variance).

    Parameters
    ----------
    y : ndarray of shape (N, T)
        Controls' values (NaN = missing).
    family : Family
    etas : list of ndarray (N, T), one per parameter
        Population linear predictors of each control (fixed effects only).
    random : list of bool
        Which parameters get an offset.
    site : ndarray of int, shape (N,)
        New-site code of each control, 0 .. n_sites - 1.
    penalty : ndarray of shape (T, R), optional
        Random-effect penalties (lambda) of the training fit; None for plain ML.

    Returns
    -------
    OffsetFit
    """
    kw = {"dtype": dtype, "device": device}
    y = np.asarray(y, dtype=np.float64)
    mask = np.isfinite(y)
    fill = column_fill(y, mask)
    Y = torch.as_tensor(np.where(mask, y, fill).T.copy(), **kw)
    M = torch.as_tensor(mask.T.astype(np.float64), **kw)
    E = [torch.as_tensor(np.ascontiguousarray(e.T), **kw) for e in etas]
    idx = [k for k, r in enumerate(random) if r]
    R = len(idx)
    T = Y.shape[0]
    st = torch.as_tensor(site, dtype=torch.long, device=device)
    lam = torch.zeros(T, R, **kw) if penalty is None else torch.as_tensor(penalty, **kw)
    delta = torch.zeros(T, n_sites, R, **kw)
    n_obs = torch.zeros(T, n_sites, **kw).index_add_(1, st, M)

    def site_sum(v: torch.Tensor) -> torch.Tensor:
        return torch.zeros(T, n_sites, **kw).index_add_(1, st, v)

    def objective(d: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            et = list(E)
            for r, k in enumerate(idx):
                et[k] = E[k] + d[:, :, r][:, st]
            ll = family.logpdf(Y, *family.to_params(et)) * M
            return site_sum(ll) - 0.5 * (lam[:, None, :] * d * d).sum(-1)

    converged = torch.zeros(T, n_sites, dtype=torch.bool, device=device)
    eye = torch.eye(R, **kw)
    for _ in range(max_iter):
        et = [e.clone() for e in E]
        leaves = []
        for r, k in enumerate(idx):
            et[k] = (E[k] + delta[:, :, r][:, st]).requires_grad_(True)
            leaves.append(et[k])
        ll = family.logpdf(Y, *family.to_params(et)) * M
        g = torch.autograd.grad(ll.sum(), leaves, create_graph=True)
        grad = torch.stack([site_sum(gk.detach()) for gk in g], -1) - lam[:, None, :] * delta
        hess = torch.empty(T, n_sites, R, R, **kw)
        for a in range(R):
            row = torch.autograd.grad(g[a].sum(), leaves, retain_graph=a < R - 1)
            for b in range(R):
                hess[:, :, a, b] = site_sum(row[b].detach())
        hpen = -hess + torch.diag_embed(lam[:, None, :].expand(T, n_sites, R))
        hpen = hpen + 1e-9 * eye  # sites without controls stay at 0
        chol, info = torch.linalg.cholesky_ex(hpen)
        bad = info != 0
        if bool(bad.any()):
            diag = hpen.diagonal(dim1=-2, dim2=-1).abs().amax(-1).clamp_min(1e-8)
            hpen = torch.where(bad[..., None, None], hpen + diag[..., None, None] * eye, hpen)
            chol, info = torch.linalg.cholesky_ex(hpen)
        step = torch.cholesky_solve(grad.unsqueeze(-1), chol).squeeze(-1)
        dec = (grad * step).sum(-1)
        f0 = objective(delta)
        alpha = torch.ones(T, n_sites, **kw)
        accepted = torch.zeros(T, n_sites, dtype=torch.bool, device=device)
        new = delta.clone()
        for _ in range(30):
            cand = delta + alpha[..., None] * step
            f1 = objective(cand)
            good = torch.isfinite(f1) & (f1 >= f0 - 1e-12 * f0.abs()) & ~accepted
            new[good] = cand[good]
            accepted |= good
            if bool(accepted.all()):
                break
            alpha = torch.where(accepted, alpha, alpha * 0.5)
        delta = new
        converged = converged | (dec.abs() < tol * n_obs.clamp_min(1.0))
        if bool(converged.all()):
            break
    ll_final = objective(delta) + 0.5 * (lam[:, None, :] * delta * delta).sum(-1)
    return OffsetFit(
        offsets=delta.cpu().numpy(),
        loglik=ll_final.cpu().numpy(),
        n_obs=n_obs.cpu().numpy(),
        converged=converged.cpu().numpy(),
    )
