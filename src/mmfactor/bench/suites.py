"""Benchmark suites: which data sets, targets and settings a named suite runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mmfactor.errors import InputError, unknown_name


@dataclass(frozen=True)
class BenchData:
    """One data set of a suite: its options, the supervising target (``None``: the data set's
    default), what is evaluated, the modalities dropped at test time (``None``: each), the
    input-noise levels of the robustness curves (multiples of each feature's std), whether
    factors are probed against the data set's ground-truth latents, and the data options a
    label-free method pre-trains with instead (``pretrain``, over ``options``: Trifeatures'
    biased pairs for synergy), and the factor blocks probed (``factors``; ``None``: each);
    probes always fit and score on the data set of ``options``, and methods that use labels
    train on it too."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    eval_targets: tuple[str, ...] | None = None
    missing: tuple[str, ...] | None = ()
    train: dict[str, Any] = field(default_factory=dict)
    noise: tuple[float, ...] = ()
    latents: bool = False
    pretrain: dict[str, Any] = field(default_factory=dict)
    factors: tuple[str, ...] | None = None

    @property
    def label(self) -> str:
        """How results name it: the registry name, with the file's stem for file data sets
        (``multibench:mosi_raw``), so two files of one format stay apart."""
        path = self.options.get("path")
        return f"{self.name}:{Path(path).stem}" if path else self.name


@dataclass(frozen=True)
class Suite:
    name: str
    datasets: tuple[BenchData, ...]
    seeds: int = 1
    methods: tuple[str, ...] | None = None  # None: every registered method
    description: str = ""
    #: How a data file given to :meth:`with_files` (the CLI's ``--data NAME:PATH``) joins the
    #: suite (``None``: it does not).
    file_entry: BenchData | None = None

    def with_files(self, specs: Sequence[tuple[str, dict[str, Any]]]) -> Suite:
        """The suite run on the given data files instead of its own data sets.

        ``specs``: ``(registry name, options)`` per file, e.g. ``("multibench", {"path":
        "/data/mosi_raw.pkl"})``.
        """
        if self.file_entry is None:
            raise InputError(
                f"specs: bench suite {self.name!r} does not take data files", argument="specs"
            )
        entries = tuple(
            replace(self.file_entry, name=name, options={**self.file_entry.options, **options})
            for name, options in specs
        )
        return replace(self, datasets=entries)


#: The unique-information shares of the ``mix`` suite (targets ``mix@r`` of ``synthetic``).
MIX_TARGETS = ("mix@0", "mix@0.25", "mix@0.5", "mix@0.75", "mix@1.0")
#: Input-noise levels of the robustness curves (multiples of each feature's train std).
NOISE_LEVELS = (0.5, 1.0, 2.0)
#: Trifeatures at the CPU size (the paper's: ``size=224``), and the targets of its R / U / S
#: table (``colour:x<m>`` are there for diagnostics, not in the published table).
TRIFEATURES: dict[str, Any] = {"size": 32, "n": 10_000}
TRIFEATURES_TARGETS = ("shared", "unique:x1", "unique:x2", "synergy")
#: Epochs of each Trifeatures training in ``frontier``: the suite's 60-minute budget on 2 CPU
#: cores for one seed (the paper trains 100 epochs at 224 px).
TRIFEATURES_EPOCHS = 10
#: The methods of the published Trifeatures table (clip is Cross), the ``frontier`` default.
FRONTIER_METHODS = ("clip", "cross-self", "factorcl-ssl", "factorcl-sup", "supervised")
#: The other methods that run on two image modalities, for ``--methods`` (cca and dcca, which
#: correlate pixels, are left out): out of the default to keep the suite in its budget.
FRONTIER_EXTRA_METHODS = ("comm", "infmasking", "supcon", "mfm", "mird", "mucmm", "misa")
#: av-digits' targets in ``paper`` and ``frontier``: the digit (shared by both modalities), the
#: speaker (audio only), the image's ink (image only) and their XOR-style synergy.
AV_DIGITS_TARGETS = ("digit", "speaker", "ink", "synergy")


def av_digits_entries(**settings: Any) -> tuple[BenchData, ...]:
    """One av-digits entry per target of :data:`AV_DIGITS_TARGETS`, each factor block probed
    (is the speaker in the shared factors or in the audio's own?): label-free methods train
    once, methods that use labels per target; each entry probes its own target."""
    return tuple(
        BenchData("av-digits", target=t, eval_targets=(t,), **settings) for t in AV_DIGITS_TARGETS
    )


SUITES: dict[str, Suite] = {
    "quick": Suite(
        "quick",
        (
            BenchData(
                "synthetic",
                {"n": 4000},
                target="mix@0.5",
                eval_targets=("shared", "unique:x1", "unique:x2", *MIX_TARGETS),
                missing=("x1", "x2"),
                train={"max_epochs": 15},
                noise=NOISE_LEVELS,
                latents=True,
            ),
            BenchData(
                "uci-mfeat",
                {"views": ["fou", "pix"]},
                target="digit",
                missing=("fou", "pix"),
                train={"max_epochs": 30},
                noise=NOISE_LEVELS,
            ),
        ),
        seeds=1,
        description="every method on synthetic and uci-mfeat (fou + pix), short training",
    ),
    # The seed papers' case on data that ships (FactorCL Figure 1 and Table 1, MFM's and
    # MIRD's missing-modality studies): a model per unique share r on synthetic, each probed
    # against the ground-truth latents, every modality dropped in turn, input noise; and
    # uci-mfeat. Hours on 2 cores; resumable (finished runs are skipped).
    "paper": Suite(
        "paper",
        (
            *(
                BenchData(
                    "synthetic",
                    {"n": 6000},
                    target=t,
                    eval_targets=("shared", "unique:x1", "unique:x2", "synergy", t),
                    missing=("x1", "x2"),
                    noise=NOISE_LEVELS,
                    latents=True,
                )
                for t in MIX_TARGETS
            ),
            BenchData(
                "uci-mfeat",
                {"views": ["fou", "pix"]},
                target="digit",
                missing=("fou", "pix"),
                noise=NOISE_LEVELS,
            ),
            *av_digits_entries(missing=("audio", "image"), noise=NOISE_LEVELS),
        ),
        seeds=5,
        description="Figure-1 sweep, Table-1 latent probing, missing modalities and noise on "
        "synthetic, uci-mfeat and av-digits, seeds 0-4 (hours; resumable)",
    ),
    # FactorCL's central claim (Liang et al. 2023, Fig. 1): as the share r of task
    # information that is unique to one modality grows, contrastive learning of what the
    # modalities share loses accuracy and FactorCL does not. One entry per r: methods that
    # use labels train on mix@r; label-free ones are trained once and probed on every r.
    "mix": Suite(
        "mix",
        tuple(
            BenchData(
                "synthetic", {"n": 4000}, target=t, eval_targets=(t,), train={"max_epochs": 15}
            )
            for t in MIX_TARGETS
        ),
        seeds=3,
        methods=("clip", "cross-self", "supcon", "factorcl-ssl", "factorcl-sup"),
        description="accuracy on synthetic mix@r for r = 0 ... 1 (unique share), with a plot",
    ),
    # Bimodal Trifeatures (CoMM, Dufumier et al., ICLR 2025): redundancy (the shared shape),
    # uniqueness (each image's texture) and synergy (colour of x1 with texture of x2), each a
    # linear probe's balanced accuracy on frozen factors of unbiased pairs (all factors, as
    # the paper; probing each block too was most of the suite's time). Label-free methods
    # pre-train once on unbiased pairs (the model of the first three entries) and once on
    # biased pairs (synergy's); methods that use labels train one model per target. Each
    # entry probes its own target only (probing every target from every entry repeated the
    # label-free methods' probes: most of the suite's time).
    "frontier": Suite(
        "frontier",
        (
            *(
                BenchData(
                    "trifeatures",
                    TRIFEATURES,
                    target=t,
                    eval_targets=(t,),
                    train={"max_epochs": TRIFEATURES_EPOCHS},
                    factors=("all",),
                )
                for t in ("shared", "unique:x1", "unique:x2")
            ),
            BenchData(
                "trifeatures",
                TRIFEATURES,
                target="synergy",
                eval_targets=("synergy",),
                train={"max_epochs": TRIFEATURES_EPOCHS},
                pretrain={"biased": True},
                factors=("all",),
            ),
            *av_digits_entries(),
        ),
        seeds=1,
        methods=FRONTIER_METHODS,
        description="bimodal Trifeatures at 32 px: redundancy, uniqueness and synergy (R / U / "
        "S table beside the published rows); av-digits: digit, speaker, ink, synergy",
    ),
    # Sentiment / humour / sarcasm files (MultiBench or MMSA pickles, arrays files) given with
    # --data: every method on the data set's default target (MOSI/MOSEI: `sentiment`,
    # scored with the sentiment metrics), each modality dropped at test time.
    "affect": Suite(
        "affect",
        (),
        seeds=3,
        description="files given with --data multibench:PATH | mmsa:PATH | arrays:PATH",
        file_entry=BenchData("", missing=None),
    ),
}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise unknown_name("bench suite", name, list(SUITES))
    return SUITES[name]
