"""Degradation test of attribution methods: `python evaluate.py --checkpoint DIR --dataset imdb --methods iba,ig,lime,random`."""
from lightning_iba.evaluation.cli import main

if __name__ == "__main__":
    main()
