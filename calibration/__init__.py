"""Sensor response models, seismometer and detector calibration, bench sessions and reports."""
