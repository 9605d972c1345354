"""The ``soxs`` command line.

soxs [-V] [-x] mdark <inputFrames>... [-o <outputDirectory>] [-s <settings.yaml>]
[--<parameter>=<value> ...]
soxs simulate [--arm NIR|VIS] [-n N] [-o <folder>] ...
soxs settings          print a complete default settings file
soxs recipe-dir        print the folder to pass to pyesorex --recipe-dir
soxs edps-config       print what EDPS needs to run the SOXS workflow
"""

from __future__ import annotations

from pathlib import Path
import logging
import sys
import traceback

from soxs_lib.runtime import signals
# the exit statuses, here for whoever runs main (tests, scripts)
from soxs_lib.cli.console import EXIT_INTERRUPTED as EXIT_INTERRUPTED, report_interrupted
from soxs_lib.cli.parser import build_parser
from soxs_lib.config.errors import EXIT_QC_FAILED, SoxsError
from soxs_lib.runtime.signals import Interrupted



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
            args = build_parser(HANDLERS).parse_args(argv)
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
    # fork the plotting and stacking processes before the heavy imports, which
    # they need not pay for
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
    from soxs_lib.cli import progress, tables
    from soxs_lib.night.prep import prep
    from soxs_lib.night.workspace import workspace_lock
    ws = _workspace(args)
    files = progress.Files() if progress.on_terminal() else None
    with workspace_lock(ws), progress.shown(files):
        found = prep(ws, refresh=args.refresh, progress=files)
    print(tables.prep_text(found, ws))
    return 0


def _reduce(args, _argv) -> int:
    from soxs_lib.cli import progress, tables
    from soxs_lib.night.reduce import reduce_all
    from soxs_lib.night.workspace import workspace_lock
    ws = _workspace(args)
    sets = progress.Sets() if progress.on_terminal(args.json) else None
    with workspace_lock(ws), progress.shown(sets):
        done = reduce_all(ws, args.settings, args.overwrite, args.jobs, args.scheduler,
                          progress=sets)
    if done.repair:
        print(tables.repair_text(done.repair, ws), file=sys.stderr)
    print(tables.reduce_json(done) if args.json else tables.reduce_text(done))
    return done.exit_status


def _watch(args, _argv) -> int:
    from soxs_lib.cli import progress, tables
    from soxs_lib.night.watch import watch
    ws = _workspace(args)
    passes = progress.Passes(args.interval) if progress.on_terminal() else None
    show, trouble = tables.print_pass, tables.print_trouble
    if passes is not None:
        show, trouble = passes.around(show), passes.around(trouble)
    try:
        with progress.shown(passes):
            return watch(ws, show, args.interval, args.settings, args.jobs,
                         trouble=trouble, each_pass=passes)
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


HANDLERS = {"mdark": _mdark, "simulate": _simulate, "prep": _prep, "reduce": _reduce,
            "watch": _watch, "qc": _qc, "settings": _settings, "recipe-dir": _recipe_dir,
            "edps-config": _edps_config}


if __name__ == "__main__":
    from soxs_lib.cli.console import entry
    entry()
