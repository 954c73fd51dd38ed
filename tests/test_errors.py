"""The error classes: constructors check their own arguments."""

from __future__ import annotations

import pytest

from pgexact.errors import NumericalError, UnstableGainError


def test_unstable_gain_error_message_and_attribute() -> None:
    err = UnstableGainError(1.25)
    assert isinstance(err, NumericalError) and err.spectral_radius == 1.25
    assert str(err) == "gain K is not stabilizing: spectral radius of sqrt(gamma) (A - B K) is 1.25, expected < 1"
    assert str(UnstableGainError(2, "custom")) == "custom"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"spectral_radius": None}, r"^spectral_radius must be a real number, got None"),
        ({"spectral_radius": "x"}, r"^spectral_radius must be a real number"),
        ({"spectral_radius": True}, r"^spectral_radius must be a real number, got True"),
        ({"spectral_radius": 1.5, "message": 3}, r"^message must be a str or None, got int"),
    ],
)
def test_unstable_gain_error_refuses_malformed_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        UnstableGainError(**kwargs)
