"""The bench's static HTML report, opened in a headless browser (tools/browser.py): every
image loads and the tables are there. Skipped, with the reason, where chromium and
chromedriver are not installed (``make browser`` installs them on Debian)."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "browser.py"


def _load_tool() -> ModuleType:
    """tools/ is not a package: load tools/browser.py by path."""
    name = "_mmfactor_tools_browser"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def browser() -> ModuleType:
    tool = _load_tool()
    reason = tool.browser_available()
    if reason is not None:
        pytest.skip(reason)
    return tool


def _figure(path: Path, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [seed, 2, 1])
    fig.savefig(path)
    plt.close(fig)


def _size(png: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png[16:24])


def _page(path: Path, title: str, body: str) -> Path:
    path.write_text(
        f"<!doctype html>\n<html><head><title>{title}</title></head>\n<body>{body}</body></html>\n"
    )
    return path


# -- the checker itself, on pages built here ---------------------------------------------


def test_browser_check_sees_loaded_and_broken_images(browser, tmp_path):
    _figure(tmp_path / "a.png", 0)
    _figure(tmp_path / "b.png", 1)
    table = "<table><tr><th>method</th><th>acc</th></tr><tr><td>x</td><td>0.9</td></tr></table>"
    good = _page(
        tmp_path / "good.html",
        "good page",
        f"<h1>Results</h1>{table}<img src='a.png' alt='a'><img src='b.png' alt='b'>",
    )
    bad = _page(tmp_path / "bad.html", "bad page", "<img src='a.png'><img src='missing.png'>")

    state = browser.check_page(good)
    assert state["title"] == "good page"
    assert state["tables"] == 1
    assert [i["src"] for i in state["images"]] == ["a.png", "b.png"]
    assert all(i["loaded"] for i in state["images"]), state

    state = browser.check_page(bad)
    assert state["tables"] == 0
    assert [i["loaded"] for i in state["images"]] == [True, False], state

    png = tmp_path / "shot.png"
    with browser.Browser(width=640, height=480) as b:
        b.open(good)
        assert b.run("return arguments[0] + arguments[1]", 2, 3) == 5
        data = b.screenshot(png)
        img = b.screenshot(selector="img[alt=b]")
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and png.read_bytes() == data
    assert _size(data) == (640, 480)  # the viewport
    assert _size(img) == (300, 200)  # the 3 x 2 in figure at 100 dpi


# -- the real report: `report.html` written by the bench ---------------------------------


@pytest.mark.slow
def test_bench_report_opens_in_a_browser(browser, tmp_path):
    from mmfactor.bench import get_suite, run_bench

    records = run_bench(
        get_suite("quick"),
        tmp_path,
        methods=["supervised"],
        datasets=["synthetic"],
        sets=["train.max_epochs=1"],
        log=lambda msg: None,
    )
    assert records
    html = tmp_path / "report.html"
    assert html.exists(), "run_bench did not write report.html (write_html_report)"

    state = browser.check_page(html)
    assert state["tables"] >= 1, state
    broken = [i["src"] for i in state["images"] if not i["loaded"]]
    assert not broken, f"images that do not load in the report: {broken}"
