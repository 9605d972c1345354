"""What became of a set: the one vocabulary of its status (what ``prep``
says of it, what its reduction ended in), and the typed record of a
reduction, from the worker that reduced it to the database, the summary and
the JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from soxs_lib.config import keywords as kw
from soxs_lib.config.errors import EXIT_QC_FAILED, SoxsError
from soxs_lib.config.params import RECIPE
from soxs_lib.core.qcvalues import METRIC_FAIL
from soxs_lib.io import product as product_io

# a set as prep sees it
READY, WAITING, TOO_FEW = "ready", "waiting for frames", "too few frames"
REDUCED, FAILED = "reduced", "failed"
# what its last reduction ended in
PASS, QC_FAIL, ERROR = "PASS", "QC FAIL", "ERROR"
EXIT_FAILED = SoxsError.exit_status     # reduce all's exit status when some set failed


def prep_status(outcome: str) -> str:
    """What ``prep`` says of a ready set that was reduced with ``outcome``."""
    return FAILED if outcome == ERROR else REDUCED


def utc_now() -> str:
    """The present time, ISO 8601 UTC to the second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class QCValue:
    """One QC metric of a product, with its acceptable range (None: none)."""

    name: str
    value: float
    unit: str = ""
    comment: str = ""
    min: float | None = None
    max: float | None = None
    status: str = "-"            # PASS, FAIL or - (no range)


@dataclass
class SetOutcome:
    """One set's outcome: reduced now, failed, or up to date from before."""

    sof: str                     # the SOF's file name: the set's key
    sof_path: str
    status: str                  # PASS, QC_FAIL or ERROR
    reduction_date_utc: str = field(default_factory=utc_now)
    product: str | None = None
    error: str | None = None
    exit_status: int | None = None
    seconds: float | None = None
    worker: str | None = None    # host:pid
    obs_date_utc: str | None = None
    inputs_mtime: float | None = None
    up_to_date: bool = False
    qc: list[QCValue] = field(default_factory=list)

    @classmethod
    def from_product(cls, sof, product: Path) -> SetOutcome:
        """The outcome a product states: its QC (values, ranges, statuses),
        the date of the first exposure and when it was written.  A
        reduction's outcome is recorded from here, and so is a product's
        when the database is rebuilt, so both hold the same.

        Parameters
        ----------
        sof : str or Path
            The set's SOF.
        product : Path
            The set's product.

        Returns
        -------
        SetOutcome

        Raises
        ------
        OSError, ValueError
            The product cannot be read, or soxs_mdark did not make it.
        """
        from astropy.io import fits
        h = fits.getheader(product)
        if h.get(product_io.REC_ID) != RECIPE:
            raise ValueError(f"{product}: not a {RECIPE} product ({product_io.REC_ID} = "
                             f"{h.get(product_io.REC_ID)!r})")
        failed = str(h.get(kw.QC_STATUS, "")) == METRIC_FAIL
        when = str(h.get(product_io.DATE, ""))[:19] or datetime.fromtimestamp(
            Path(product).stat().st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        return cls(Path(sof).name, str(sof), QC_FAIL if failed else PASS,
                   reduction_date_utc=when, product=str(product),
                   exit_status=EXIT_QC_FAILED if failed else 0,
                   obs_date_utc=str(h.get(kw.DATE_OBS, "")),
                   qc=[QCValue(*row) for row in product_io.qc_from_header(h)])

    @classmethod
    def failed(cls, sof, error: BaseException | str, exit_status: int = EXIT_FAILED):
        """A set that could not be reduced, and why."""
        return cls(Path(sof).name, str(sof), ERROR, error=str(error), exit_status=exit_status)

    def as_dict(self) -> dict:
        """Plain data, for JSON."""
        return asdict(self)


@dataclass
class Reduced:
    """The outcome of ``reduce all``: every set with a SOF, this run's and
    earlier ones'."""

    results: list[SetOutcome]
    repair: object = None         # rebuild.Repair: the database made anew first

    @property
    def exit_status(self) -> int:
        """0 all reduced and passed, 5 some QC failed, 1 some set failed."""
        statuses = {r.status for r in self.results}
        return EXIT_FAILED if ERROR in statuses else EXIT_QC_FAILED if QC_FAIL in statuses else 0

    @property
    def fresh(self) -> list[SetOutcome]:
        """The sets reduced (or failed) in this run."""
        return [r for r in self.results if not r.up_to_date]
