"""Explain one prediction: `python attribute.py --layer 3 --text "a wonderful film"` (see --help)."""
from lightning_iba.cli.attribute import main

if __name__ == "__main__":
    main()
