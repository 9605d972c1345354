"""The PyEsoRex recipes, shipped with the package as ``soxs_lib.recipes``;
``soxs recipe-dir`` prints this folder for ``pyesorex --recipe-dir``."""
