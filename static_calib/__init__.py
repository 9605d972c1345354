"""Static calibration files of soxs_mdark (detector parameters), shipped with
the package as ``soxs_lib.static_calib``."""
