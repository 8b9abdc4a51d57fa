"""Degradation test of attribution methods: `python evaluate.py --config configs/evaluate/imdb.yaml [--methods iba,ig]` (see --help)."""
from lightning_iba.cli.evaluate import main

if __name__ == "__main__":
    main()
