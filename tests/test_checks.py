"""The argument checks every layer uses: what passes, what each message says."""

from __future__ import annotations

import numpy as np
import pytest

from mmfactor.checks import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_int_list,
    check_probability,
)
from mmfactor.errors import InputError


def test_values_that_pass_come_back_normalised() -> None:
    assert check_int("o", "n", np.int64(3), minimum=1) == 3
    assert type(check_int("o", "n", np.int64(3))) is int
    assert check_int("o", "seed", -5, minimum=None) == -5
    assert check_int_list("o", "hidden", 8) == [8]
    assert check_int_list("o", "hidden", (8, 4)) == [8, 4]
    assert check_float("o", "x", 2) == 2.0 and type(check_float("o", "x", 2)) is float
    assert check_float("o", "x", np.float32(0.5), 0, 1) == 0.5
    assert check_float("o", "x", float("inf"), minimum=0, finite=False) == float("inf")
    assert check_probability("o", "p", 0) == 0.0
    assert check_probability("o", "p", 1, closed=True) == 1.0
    assert check_choice("o", "act", "relu", {"relu": 1, "tanh": 2}) == 1
    assert check_choice("o", "kind", "b", ("a", "b")) == "b"
    assert check_bool("o", "flag", False) is False


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: check_int("mlp", "hidden", 0, minimum=1),
            "mlp: hidden must be an integer >= 1, got 0",
        ),
        (lambda: check_int("o", "n", True), "o: n must be an integer >= 0, got True"),
        (lambda: check_int("o", "n", 2.0), "o: n must be an integer >= 0, got 2.0"),
        (lambda: check_int("o", "fold", 5, 0, 4), "o: fold must be an integer in [0, 4], got 5"),
        (lambda: check_int("o", "seed", "a", None), "o: seed must be an integer, got 'a'"),
        (
            lambda: check_int("o", "patience", -1, hint="0: never"),
            "o: patience must be an integer >= 0 (0: never), got -1",
        ),
        (
            lambda: check_int_list("o", "h", "8"),
            "o: h must be an integer or a list of integers, got '8'",
        ),
        (lambda: check_int_list("o", "h", [8, 0]), "o: h must be an integer >= 1, got 0"),
        (
            lambda: check_float("o", "t", 0, minimum=0, min_open=True),
            "o: t must be a number > 0, got 0",
        ),
        (
            lambda: check_float("o", "x", 0.5, maximum=0.5, max_open=True),
            "o: x must be a number < 0.5, got 0.5",
        ),
        (
            lambda: check_float("o", "a", 0, 0, 1, min_open=True),
            "o: a must be a number in (0, 1], got 0",
        ),
        (lambda: check_float("o", "x", float("nan")), "o: x must be a finite number, got nan"),
        (
            lambda: check_float("o", "x", float("inf"), minimum=0),
            "o: x must be a number >= 0, got inf",
        ),
        (lambda: check_float("o", "x", False), "o: x must be a finite number, got False"),
        (lambda: check_probability("o", "p", 1), "o: p must be a number in [0, 1), got 1"),
        (
            lambda: check_probability("o", "p", 1.5, closed=True),
            "o: p must be a number in [0, 1], got 1.5",
        ),
        (lambda: check_choice("o", "k", "c", ("a", "b")), "o: k must be one of a, b, got 'c'"),
        (lambda: check_choice("o", "k", 1, ("a",)), "o: k must be one of a, got 1"),
        (lambda: check_bool("o", "flag", 1), "o: flag must be true or false, got 1"),
    ],
)
def test_failures_say_owner_name_what_and_value(call, message: str) -> None:
    with pytest.raises(InputError) as err:
        call()
    assert str(err.value) == message
    assert err.value.argument is None  # an option, not a front end's argument
