"""Metrics for model quality (detection: mAP)."""
