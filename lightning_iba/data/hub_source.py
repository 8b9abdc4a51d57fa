"""Source `hub`: a task's splits from its Hugging Face hub dataset, and the advice when the hub is unreachable."""
from __future__ import annotations

import datasets

from lightning_iba.data.local_files import LOCAL_FILES
from lightning_iba.data.schema import Rows
from lightning_iba.data.source_errors import DataSourceError
from lightning_iba.data.tasks import Task
from lightning_iba.hub import hub_reachable, why_unreachable


def offline_advice(task: Task) -> str:
    """Why `task` cannot come from the hub, and which other sources have it."""
    return (
        f"cannot load dataset {task.name!r} from the hub ({why_unreachable()}); "
        f"use --data.source local --data.data_dir DIR with the original files ({', '.join(LOCAL_FILES[task.name])})"
        + (" or --data.source bundled" if task.bundled_source else "")
    )


def load_hub(task: Task) -> dict[str, Rows]:
    """Every split of `task`'s hub dataset (`Task.hub_splits`), by canonical name."""
    if not hub_reachable():
        raise DataSourceError(offline_advice(task))
    out = {}
    for canonical, hub_split in task.hub_splits.items():
        try:
            ds = datasets.load_dataset(task.hub_id, task.hub_config, split=hub_split)
        except Exception as err:  # the hub's own errors are long; keep the cause in one line
            raise DataSourceError(f"loading {task.hub_id} ({hub_split}) from the hub failed: {err}") from err
        n = len(ds)
        ids = [str(i) for i in ds["idx"]] if "idx" in ds.column_names else [f"{canonical}-{i}" for i in range(n)]
        pairs = list(ds[task.hub_fields[1]]) if task.is_pair else None
        out[canonical] = (ids, list(ds[task.hub_fields[0]]), pairs, list(ds["label"]))
    return out
