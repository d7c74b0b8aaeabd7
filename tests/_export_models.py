"""Tiny PyTorch models in a .py file, written by the loading and export tests to tmp_path.

Each one exercises a reference form or a failure the loader and exporter must report.
"""

from __future__ import annotations

from pathlib import Path

MODEL_PY = """
import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 3, in_chans: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


def build(num_classes: int = 3):
    torch.manual_seed(1)
    return TinyNet(num_classes=num_classes)


class Flat(nn.Module):
    # Needs exactly 3x16x16 inputs: another --imgsz breaks its Linear.
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 16 * 16, 2)

    def forward(self, x):
        return self.fc(x.flatten(1))


class BatchOne(nn.Module):
    # view(1, -1) ties the graph to batch 1.
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, 2)

    def forward(self, x):
        return self.fc(x.view(1, -1))


class PairOnly(nn.Module):
    # Runs at the exporter's example batch (2) but fixes it: torch silently specializes.
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, 2)

    def forward(self, x):
        return self.fc(x.reshape(2, -1))


class Counter(nn.Module):
    # Python state changes the output on every call: the export freezes one value.
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.fc(x.mean((2, 3))) * self.calls


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        raise RuntimeError("boom")


def not_a_model():
    return 42


CONFIG = {"depth": 2}
"""


def write_models(folder: Path) -> Path:
    """Write the models to ``folder/tiny_models.py`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny_models.py"
    path.write_text(MODEL_PY, encoding="utf-8")
    return path
