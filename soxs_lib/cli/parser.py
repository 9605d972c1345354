"""The ``soxs`` command line's parser: every sub-command and option, each with
a help line that says what it does, its unit and its default; mdark's
parameters come from their declarations (``params.PARAMETERS``)."""

from __future__ import annotations

import argparse

from soxs_lib import __version__
from soxs_lib.cli.console import EXIT_CLOSED_PIPE, EXIT_INTERRUPTED
from soxs_lib.config import flags, params, qc
from soxs_lib.config.errors import EXIT_QC_FAILED


def _epilog() -> str:
    lines = ["parameters (also in a settings file, section soxs_mdark):"]
    for p in params.PARAMETERS:
        lines.append(f"  --{p.name}={p.default!s:<6} {p.type.__name__} in "
                     f"{p.allowed}: {p.description}")
    lines.append("QUAL bits: " + "; ".join(f"{b} {m}" for b, m in flags.MEANINGS.items()))
    lines.append("QC keywords: " + ", ".join(q.keyword for q in qc.QC_DEFS))
    lines.append(f"exit status: 0 success, 1-4 error, {EXIT_QC_FAILED} products written "
                 f"but a QC metric is out of range, {EXIT_INTERRUPTED} interrupted, "
                 f"{EXIT_CLOSED_PIPE} standard output closed by its reader")
    return "\n".join(lines)


def _flags(default) -> argparse.ArgumentParser:
    """-V and -x, accepted before or after the sub-command."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-V", "--verbose", action="store_true", default=default,
                   help="verbose output, with a traceback on errors (default: off)")
    p.add_argument("-x", "--overwrite", action="store_true", default=default,
                   help="overwrite existing products; reduce all: reduce every set again "
                        "(default: off, an existing product is never replaced)")
    return p


def _workspace(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("workspace", help="the workspace folder: raw frames anywhere below it, "
                                       "products/, qc/, sof/ and soxs.db at its top")


def _settings(sub: argparse.ArgumentParser, what: str) -> None:
    sub.add_argument("-s", "--settings", metavar="YAML",
                     help=f"settings file for {what}: the project's own (soxs settings) or "
                          "soxspipe's; options given as --name=value win (default: none, "
                          "the declared defaults)")


def _jobs(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-j", "--jobs", type=int, default=0, metavar="N",
                     help="worker processes reducing sets at once (default: 0, the number "
                          "of cores; each worker's stacking uses cores / N threads)")


def _mdark(sub, common, handler) -> None:
    md = sub.add_parser("mdark", parents=[common], help="make a master dark",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog=_epilog(),
                        description="Stack at least 3 raw darks of one arm into a "
                                    "master dark (products/soxs_mdark, qc/soxs_mdark).")
    md.add_argument("inputs", nargs="+", metavar="inputFrames",
                    help="a SOF file, a folder of FITS files or a list of FITS files "
                         "(plain or .gz, .bz2, .Z, .fz)")
    md.add_argument("-o", "--outdir", default=".", metavar="FOLDER",
                    help="workspace root: products go to products/soxs_mdark/, QC plots "
                         "to qc/soxs_mdark/ (default: the current folder)")
    _settings(md, "the reduction")
    for p in params.PARAMETERS:
        md.add_argument(f"--{p.name}", f"--{p.soxspipe_key}", dest=f"par_{p.name}",
                        metavar="VALUE", help=argparse.SUPPRESS)
    md.set_defaults(handler=handler)


def _simulate(sub, common, handler) -> None:
    sim = sub.add_parser("simulate", parents=[common],
                         help="write synthetic raw darks with a known truth")
    sim.add_argument("--arm", choices=["NIR", "VIS"], default="NIR",
                     help="the arm whose detector is simulated (default: NIR)")
    sim.add_argument("-n", "--nframes", type=int, default=5, metavar="N",
                     help="number of raw darks (default: 5)")
    sim.add_argument("-o", "--outdir", default="raw", metavar="FOLDER",
                     help="folder of the frames and their mdark.sof, made if needed; with "
                          "--night the workspace (default: raw)")
    sim.add_argument("--exptime", type=float, default=300.0, metavar="SECONDS",
                     help="exposure time of each frame, s (default: 300)")
    sim.add_argument("--seed", type=int, default=1,
                     help="seed of the random numbers: the same seed gives the same "
                          "frames (default: 1)")
    sim.add_argument("--binning", type=int, default=1, metavar="B",
                     help="VIS binning, B x B pixels (default: 1; NIR is never binned)")
    sim.add_argument("--readout", help="readout mode, ESO DET READ CURID or CURNAME "
                                       "(default: NIR 3, VIS 1 SHG)")
    sim.add_argument("--pattern", metavar="FITS",
                     help="an X-Shooter static bad-pixel map whose bad pixels become hot "
                          "(default: a random pattern with clusters and a hot column)")
    sim.add_argument("--night", action="store_true",
                     help="a whole night in <outdir>/raw/<date>/: dark sets of both arms "
                          "and several EXPTIMEs, an incomplete template, flats and biases "
                          "(default: off, one set)")
    sim.set_defaults(handler=handler)


def _night(sub, common, handlers: dict) -> None:
    prep = sub.add_parser("prep", parents=[common],
                          help="find and group a workspace's dark sets, write their SOFs")
    _workspace(prep)
    prep.add_argument("--refresh", action="store_true",
                      help="set the workspace's database aside (backups/soxs-<UTC>.db) and "
                           "rebuild it from the raw headers and the products on disk "
                           "(default: off; a damaged database is rebuilt anyway)")
    prep.set_defaults(handler=handlers["prep"])
    red = sub.add_parser("reduce", parents=[common],
                         help="reduce the workspace's sets whose products are missing or stale")
    red.add_argument("what", choices=["all"], help="which sets: all of sof/")
    _workspace(red)
    _settings(red, "every set")
    _jobs(red)
    red.add_argument("--scheduler", metavar="ADDRESS",
                     help="address of a Dask distributed scheduler to send the sets to, "
                          "tcp://host:8786 (pip install '.[dask]'; default: none, this "
                          "machine's worker processes)")
    red.add_argument("--json", action="store_true",
                     help="the summary as JSON on standard output, no progress shown "
                          "(default: off, a table)")
    red.set_defaults(handler=handlers["reduce"])
    watch = sub.add_parser("watch", parents=[common],
                           help="prep and reduce all every few seconds until SIGINT/SIGTERM")
    _workspace(watch)
    watch.add_argument("--interval", type=float, default=15.0, metavar="SECONDS",
                       help="seconds between the passes (default: 15)")
    _settings(watch, "every set")
    _jobs(watch)
    watch.set_defaults(handler=handlers["watch"])
    qcp = sub.add_parser("qc", parents=[common], help="QC over nights from the database")
    qcp.add_argument("what", choices=["trend", "monitor-config"],
                     help="trend: plots of QC over nights (qc/trend/); monitor-config: the "
                          "qc_monitor.yaml that points the SOXS QC monitor at the workspace")
    _workspace(qcp)
    qcp.add_argument("--output", metavar="FOLDER",
                     help="monitor-config: the folder of the monitor's database, plots and "
                          "report, outside the workspace (default: <workspace>-qc-monitor "
                          "beside it)")
    qcp.set_defaults(handler=handlers["qc"])


def build_parser(handlers: dict) -> argparse.ArgumentParser:
    """The ``soxs`` parser with its sub-commands.

    Parameters
    ----------
    handlers : dict
        Sub-command name -> its handler, ``handler(args, argv) -> exit status``.

    Returns
    -------
    argparse.ArgumentParser
    """
    common = _flags(argparse.SUPPRESS)   # a sub-command must not reset the top's -x
    top = argparse.ArgumentParser(prog="soxs", parents=[_flags(False)],
                                  description="SOXS data reduction: the master dark")
    top.add_argument("--version", action="version", version=f"soxs {__version__}")
    sub = top.add_subparsers(dest="command", required=True)
    _mdark(sub, common, handlers["mdark"])
    _simulate(sub, common, handlers["simulate"])
    _night(sub, common, handlers)
    sub.add_parser("settings", help="print a complete default settings file"
                   ).set_defaults(handler=handlers["settings"])
    sub.add_parser("recipe-dir", help="print the folder of the PyEsoRex recipe, for "
                                      "pyesorex --recipe-dir").set_defaults(
        handler=handlers["recipe-dir"])
    edps = sub.add_parser("edps-config", help="print what EDPS needs to run the SOXS "
                                              "workflow (soxs.soxs_wkf)")
    edps.add_argument("--parameters", action="store_true",
                      help="print the workflow's parameter file instead (the recipe's "
                           "defaults, as workflows/soxs/soxs_parameters.yaml holds them; "
                           "default: off)")
    edps.set_defaults(handler=handlers["edps-config"])
    return top
