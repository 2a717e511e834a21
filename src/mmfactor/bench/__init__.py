"""Benchmark suites and their runner."""

from mmfactor.bench.markdown import results_markdown, write_report
from mmfactor.bench.plots import mix_curves, plot_mix
from mmfactor.bench.records import read_records
from mmfactor.bench.runner import run_bench
from mmfactor.bench.suites import SUITES, get_suite

__all__ = [
    "SUITES",
    "get_suite",
    "mix_curves",
    "plot_mix",
    "read_records",
    "results_markdown",
    "run_bench",
    "write_report",
]
