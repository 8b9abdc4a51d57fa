"""The explorer page (report.html) of a small evaluate.py run, opened in headless Chromium.

Chromium comes from the distribution (`apt-get install -y chromium`; `.ci/run` installs it when absent)
and is driven over the DevTools protocol (tests/browser.py). Without it the test is skipped, unless
LIGHTNING_IBA_REQUIRE_BROWSER=1 (set by .ci/run), where a missing browser fails it.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from browser import Browser, find_chromium
from lightning_iba.cli.evaluate import main
from test_evaluate import args, write_keyword_aclimdb

METHODS = ["iba", "ig", "random"]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    try:
        import websocket  # noqa: F401  (websocket-client, the dev extra)
    except ImportError:
        missing = "websocket-client is not installed (pip install -e '.[dev]')"
    else:
        missing = None if path else "no chromium on PATH (apt-get install -y chromium; .ci/run installs it)"
    if missing:
        if os.environ.get("LIGHTNING_IBA_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    return path


def mislabel(data: Path) -> list[str]:
    """Swaps the keyword of two of the evaluated test texts (a negative and a positive one), so that the keyword
    model gets them wrong; returns their ids. (It gets the keyword task's own texts all right.)"""
    from lightning_iba.data.sources import load_splits
    from lightning_iba.data.tasks import get_task
    from lightning_iba.evaluation.run import select_indices

    test = load_splits(get_task("imdb"), "local", str(data))["test"]
    chosen = test.select(select_indices(len(test), 12, 0))  # the instances evaluate.py draws (--instances 12, seed 0)
    ids = [next(i for i in chosen["id"] if f"/{folder}/" in i) for folder in ("neg", "pos")]
    for i in ids:
        path = data / "aclImdb" / f"{i}.txt"
        text = path.read_text()
        swapped = text.replace("terrible", "excellent") if "/neg/" in i else text.replace("excellent", "terrible")
        assert swapped != text, i
        path.write_text(swapped)
    return ids


def test_report_page_in_a_real_browser(chromium, keyword_model_dir, tokenizer, tmp_path, capsys):
    data = write_keyword_aclimdb(tmp_path / "data")
    mislabelled = mislabel(data)  # a negative review that says "excellent", a positive one that says "terrible"
    checkpoint = Path(shutil.copytree(keyword_model_dir, tmp_path / "model"))
    out = tmp_path / "eval"
    report = main(args(checkpoint, data, out, "--methods", ",".join(METHODS), "--instances", "12", "--iba.steps", "4",
                       "--ig.n_steps", "4", "--wandb", "false"))
    page = out / "report.html"
    assert report.files["report.html"] == page and f"report.html: {page}" in capsys.readouterr().out
    records = [json.loads(line) for line in (out / "shards" / "rank-0.jsonl").read_text().splitlines()]
    positives = sum(r["label"] == 1 for r in records)
    excellent = tokenizer.convert_tokens_to_ids("excellent")
    holding = sum(excellent in r["input_ids"] for r in records)  # the texts the search for "excellent" must find
    wrong = sum(r["predicted"] != r["label"] for r in records)
    assert len(records) == 12 and 0 < positives < 12 and 0 < holding < 12
    assert {r["id"] for r in records if r["predicted"] != r["label"]} >= set(mislabelled) and wrong >= 2  # the filter has something to do

    with Browser(chromium) as b:
        b.open(page.resolve().as_uri())
        count = lambda: int(b.eval("document.getElementById('shown').textContent"))  # noqa: E731
        rows = lambda: b.eval("document.querySelectorAll('#list article.inst').length")  # noqa: E731
        assert b.eval("document.querySelectorAll('img.curves').length") == 1  # the curves, embedded
        assert "Table 1" in b.eval("document.body.innerText")
        assert rows() == 12 and count() == 12
        heated = "document.querySelectorAll('#list article.inst .line .tk[style*=\"linear-gradient\"]').length"
        assert b.eval(heated) == b.eval("document.querySelectorAll('#list article.inst .tk').length") > 12 * 5  # every token has its cells
        assert b.eval("[...document.querySelector('#list article.inst .rows').children].map(s => s.textContent)") == ["token", *METHODS]
        b.screenshot(tmp_path / "report.png")

        b.type_into("#search", "excellent")  # typed as a user would: the input event filters
        assert count() == holding and rows() == holding
        b.type_into("#search", "no-such-word-anywhere")
        assert count() == 0 and rows() == 0
        b.type_into("#search", "")
        assert count() == 12

        b.eval("document.getElementById('wrong').click()")
        assert count() == wrong and rows() == wrong
        shown_wrong = b.eval("[...document.querySelectorAll('#list article.inst')].map(a => +a.dataset.index)")
        assert sorted(shown_wrong) == sorted(r["index"] for r in records if r["predicted"] != r["label"])
        b.eval("document.getElementById('wrong').click()")
        for key in ("disagreement", "diff", "-diff", "prob", "index"):
            b.eval(f"(() => {{ const s = document.getElementById('sort'); s.value = '{key}'; s.dispatchEvent(new Event('change')); }})()")
            assert rows() == 12, key
        shown = b.eval("[...document.querySelectorAll('#list article.inst')].map(a => +a.dataset.index)")
        assert shown == sorted(r["index"] for r in records)

        first = shown[0]
        b.eval(f"document.querySelector('#list article.inst a[href=\"#i={first}\"]').click()")  # the instance's detail view
        b.poll("!document.getElementById('detail').hidden")
        assert b.eval("[...document.querySelectorAll('#detail .example h3')].map(h => h.textContent)") == METHODS
        command = b.eval("document.querySelector('#detail pre').textContent")
        assert command.startswith("python attribute.py --checkpoint") and f"--index {first} " in command
        b.screenshot(tmp_path / "detail.png", full_page=False)
        b.eval("location.hash = '#instances'")
        b.poll("!document.getElementById('list').hidden")
        assert rows() == 12
        assert b.errors == [], b.errors  # no console errors, no exceptions, no failed loads
    assert (tmp_path / "report.png").stat().st_size > 10_000
