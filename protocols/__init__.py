"""Protocols: plans of operations for the self-learning Hopfield experiment.

Importing the package imports every protocol module so the registry
(:func:`protocols.base.registry`) knows them all.
"""
from . import characterize, ivsweep, read_conductances, recall, retention, train  # noqa: F401  (registers them)
