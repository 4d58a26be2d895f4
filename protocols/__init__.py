"""Protocols: plans of operations for the self-learning Hopfield experiment.

Importing the package imports every protocol module so the registry
(:func:`protocols.base.registry`) knows them all.
"""
try:  # hopbench's lab checks that no other package shadows ours; a foreign lab cannot
    from lab import check_not_shadowed  # noqa: F401
except ImportError as exc:
    raise ImportError(
        f"the package 'lab' is not hopbench's ({exc}): another package or folder of that name "
        "shadows it; install hopbench in a dedicated virtual environment and run your scripts "
        "outside folders named lab, drivers, protocols or sim_backend"
    ) from exc

from . import characterize, ivsweep, read_conductances, recall, retention, train  # noqa: F401  (registers them)
