"""The EDPS workflows of soxs_mdark, shipped with the package as
``soxs_lib.workflows``: the folder EDPS's ``workflow_dir`` names
(``soxs edps-config`` prints it), holding the workflow package ``soxs``
(``edps -w soxs.soxs_wkf``)."""
