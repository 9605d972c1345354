"""The ``soxs`` command line.

soxs [-V] [-x] mdark <inputFrames>... [-o <outputDirectory>] [-s <settings.yaml>]
[--<parameter>=<value> ...]
soxs simulate [--arm NIR|VIS] [-n N] [-o <folder>] ...
soxs settings          print a complete default settings file
soxs recipe-dir        print the folder to pass to pyesorex --recipe-dir
soxs edps-config       print what EDPS needs to run the SOXS workflow
"""

from __future__ import annotations

import argparse
from pathlib import Path
import logging
import sys
import traceback

from soxs_lib import __version__
from soxs_lib.config import params, flags
from soxs_lib.config import qc
from soxs_lib.runtime import signals
from soxs_lib.cli.console import EXIT_CLOSED_PIPE, EXIT_INTERRUPTED, report_interrupted
from soxs_lib.config.errors import EXIT_QC_FAILED, SoxsError
from soxs_lib.runtime.signals import Interrupted



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
                   help="verbose output, with a traceback on errors")
    p.add_argument("-x", "--overwrite", action="store_true", default=default,
                   help="overwrite existing products")
    return p


def build_parser() -> argparse.ArgumentParser:
    """The ``soxs`` parser with its sub-commands; mdark's options come from
    ``params.PARAMETERS``."""
    common = _flags(argparse.SUPPRESS)   # a sub-command must not reset the top's -x
    top = argparse.ArgumentParser(prog="soxs", parents=[_flags(False)],
                                  description="SOXS data reduction: the master dark")
    top.add_argument("--version", action="version", version=f"soxs {__version__}")
    sub = top.add_subparsers(dest="command", required=True)
    md = sub.add_parser("mdark", parents=[common], help="make a master dark",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog=_epilog(),
                        description="Stack at least 3 raw darks of one arm into a "
                                    "master dark (products/soxs_mdark, qc/soxs_mdark).")
    md.add_argument("inputs", nargs="+", metavar="inputFrames",
                    help="a SOF file, a folder of FITS files or a list of FITS files")
    md.add_argument("-o", "--outdir", default=".", help="workspace root (default: .)")
    md.add_argument("-s", "--settings", help="settings YAML (own or soxspipe format)")
    for p in params.PARAMETERS:
        md.add_argument(f"--{p.name}", f"--{p.soxspipe_key}", dest=f"par_{p.name}",
                        metavar="VALUE", help=argparse.SUPPRESS)
    md.set_defaults(handler=_mdark)
    sim = sub.add_parser("simulate", parents=[common],
                         help="write synthetic raw darks with a known truth")
    sim.add_argument("--arm", choices=["NIR", "VIS"], default="NIR")
    sim.add_argument("-n", "--nframes", type=int, default=5)
    sim.add_argument("-o", "--outdir", default="raw")
    sim.add_argument("--exptime", type=float, default=300.0)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--binning", type=int, default=1)
    sim.add_argument("--readout", help="readout mode, ESO DET READ CURID or CURNAME "
                                       "(default: NIR 3, VIS 1)")
    sim.add_argument("--pattern", help="X-Shooter static BPM whose bad pixels become hot")
    sim.add_argument("--night", action="store_true",
                     help="a whole night in <outdir>/raw/<date>/: dark sets of both arms "
                          "and several EXPTIMEs, an incomplete template, flats and biases")
    sim.set_defaults(handler=_simulate)
    prep = sub.add_parser("prep", parents=[common],
                          help="find and group a workspace's dark sets, write their SOFs")
    prep.add_argument("workspace")
    prep.add_argument("--refresh", action="store_true",
                      help="set the workspace's database aside (backups/soxs-<UTC>.db) and "
                           "rebuild it from the raw headers and the products on disk")
    prep.set_defaults(handler=_prep)
    red = sub.add_parser("reduce", parents=[common],
                         help="reduce the workspace's sets whose products are missing or stale")
    red.add_argument("what", choices=["all"])
    red.add_argument("workspace")
    red.add_argument("-s", "--settings", help="settings YAML for every set")
    red.add_argument("-j", "--jobs", type=int, default=0,
                     help="worker processes (default: the number of cores)")
    red.add_argument("--scheduler", help="address of a Dask distributed scheduler to "
                                         "send the sets to (pip install '.[dask]')")
    red.add_argument("--json", action="store_true", help="the summary as JSON on stdout")
    red.set_defaults(handler=_reduce)
    watch = sub.add_parser("watch", parents=[common],
                           help="prep and reduce all every few seconds until SIGINT/SIGTERM")
    watch.add_argument("workspace")
    watch.add_argument("--interval", type=float, default=15.0, help="seconds (default 15)")
    watch.add_argument("-s", "--settings", help="settings YAML for every set")
    watch.add_argument("-j", "--jobs", type=int, default=0)
    watch.set_defaults(handler=_watch)
    qcp = sub.add_parser("qc", parents=[common], help="QC over nights from the database")
    qcp.add_argument("what", choices=["trend", "monitor-config"],
                     help="trend: plots of QC over nights; monitor-config: the "
                          "qc_monitor.yaml that points the SOXS QC monitor at the workspace")
    qcp.add_argument("workspace")
    qcp.add_argument("--output", help="monitor-config: the folder of the monitor's database, "
                                      "plots and report, outside the workspace (default: "
                                      "<workspace>-qc-monitor beside it)")
    qcp.set_defaults(handler=_qc)
    sub.add_parser("settings", help="print a complete default settings file"
                   ).set_defaults(handler=_settings)
    sub.add_parser("recipe-dir", help="print the folder of the PyEsoRex recipe, for "
                                      "pyesorex --recipe-dir").set_defaults(handler=_recipe_dir)
    edps = sub.add_parser("edps-config", help="print what EDPS needs to run the SOXS "
                                              "workflow (soxs.soxs_wkf)")
    edps.add_argument("--parameters", action="store_true",
                      help="print the workflow's parameter file instead (the recipe's "
                           "defaults, as workflows/soxs/soxs_parameters.yaml holds them)")
    edps.set_defaults(handler=_edps_config)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run one ``soxs`` command, with SIGINT and SIGTERM taken over
    (``signals.taken``) until it returns.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0, 2 bad input, 3 bad settings, 4 output problem,
        5 products written but QC failed, 130 interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    command, args = (argv or [""])[0], None
    with signals.taken():
        try:
            signals.check()           # one that came while the command line loaded
            args = build_parser().parse_args(argv)
            command = args.command
            _log_to_terminal(args.verbose)
            return args.handler(args, argv)
        except SoxsError as exc:
            if getattr(args, "verbose", False):
                traceback.print_exc()
            print(f"soxs {command}: error: {exc}", file=sys.stderr)
            return exc.exit_status
        except Interrupted as exc:
            return report_interrupted(command, str(exc))
        except MemoryError:
            print(f"soxs {command}: error: out of memory", file=sys.stderr)
            return 1
        except Exception:
            # a signal during an import can surface as that import's ImportError
            if signals.interrupted() is None:
                raise
            return report_interrupted(command, signals.interrupted())


def _log_to_terminal(verbose: bool) -> None:
    """The terminal shows the log with -V only (warnings always)."""
    level = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
    logging.getLogger("soxs").setLevel(logging.DEBUG if verbose else logging.INFO)


# -- one handler per sub-command: (arguments, command line) -> exit status ------------

def _settings(_args, _argv) -> int:
    from soxs_lib.config.settings import default_yaml
    sys.stdout.write(default_yaml())
    return 0


def _recipe_dir(_args, _argv) -> int:
    from soxs_lib.config.shipped import recipe_dir
    print(recipe_dir())
    return 0


def _edps_config(args, _argv) -> int:
    from soxs_lib.cli.edps import config_text, parameters_yaml
    sys.stdout.write(parameters_yaml() if args.parameters else config_text())
    return 0


def _simulate(args, _argv) -> int:
    if args.night:
        from soxs_lib.io.simulate import simulate_night
        truths = simulate_night(args.outdir, seed=args.seed)
        print(f"wrote a night of {len(truths)} dark sets, flats and biases to "
              f"{args.outdir}/raw")
        return 0
    from soxs_lib.io.simulate import simulate_darks
    truth = simulate_darks(args.outdir, arm=args.arm, nframes=args.nframes,
                           exptime=args.exptime, seed=args.seed, binning=args.binning,
                           pattern=args.pattern, readout=args.readout)
    print(f"wrote {len(truth.paths)} {args.arm} darks and mdark.sof to {args.outdir}")
    return 0


def _mdark(args, argv) -> int:
    # fork the plotting and stacking processes before the heavy imports: the
    # stacker loads the kernel on the other core while this one imports astropy
    from soxs_lib.pipeline.children import RunChildren
    children = RunChildren.fork()
    try:
        from soxs_lib.pipeline.run import run_mdark
    except BaseException:
        children.cancel()
        raise
    overrides = {k[4:]: v for k, v in vars(args).items()
                 if k.startswith("par_") and v is not None}
    result = run_mdark(args.inputs, args.outdir, args.settings, overrides,
                       args.overwrite, argv, children)
    print(result.text)
    return 0 if result.md.qc_passed else EXIT_QC_FAILED


def _workspace(args):
    from soxs_lib.night.workspace import check_workspace
    return check_workspace(args.workspace)


def _prep(args, _argv) -> int:
    from soxs_lib.cli import tables
    from soxs_lib.night.prep import prep
    from soxs_lib.night.workspace import workspace_lock
    ws = _workspace(args)
    with workspace_lock(ws):
        found = prep(ws, refresh=args.refresh)
    print(tables.prep_text(found, ws))
    return 0


def _reduce(args, _argv) -> int:
    from soxs_lib.cli import tables
    from soxs_lib.night.reduce import reduce_all
    from soxs_lib.night.workspace import workspace_lock
    ws = _workspace(args)
    with workspace_lock(ws):
        done = reduce_all(ws, args.settings, args.overwrite, args.jobs, args.scheduler)
    if done.repair:
        print(tables.repair_text(done.repair, ws), file=sys.stderr)
    print(tables.reduce_json(done) if args.json else tables.reduce_text(done))
    return done.exit_status


def _watch(args, _argv) -> int:
    from soxs_lib.cli import tables
    from soxs_lib.night.watch import watch
    ws = _workspace(args)
    try:
        return watch(ws, tables.print_pass, args.interval, args.settings, args.jobs,
                     trouble=tables.print_trouble)
    except Interrupted as exc:      # the way a watch ends: nothing is left partial
        print(f"soxs watch: stopped ({exc})", flush=True)
        return 0


def _qc(args, _argv) -> int:
    ws = _workspace(args)
    if args.what == "monitor-config":
        from soxs_lib.night.monitor import config_yaml
        output = Path(args.output).resolve() if args.output else None
        sys.stdout.write(config_yaml(ws.resolve(), output))
        return 0
    from soxs_lib.night.trend import write_trends
    for path in write_trends(ws):
        print(path)
    return 0


if __name__ == "__main__":
    from soxs_lib.cli.console import entry
    entry()
