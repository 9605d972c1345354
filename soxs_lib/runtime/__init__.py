"""Processes: signals turned into one exception, child processes, worker
pools behind one loop over a ``concurrent.futures`` executor.  Imports
``config``, ``core`` and ``io``."""
