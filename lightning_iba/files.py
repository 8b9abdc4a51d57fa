"""Output folders: checked before any work starts, so an unwritable destination fails at once, in one line."""
from __future__ import annotations

import os
from pathlib import Path

from lightning_iba.errors import LightningIBAError


def check_writable(folder: str | Path, what: str, hint: str = "choose another folder", parent: bool = False) -> Path:
    """`folder` is not a file and can be created or written to (with `parent`, its parent must be
    writable too: a folder written elsewhere and renamed into place). Else one line naming it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise LightningIBAError(f"{what} {folder} exists and is not a folder; {hint}")
    probe = folder.absolute().parent if parent else folder.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise LightningIBAError(f"{what} {folder} cannot be created: {probe} is not a folder; {hint}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise LightningIBAError(f"{what} {folder} cannot be written: {probe} is not writable; {hint}")
    return folder
