"""The SOXS workflow for ESO's Data Processing System (EDPS): raw darks of
each arm grouped into the sets ``soxs prep`` forms and reduced by the
PyEsoRex recipe soxs_mdark, a VIS set with the master bias nearest in time.

Laid out as ESO's workflows are: ``soxs_keywords`` (header keywords as EDPS
spells them), ``soxs_rules`` (what a raw dark or a master bias is, the rule
``prep`` applies), ``soxs_classification``, ``soxs_datasources``,
``soxs_wkf`` (the tasks) and ``soxs_parameters.yaml`` (the recipe's
defaults, generated from ``soxs_lib/config/params.py``).
"""
