"""hopbench's application layer: the command line, whole jobs, the demo, experiment tables,
sweeps, progress display, figures and reports.

This is the only part of ``lab`` that imports ``protocols``: the core (config, bench,
safety, crossbar access, runner, archive) executes plans without knowing which protocol
made them.
"""
