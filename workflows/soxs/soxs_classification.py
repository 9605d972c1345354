"""Classification of SOXS files: the raw darks of each arm, and the VIS
master bias by its ``PRO CATG``, each by ``prep``'s rule (``soxs_rules``).

The master darks soxs_mdark makes are not classified: their default
``PRO CATG`` (``DARK_<ARM>``, the SOXS documentation's) is the raw darks'
tag, and no task of this workflow takes them."""

from edps import classification_rule

from soxs_lib.config import keywords as kw

from . import soxs_rules as rules

dark_nir_class = classification_rule(kw.raw_tag("NIR"), rules.is_raw_dark_nir)
dark_vis_class = classification_rule(kw.raw_tag("VIS"), rules.is_raw_dark_vis)
master_bias_vis_class = classification_rule(kw.BIAS_TAG, rules.is_master_bias_vis)
