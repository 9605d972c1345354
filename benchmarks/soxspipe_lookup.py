"""soxspipe 0.19.0's own master-dark lookup, run in soxspipe's environment on a
master dark that soxs wrote: does a soxspipe recipe select it among its
inputs, and which read noise does it take from it?

    venv-soxspipe312/bin/python soxspipe_lookup.py SETTINGS WORKSPACE MASTER RAW [RAW ...]

Every soxspipe recipe checks its inputs with ``_verify_input_frames_basics``,
which ends in ``_apply_measured_read_noise``: the NIR arm looks its master
dark up by the header ``ESO PRO CATG = MASTER_DARK_NIR`` and hands its header
to ``commonutils.read_noise.resolve_read_noise``.  Printed as JSON: the master
darks selected, the read noise taken, its source, the frames combined, and
the ``ESO QC RAW RON`` the master states.
"""

import json
import sys

from astropy.io import fits
from fundamentals.logs import setup_dryx_logging
from soxspipe.commonutils.keyword_lookup import keyword_lookup
from soxspipe.commonutils.set_of_files import set_of_files
from soxspipe.recipes.base_recipe import base_recipe
import yaml


def main(argv: list[str]) -> int:
    settings_path, workspace, master, *raws = argv
    with open(settings_path) as fh:
        settings = yaml.safe_load(fh)
    settings["workspace-root-dir"] = workspace
    log = setup_dryx_logging(yaml_file=settings_path)
    frames = raws + [master]
    recipe = base_recipe(log=log, settings=settings, inputFrames=frames,
                         recipeName="soxs-mdark", turnOffMP=True)
    recipe.inputFrames, _ = set_of_files(log=log, settings=recipe.settings, inputFrames=frames,
                                         ext=recipe.settings["data-extension"]).get()
    recipe._verify_input_frames_basics()          # soxspipe's lookup, as every recipe runs it
    kw = keyword_lookup(log=log, settings=recipe.settings).get
    header = fits.getheader(master)
    arm = header[kw("SEQ_ARM")]
    selected = recipe.inputFrames.files_filtered(
        include_path=True, **{kw("PRO_CATG"): f"MASTER_DARK_{arm}"})
    rn = recipe.readNoise
    print(json.dumps({
        "arm": arm,
        "selected": [str(p) for p in selected],
        "read_noise": rn.singleFrame if rn else None,
        "source": rn.source if rn else None,
        "n_combined": rn.nCombined if rn else None,
        "header_raw_ron": header.get("ESO QC RAW RON"),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
