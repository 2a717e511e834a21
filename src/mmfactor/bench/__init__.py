"""Benchmark suites and their runner."""

from mmfactor.bench.runner import read_records, results_markdown, run_bench
from mmfactor.bench.suites import SUITES, get_suite

__all__ = ["SUITES", "get_suite", "read_records", "results_markdown", "run_bench"]
