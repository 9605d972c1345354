"""Many sets: a night's workspace in, every dark set reduced.

``classify`` (headers -> what each file is), ``group`` (files -> sets and
SOFs), ``db`` (the SQLite database, written by one process only), ``batch``
(``prep`` and ``reduce all``: local process pool or Dask, through
``workers``).  The night layer calls ``run.run_mdark`` as any user would.
"""
