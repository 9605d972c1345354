"""``soxs mdark``: inputs and settings in, a published product set out."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
import shlex
import shutil
import sys
import time

import soxs_lib
from soxs_lib import __version__
from soxs_lib.config import params, settings as settings_mod
from soxs_lib.runtime import signals
from soxs_lib.io.frames import collect_inputs, load_frameset, sof_path
from soxs_lib.core.mdark import MasterDark, make_master_dark
from soxs_lib.core.qcvalues import METRIC_FAIL, METRIC_PASS
from soxs_lib.pipeline.children import RunChildren
from soxs_lib.pipeline.plotter import PlotProcess, plot_data
from soxs_lib.io.naming import plots_dir, product_stem, products_dir, set_files
from soxs_lib.io.fitswrite import data_md5, write_hdus
from soxs_lib.io.product import build_hdus, extension_data
from soxs_lib.io.publish import ProductSet, ensure_dir, sweep_workspace
from soxs_lib.pipeline.report import qc_table, report
from soxs_lib.runtime.child import InThread

log = logging.getLogger("soxs")


def _program() -> str:
    """``soxs`` if that name finds this very program, else its full path (as
    from a virtual environment that is not activated)."""
    exe = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if exe is None or exe.name != "soxs" or not exe.exists():
        return "soxs"
    found = shutil.which("soxs")
    if found and Path(found).resolve() == exe.resolve():
        return "soxs"
    return shlex.quote(str(exe.resolve()))


def rerun_command(argv: list[str]) -> str:
    """The shell line that reruns this reduction from any folder (with -x)."""
    args = list(argv)
    if "-x" not in args and "--overwrite" not in args:
        args.insert(1, "-x")
    return f"cd {shlex.quote(os.getcwd())} && {_program()} {shlex.join(args)}"


class Result:
    """What a run made: the MasterDark, its products, plots and report text."""

    def __init__(self, md: MasterDark, products: dict, plots: dict, text: str):
        self.md, self.products, self.plots, self.text = md, products, plots, text


def _log_inputs(fs, settings, values, overrides: dict) -> None:
    log.info("soxs_mdark %s: %d %s raw darks, EXPTIME %g s", __version__, len(fs.raws),
             fs.arm, fs.exptime)
    for img in fs.raws:
        log.info("  raw  %s", img.path)
    if fs.bias is not None:
        log.info("  bias %s", fs.bias)
    if settings.path is not None:
        log.info("  settings %s", Path(settings.path).resolve())
    given = {params.lookup(k).name for k in overrides}
    arm_settings = settings.values_for(fs.arm)
    for p in params.PARAMETERS:
        origin = ("command line" if p.name in given else "settings file"
                  if p.name in arm_settings else "default")
        log.info("  parameter %s = %s (%s)", p.name, getattr(values, p.name), origin)
    for note in settings.notes(fs.arm):
        log.warning("%s", note)


def _log_master(md: MasterDark) -> None:
    for f in md.frames:
        log.info("  frame %s: bias %.2f ADU, level %.3f e-, sigma %.3f e-, "
                 "rogue %.2e", f.name, f.bias_adu, f.level, f.sigma, f.rogue_frac)
    for line in qc_table(md):
        log.info("  %s", line)


def _make(fs, values, qc_ranges: dict, children: RunChildren):
    """(The master dark, its ``extension_data``, and the ``data_md5`` of
    it under way: (arrays, call), for ``write_hdus``.)"""
    stacker = children.stack_elsewhere()
    if stacker is None:
        log.info("stacked in this process")
    send = children.plotter.send_master
    if stacker is not None and children.forks:
        # the plotting child maps the master where the stacking child wrote it
        def send(flux, region):
            children.plotter.send_master(stacker.shared(flux), region)
    data, ahead = {}, []

    def finished(res, med, rms):
        # while QC is computed, the data units are hashed and the histogram drawn
        data.update(extension_data(res))
        arrays = list(data.values())
        ahead.append((arrays, InThread(data_md5, arrays)))
        children.plotter.send_level(med, rms, values.hot_pixel_sigma)
    md = make_master_dark(fs, values, qc_ranges, send, stacker=stacker, finished=finished)
    return md, data, ahead[0] if ahead else None


def _log_end(timeline: dict, elapsed: float, passed: bool) -> None:
    # one line of phase times, for the benchmark's breakdown
    log.info("timeline: %s", "; ".join(f"{k} {v:.3f} s" for k, v in timeline.items()))
    log.info("done in %.2f s; QC %s", elapsed, METRIC_PASS if passed else METRIC_FAIL)
    log.info("rerun with:")


def _publisher(root: Path, overwrite: bool, stem: str):
    """The run's ProductSet and its files, once what a killed run left is
    swept and no product would be clobbered."""
    ensure_dir(products_dir(root))
    ensure_dir(plots_dir(root))
    sweep_workspace(root)             # what a run killed outright left
    publisher = ProductSet(overwrite, products_dir(root))
    files = set_files(root, stem)
    publisher.refuse_existing([files.product, files.plot, files.log])
    return publisher, files


def run_mdark(inputs: list[str], outdir, settings_path=None, overrides: dict | None = None,
              overwrite: bool = False, argv: list[str] | None = None,
              children: RunChildren | None = None, name: str | None = None) -> Result:
    """``soxs mdark``: reduce one set into the workspace ``outdir``.

    Parameters
    ----------
    inputs : list of str
        A SOF, a folder of FITS files, or FITS files.
    outdir : str or Path
        The workspace: products go to ``products/soxs_mdark``, the QC plot
        to ``qc/soxs_mdark``.
    settings_path : str or Path, optional
        A settings file (own or soxspipe's).
    overrides : dict, optional
        Parameter values from the command line; they win over the file.
    overwrite : bool
        Replace existing products.
    argv : list of str, optional
        The command line, for the log's rerun line.
    children : RunChildren, optional
        Forked earlier by the caller (the run ends them); by default a
        plotter is forked here and the run stacks in-process.  The frame
        statistics fork as the plotter did: a caller that may not fork (a
        thread of a Dask worker) passes ``RunChildren(PlotProcess(False))``.
    name : str, optional
        The products' name without extension (``reduce all``: the SOF's);
        by default ``naming.product_stem``.

    Returns
    -------
    Result

    Raises
    ------
    SoxsError
        Bad input (InputError), settings (SettingsError) or output
        (OutputError); nothing is left behind.
    """
    t0 = time.perf_counter()
    timeline = {"import": t0 - soxs_lib.STARTED}
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    publisher = fs = None
    children = children or RunChildren(PlotProcess())   # the plot's child starts now
    plotter = children.plotter
    try:
        settings = (settings_mod.load(settings_path) if settings_path
                    else settings_mod.Settings())
        overrides = overrides or {}
        params.resolve(settings.values, overrides, source="command line")  # fail early
        fs = load_frameset(collect_inputs(inputs))
        timeline["read"] = time.perf_counter() - t0
        values = params.resolve(settings.values_for(fs.arm), overrides, source="command line")
        _log_inputs(fs, settings, values, overrides)

        # named from the set as given: a frame dropped later never renames it
        publisher, files = _publisher(Path(outdir), overwrite,
                                      name or product_stem(fs.first.header, sof_path(inputs)))
        fits_path, plot_path, log_path = files.product, files.plot, files.log
        md, data, ahead = _make(fs, values, settings.qc_ranges(fs.arm), children)
        signals.check()               # one Python dropped: stop before writing
        _log_master(md)
        timeline.update(md.timings)
        t1 = time.perf_counter()

        title = f"{fits_path.stem}  ({len(md.frameset.raws)} x {md.arm} dark, {md.exptime:g} s)"
        plotter.submit(plot_data(md, title), publisher.stage(plot_path))
        hdus = build_hdus(md, fits_path.name, data)
        publisher.write(fits_path, lambda tmp: write_hdus(hdus, tmp, ahead))
        t2 = time.perf_counter()
        publisher.complete(plot_path, plotter.wait)
        elapsed = time.perf_counter() - t0
        timeline.update(write=t2 - t1, plot=time.perf_counter() - t2)
        _log_end(timeline, elapsed, md.qc_passed)
        text = buffer.getvalue() + rerun_command(argv or ["mdark", *inputs]) + "\n"
        publisher.write(log_path, lambda tmp: Path(tmp).write_text(text))
        publisher.commit()
        products = {md.product_tag: fits_path, "LOG": log_path}
        plots = {"QC": plot_path}
        return Result(md, products, plots,
                      report(md, products, plots, elapsed, settings.notes(fs.arm) + md.notes))
    finally:
        children.cancel()             # a no-op once the plot is written
        if publisher is not None:
            publisher.abort()
        if fs is not None:
            fs.close()
        log.removeHandler(handler)
