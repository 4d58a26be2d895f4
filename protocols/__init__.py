"""Protocols: plans of operations for the self-learning Hopfield experiment.

Importing the package imports every protocol module so the registry
(:func:`protocols.base.registry`) knows them all.
"""
from . import read_conductances, recall, train  # noqa: F401  (registers the protocols)
