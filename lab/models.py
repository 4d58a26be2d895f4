"""What each instrument model can do, so a bench file cannot ask for more.

The table is the drivers' (:mod:`drivers.capabilities`: model names, datasheet limits and
their sources); lab reads it from there. Every driver model has an entry (tested).
"""
from __future__ import annotations

from drivers.capabilities import MODELS, ModelCapability, capability

__all__ = ["MODELS", "ModelCapability", "capability"]
