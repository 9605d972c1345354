"""Data sources of the SOXS workflow.

A job is one dark set as ``soxs prep`` forms it: the darks of one arm that
share EXPTIME, readout (``DET READ CURID``/``CURNAME``), binning and template
(``TPL START``, so two templates of one night never mix), at least
``MIN_FRAMES`` of them.  A VIS set takes the master bias of its binning and
readout nearest in time.

Association levels follow ESO's convention: < 0 stricter than the
calibration plan, 0 the plan (SOXS takes biases every day), 1 QC1 quality,
2 probably still acceptable, 3 a significant risk.  Each level's time range
holds the one before it, so the bias chosen is the nearest in time, as
``prep`` chooses it.
"""

from edps import data_source
from edps.generator.time_range import ONE_DAY, ONE_WEEK, UNLIMITED

from soxs_lib.config import keywords as kw

from . import soxs_keywords as kwd
from .soxs_classification import dark_nir_class, dark_vis_class, master_bias_vis_class

raw_dark_nir = (data_source()
                .with_classification_rule(dark_nir_class)
                .with_grouping_keywords(kwd.set_keywords)
                .with_min_group_size(kw.MIN_FRAMES)
                .build())

raw_dark_vis = (data_source()
                .with_classification_rule(dark_vis_class)
                .with_grouping_keywords(kwd.set_keywords)
                .with_min_group_size(kw.MIN_FRAMES)
                .build())

master_bias_vis = (data_source()
                   .with_classification_rule(master_bias_vis_class)
                   .with_match_keywords(kwd.bias_match_keywords, time_range=ONE_DAY, level=0)
                   .with_match_keywords(kwd.bias_match_keywords, time_range=ONE_WEEK, level=2)
                   .with_match_keywords(kwd.bias_match_keywords, time_range=UNLIMITED,
                                        level=3)
                   .build())
