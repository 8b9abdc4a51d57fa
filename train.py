"""Fine-tune a classifier: `python train.py --config configs/finetune/imdb.yaml [--config configs/finetune/cpu.yaml] [overrides]`."""
from lightning_iba.cli.train import main

if __name__ == "__main__":
    main()
