"""Balloon–Windkessel: with constant input the Euler state reaches its analytic steady state."""

from __future__ import annotations

import pytest
import torch

from delssome_norms.model import (
    BALLOON_CONSTANTS,
    balloon_init,
    balloon_steady_state,
    balloon_step,
    bold_signal,
)


@pytest.mark.parametrize("s", [0.0, 0.05, 0.1612849, 0.4])
def test_constant_input_converges_to_the_analytic_steady_state(s):
    state = balloon_init(torch.zeros(1, dtype=torch.float64))
    inp = torch.full((1,), s, dtype=torch.float64)
    for _ in range(12000):  # 120 s at dt = 0.01 s: many time constants
        state = balloon_step(state, inp, 0.01)
    expected = balloon_steady_state(s)
    for got, want in zip(state, expected):
        assert got.item() == pytest.approx(want.item(), abs=1e-7)
    c = BALLOON_CONSTANTS
    f = 1 + s / c.gamma_h
    assert expected.f.item() == pytest.approx(f)
    assert expected.v.item() == pytest.approx(f**c.alpha)


def test_resting_state_gives_zero_bold_and_activation_lowers_q():
    rest = balloon_init(torch.zeros(3, dtype=torch.float64))
    assert torch.all(bold_signal(rest) == 0)
    active = balloon_steady_state(0.2)
    assert active.q.item() < 1.0 < active.v.item()
    assert bold_signal(active).item() > 0
