"""Benchmark suites and their runner."""

from mmfactor.bench.plots import mix_curves, plot_mix
from mmfactor.bench.runner import read_records, results_markdown, run_bench, write_report
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
