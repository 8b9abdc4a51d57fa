"""Source `local` for eraser_movies: an ERASER dataset folder ({train,val,test}.jsonl and docs/) with its rationales."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from lightning_iba.data.schema import Rows
from lightning_iba.data.source_errors import DataSourceError, require_file, utf8_error
from lightning_iba.data.tasks import Task

log = logging.getLogger("lightning_iba.data")


def eraser_dir(root: Path) -> Path:
    """The ERASER movies folder under `root`: root/eraser/movies, root/movies, or root itself (it holds docs/)."""
    for candidate in (root / "eraser" / "movies", root / "movies", root):
        if (candidate / "docs").is_dir():
            return candidate
    raise DataSourceError(
        f"missing folder: {root / 'eraser' / 'movies' / 'docs'} (source local reads eraser/movies/{{train,val,test}}.jsonl and "
        "eraser/movies/docs/; data_dir may also be the eraser or the movies folder itself)"
    )


def load_eraser(task: Task, root: Path) -> dict[str, Rows]:
    """An ERASER dataset folder: {train,val,test}.jsonl (whichever exist) and docs/<docid>, one sentence a line,
    tokens separated by spaces.

    A row's text is the doc's whitespace tokens joined by single spaces (sentences too), so that its i-th
    whitespace word is the doc's token i, the one ERASER's evidence offsets index. `rationale` marks the words
    inside any evidence span, `evidence` lists the spans ([start, end), deduplicated, in order).
    """
    folder = eraser_dir(root)
    present = {canonical: folder / f"{name}.jsonl" for canonical, name in task.hub_splits.items() if (folder / f"{name}.jsonl").is_file()}
    if not present:
        names = ", ".join(f"{name}.jsonl" for name in task.hub_splits.values())
        raise DataSourceError(f"missing file: {folder / 'test.jsonl'} (source local reads {names} in {folder})")
    labels = {name.lower(): i for i, name in enumerate(task.label_names)}
    docs: dict[str, list[str]] = {}
    out: dict[str, Rows] = {}
    for split, f in present.items():
        ids, texts, ys, masks, spans = [], [], [], [], []
        empty = 0
        try:
            lines = f.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise utf8_error(f) from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataSourceError(f"{f}:{number}: malformed JSON ({err.msg}, column {err.colno})") from None
            if not isinstance(row, dict) or "annotation_id" not in row or "classification" not in row:
                raise DataSourceError(f"{f}:{number}: not an ERASER annotation (it needs annotation_id, classification and evidences)")
            label = labels.get(str(row["classification"]).lower())
            if label is None:
                raise DataSourceError(f"{f}:{number}: label {row['classification']!r} is not one of {', '.join(n.upper() for n in task.label_names)}")
            evidences = [e for group in row.get("evidences") or [] for e in group]
            docids = {str(e["docid"]) for e in evidences if e.get("docid") is not None} or set(row.get("docids") or []) or {str(row["annotation_id"])}
            if len(docids) != 1:
                raise DataSourceError(f"{f}:{number}: annotation {row['annotation_id']!r} spans {len(docids)} documents; one per review is supported")
            docid = docids.pop()
            if docid not in docs:
                doc = require_file(folder / "docs" / docid)
                try:
                    docs[docid] = doc.read_text(encoding="utf-8").split()
                except UnicodeDecodeError:
                    raise utf8_error(doc) from None
            words = docs[docid]
            mask = [0] * len(words)
            found = set()
            for e in evidences:
                start, end = int(e["start_token"]), int(e["end_token"])
                if start == end and 0 <= start <= len(words):
                    empty += 1  # the test split has 20 empty spans (text ""): nothing highlighted, no span
                    continue
                if not 0 <= start < end <= len(words):
                    raise DataSourceError(f"{f}:{number}: evidence [{start}, {end}) lies outside the {len(words)} tokens of docs/{docid}")
                if "text" in e and " ".join(words[start:end]) != " ".join(str(e["text"]).split()):
                    raise DataSourceError(
                        f"{f}:{number}: evidence [{start}, {end}) reads {' '.join(words[start:end])[:60]!r} in docs/{docid}, "
                        f"not {str(e['text'])[:60]!r} (offsets into another tokenisation?)"
                    )
                found.add((start, end))
                mask[start:end] = [1] * (end - start)
            ids.append(str(row["annotation_id"]))
            texts.append(" ".join(words))
            ys.append(label)
            masks.append(mask)
            spans.append([list(span) for span in sorted(found)])
        if not ids:
            raise DataSourceError(f"{f}: empty file (no annotations)")
        if empty:
            log.info("data: %s: skipped %d empty evidence spans (start_token = end_token)", f, empty)
        out[split] = (ids, texts, None, ys, {"rationale": masks, "evidence": spans})  # type: ignore[assignment]
    return out
