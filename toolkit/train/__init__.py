"""Training: fine-tune or train a zoo architecture on an ImageFolder (``edgetk train``)."""

from __future__ import annotations

from toolkit.train.augment import AugmentConfig, augment
from toolkit.train.classify import TrainReport, train_classifier

__all__ = ["AugmentConfig", "TrainReport", "augment", "train_classifier"]
