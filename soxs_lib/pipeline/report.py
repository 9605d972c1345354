"""The terminal report: products, QC plots and the QC table with pass/fail."""

from __future__ import annotations

from soxs_lib.core.mdark import MasterDark


def text_table(head, rows) -> list[str]:
    """Aligned text lines: the head, a rule of dashes, then the rows."""
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]

    def line(row):
        return "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
    return [line(head), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def qc_table(md: MasterDark) -> list[str]:
    """The QC metrics as aligned text lines (name, value, unit, range, status)."""
    rows = []
    for r in md.qc:
        rng = f"[{r.range[0]:g}, {r.range[1]:g}]" if r.range else "-"
        rows.append((r.qc.name, r.formatted(), r.qc.unit or "-", rng, r.status))
    return text_table(("QC metric", "value", "unit", "acceptable range", "status"), rows)


def report(md: MasterDark, products: dict, plots: dict, seconds: float,
           notes=()) -> str:
    """The terminal report of one run; ``notes`` are warnings (settings keys
    ignored, QC not computed) listed before the QC table."""
    fs = md.frameset
    out = [f"soxs_mdark: {md.arm} master dark from {len(fs.raws)} frames, "
           f"EXPTIME {md.exptime:g} s ({seconds:.2f} s)", "", "Products:"]
    out += [f"  {label:<10} {path}" for label, path in products.items()]
    out += ["", "QC plots:"] + [f"  {label:<10} {path}" for label, path in plots.items()]
    if md.dropped:
        out += ["", f"WARNING: {len(md.dropped)} raw dark(s) left out as unusable:"]
        out += [f"  {path}: {why}" for path, why in md.dropped]
    if notes:
        out += ["", "Notes:"] + [f"  {n}" for n in notes]
    out += [""] + [f"  {line}" for line in qc_table(md)]
    failed = [r.qc.name for r in md.qc if r.passed is False]
    out += ["", f"QC FAILED: {', '.join(failed)}" if failed else "QC: all metrics pass"]
    return "\n".join(out)
