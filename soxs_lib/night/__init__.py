"""Many sets: a night's workspace in, every dark set reduced.

``classify`` (headers -> what each file is), ``group`` (files -> sets and
SOFs), ``db`` (the SQLite database, written by one process only, with the
QC monitor's view from ``monitor``), ``batch`` (``prep`` and ``reduce all``'s
plan), ``runner`` (the sets on the local pool or a Dask cluster, through
``runtime.pool``), ``outcome`` (a set's typed outcome), ``watch``, ``trend``.
The night layer calls ``pipeline.run.run_mdark`` as any user would.
"""
