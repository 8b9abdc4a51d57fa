"""lightning-iba: information bottlenecks for attribution in fine-tuned transformers."""
from __future__ import annotations

from lightning_iba.errors import LightningIBAError

__version__ = "0.1.0"
__all__ = ["BottleneckOptimizer", "LightningIBAError", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import lightning_iba` stays cheap for the data and CLI modules.
    if name == "BottleneckOptimizer":
        from lightning_iba.attribution.optimizer import BottleneckOptimizer

        return BottleneckOptimizer
    raise AttributeError(name)
