"""Weights & Biases logging that works with or without an account."""
from __future__ import annotations

import netrc
import os
from pathlib import Path

from pytorch_lightning.loggers import CSVLogger, WandbLogger


def wandb_configured() -> bool:
    """True when an API key is available (env var or `wandb login`'s netrc entry) and W&B is not forced offline."""
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        return False
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc(os.environ.get("NETRC", Path.home() / ".netrc")).authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


class AutoWandbLogger(WandbLogger):
    """WandbLogger that runs offline when no API key is configured (sync later with `wandb sync DIR`)."""

    def __init__(self, offline: bool | None = None, **kwargs):
        if offline is None:
            offline = not wandb_configured()
        if kwargs.get("save_dir"):
            Path(kwargs["save_dir"]).mkdir(parents=True, exist_ok=True)
        super().__init__(offline=offline, **kwargs)


class RunCSVLogger(CSVLogger):
    """CSVLogger whose folder a config may leave null: the fine-tuning command fills in the run's root."""

    def __init__(self, save_dir: str | None = None, name: str = "csv", **kwargs):
        super().__init__(save_dir=save_dir or ".", name=name, **kwargs)
