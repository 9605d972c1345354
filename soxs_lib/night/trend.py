"""``soxs qc trend``: the observatory's health-check view.  From the QC
database, one PNG per arm in ``<workspace>/qc/trend/``: a panel per QC
metric, its acceptable range shaded, observation date along x, one series
per EXPTIME and readout, failed points marked."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from soxs_lib.config import keywords as kw
from soxs_lib.config import qc as qcdefs
from soxs_lib.core.qcvalues import METRIC_FAIL
from soxs_lib.io.publish import ProductSet, ensure_dir
from soxs_lib.night.db import Database

TREND_FOLDER = "trend"


def _date(text: str):
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text[:26], fmt)
        except (TypeError, ValueError):
            continue
    return None


def write_trends(ws: Path) -> list[Path]:
    """Write the trend plot of each arm that has QC in the database.

    Returns
    -------
    list of Path
        The PNG files written (whole or not at all).

    Raises
    ------
    OutputError
        The plots cannot be written.
    """
    db = Database(ws)
    try:
        rows = db.qc_rows()
    finally:
        db.close()
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    folder = ensure_dir(Path(ws) / kw.WORKSPACE_QC / TREND_FOLDER)
    written = []
    for arm in kw.ARMS:
        mine = [r for r in rows if r["arm"] == arm and r["qc_value"] is not None
                and _date(r["obs_date_utc"] or "") is not None]
        names = [q.name for q in qcdefs.QC_DEFS if any(r["qc_name"] == q.name for r in mine)]
        if not names:
            continue
        ncol = 3
        nrow = -(-len(names) // ncol)
        fig = Figure(figsize=(5 * ncol, 2.8 * nrow), dpi=80, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
        for ax, name in zip(axes, names, strict=False):
            points = [r for r in mine if r["qc_name"] == name]
            ranges = [(r["qc_min"], r["qc_max"]) for r in points if r["qc_min"] is not None]
            if ranges:
                lo, hi = ranges[-1]
                ax.axhspan(lo, hi, color="C2", alpha=0.12, lw=0, label="acceptable")
            series = sorted({(r["exptime"], r["readout"]) for r in points},
                            key=lambda s: (s[0] or 0, s[1] or ""))
            for k, (exptime, readout) in enumerate(series):
                pts = sorted((_date(r["obs_date_utc"]), r["qc_value"], r["qc_status"])
                             for r in points if (r["exptime"], r["readout"]) == (exptime, readout))
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=4, lw=1,
                        color=f"C{k % 10}", label=f"{exptime:g} s {readout}")
                bad = [p for p in pts if p[2] == METRIC_FAIL]
                if bad:
                    ax.plot([p[0] for p in bad], [p[1] for p in bad], "x", ms=9, mew=2,
                            color="red", label=METRIC_FAIL if k == 0 else None)
            unit = qcdefs.BY_NAME[name].unit
            ax.set_title(f"{name}" + (f" [{unit}]" if unit else ""), fontsize=10)
            ax.tick_params(axis="x", labelrotation=30, labelsize=7)
            ax.legend(fontsize=6, loc="best")
        for ax in axes[len(names):]:
            ax.set_visible(False)
        fig.suptitle(f"soxs_mdark QC trend, {arm}")
        final = folder / f"{arm}_MDARK_QC_TREND.png"
        files = ProductSet(True, folder)
        try:
            files.write(final, lambda tmp, fig=fig: fig.savefig(tmp, format="png"))
            files.commit()
        finally:
            files.abort()
        written.append(final)
    return written
