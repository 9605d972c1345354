"""The child processes a single run forks as it starts, before its heavy
imports: one draws the QC plot, one measures frame pairs and stacks."""

from __future__ import annotations

from dataclasses import dataclass

from soxs_lib.pipeline.plotter import PlotProcess
from soxs_lib.pipeline.stacker import StackProcess


@dataclass
class RunChildren:
    """A run's forked helpers: the plotter (drawing in-process where it
    could not fork) and the stacker (None: the run stacks in-process)."""

    plotter: PlotProcess
    stacker: StackProcess | None = None

    @classmethod
    def fork(cls) -> RunChildren:
        """Both children, forked now (``soxs mdark``)."""
        plotter = PlotProcess()
        try:
            return cls(plotter, StackProcess())
        except BaseException:
            plotter.cancel()
            raise

    @property
    def forks(self) -> bool:
        """Whether this process forks (the frame statistics may then go to a
        child too)."""
        return self.plotter.pid is not None

    def stack_elsewhere(self):
        """The stacker, if its child runs; else None."""
        return self.stacker if self.stacker is not None and self.stacker.usable else None

    def cancel(self) -> None:
        """End both children, if they still run."""
        self.plotter.cancel()
        if self.stacker is not None:
            self.stacker.cancel()
