"""The SOXS workflow: ``edps -w soxs.soxs_wkf``.

Two tasks, one per arm, run the PyEsoRex recipe soxs_mdark on each dark set
(``soxs_datasources``); the VIS task takes the master bias of the set's
binning and readout nearest in time when the data hold one (without it the
recipe takes the bias level from the overscan).  Both make master
calibrations monitored by QC1 (meta target ``QC1_CALIB``).  Their recipe
parameters are in ``soxs_parameters.yaml``.
"""

from edps import QC1_CALIB, task

from soxs_lib.config import keywords as kw
from soxs_lib.config.params import RECIPE

from .soxs_datasources import master_bias_vis, raw_dark_nir, raw_dark_vis

mdark_nir_task = (task(kw.edps_task("NIR"))
                  .with_recipe(RECIPE)
                  .with_main_input(raw_dark_nir)
                  .with_meta_targets([QC1_CALIB])
                  .build())

mdark_vis_task = (task(kw.edps_task("VIS"))
                  .with_recipe(RECIPE)
                  .with_main_input(raw_dark_vis)
                  .with_associated_input(master_bias_vis, min_ret=0)
                  .with_meta_targets([QC1_CALIB])
                  .build())
