"""A real client: PyTorch Lightning trains the digits CNN with decaylab's SGDW and an L2 penalty,
under the ``ddp`` strategy on 2 CPU processes, and checkpoints/resumes the optimizer state.

    python examples/lightning_ddp_digits.py --out runs/lightning --epochs 4
    python examples/lightning_ddp_digits.py --out runs/half --epochs 2 --schedule-epochs 4
    python examples/lightning_ddp_digits.py --out runs/resumed --epochs 4 --resume runs/half/last.ckpt

Lightning's ``ddp`` launcher re-runs this script once per extra process, so it must stay a file
with a ``__main__`` guard. Each rank writes its final weights and optimizer state to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning as L
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from decaylab import SGDW, SimpleCNN, WeightRegularization
from decaylab.sandbox.datasets import DataSpec, load


class DigitsCNN(L.LightningModule):
    def __init__(self, lr: float, weight_decay: float, penalty: float, schedule_epochs: int) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = SimpleCNN((8, 8), in_channels=1, num_classes=10, num_layers=1, num_channels=8, kernel_size=3)
        # the penalty covers the weights only (no biases); DDP averages its gradient with the loss's
        self.penalty = WeightRegularization(self.model, penalty, p=2, covers="weights")

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self.model(x), y) + self.penalty.penalty()
        self.log("train_loss", loss, sync_dist=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_acc", (self.model(x).argmax(1) == y).float().mean(), sync_dist=True)

    def configure_optimizers(self) -> dict:
        optimizer = SGDW(
            self.model.parameters(),
            lr=self.hparams.lr,
            momentum=0.9,
            weight_decay=self.hparams.weight_decay,
            scale="schedule",  # the decay follows the cosine schedule, as in Loshchilov & Hutter
        )
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.hparams.schedule_epochs)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--schedule-epochs", type=int, default=None, help="cosine period (default: --epochs)")
    parser.add_argument("--resume", type=Path, default=None, help="a checkpoint to resume from")
    parser.add_argument("--devices", type=int, default=2)
    args = parser.parse_args()

    L.seed_everything(0, workers=True)
    data = load(DataSpec("digits"))
    train = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=256)
    module = DigitsCNN(lr=0.05, weight_decay=1e-3, penalty=1e-4, schedule_epochs=args.schedule_epochs or args.epochs)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=args.devices,
        strategy="ddp",
        max_epochs=args.epochs,
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train, val, ckpt_path=args.resume)
    args.out.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(args.out / "last.ckpt")  # a collective: every rank calls it, rank 0 writes
    optimizer = trainer.optimizers[0]
    torch.save(
        {
            "weights": module.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "val_acc": float(trainer.callback_metrics["val_acc"]),
            "world_size": trainer.world_size,
        },
        args.out / f"final_rank{trainer.global_rank}.pt",
    )


if __name__ == "__main__":
    main()
