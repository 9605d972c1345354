"""Progress of long work, on a terminal only (tqdm, on standard error): the
sets of ``reduce all`` as they finish, the files ``prep`` reads, the passes
of ``watch``.  Nothing is drawn when standard error is not a terminal or the
output is JSON, and the logs never see it: the bars go before the final
table is printed, which stays as it was."""

from __future__ import annotations

from contextlib import contextmanager
import sys
import time

from tqdm import tqdm

from soxs_lib.night.outcome import ERROR, QC_FAIL


def on_terminal(json: bool = False) -> bool:
    """Whether progress is shown: standard error is a terminal and the output
    is not JSON."""
    return not json and sys.stderr.isatty()


def _bar(**options) -> tqdm:
    return tqdm(file=sys.stderr, leave=False, dynamic_ncols=True, **options)


class Sets:
    """``reduce all``'s progress: sets done of the total, failures and QC
    failures so far, elapsed time and time left (``reduce_all(progress=)``)."""

    def __init__(self):
        self.bar = None
        self.failed = self.qc_failed = 0

    def __call__(self, total: int, outcome) -> None:
        """The number of sets to reduce (``outcome`` None), then a set done."""
        if self.bar is None and total:
            self.bar = _bar(total=total, desc=self._counts(), unit="set",
                            bar_format="reduce all: {n_fmt}/{total_fmt} sets, {desc} {bar} "
                                       "[{elapsed} elapsed, {remaining} left]")
        if self.bar is None or outcome is None:
            return
        self.failed += outcome.status == ERROR
        self.qc_failed += outcome.status == QC_FAIL
        self.bar.set_description_str(self._counts(), refresh=False)
        self.bar.update(1)

    def _counts(self) -> str:
        return f"{self.failed} failed, {self.qc_failed} QC failed"

    def close(self) -> None:
        """Take the bar away."""
        if self.bar is not None:
            self.bar.close()


class Files:
    """``prep``'s progress over the workspace's files (``prep(progress=)``)."""

    def __init__(self):
        self.bar = None

    def __call__(self, total: int | None) -> None:
        """The number of files, then (None) one more taken up."""
        if total is not None:
            self.bar = _bar(total=total, desc="prep", unit="file")
        elif self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        """Take the bar away."""
        if self.bar is not None:
            self.bar.close()


class Passes:
    """``watch``'s passes: how many, when the last ended, when the next
    starts; what a pass prints is written above the line."""

    def __init__(self, interval: float):
        self.interval = interval
        self.bar = _bar(desc="watch", unit="pass", bar_format="{desc}: {postfix}")
        self.bar.set_postfix_str("first pass ...")

    def __call__(self, passes: int) -> None:
        """A pass ended, the ``passes``-th."""
        stamp = time.strftime("%H:%M:%S")
        self.bar.set_postfix_str(f"{passes} pass(es), the last ended {stamp}, the next in "
                                 f"{self.interval:g} s")

    def around(self, show):
        """``show`` writing above the line, which is drawn again after."""
        def shown_above(*args):
            with self.bar.external_write_mode():
                show(*args)
        return shown_above

    def close(self) -> None:
        """Take the line away."""
        self.bar.close()


@contextmanager
def shown(progress):
    """``progress``, taken away whatever ends the work (None: nothing)."""
    try:
        yield progress
    finally:
        if progress is not None:
            progress.close()
