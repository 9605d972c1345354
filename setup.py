"""The compiled kernel: everything else about the package is in setup.cfg."""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "soxs_lib.core._kernel", ["soxs_lib/core/kernel.c", "soxs_lib/core/sort.c"],
    # IEEE arithmetic in the order written: no fused multiply-adds, whatever
    # vector unit a clone of the scan is built for; no floating-point
    # exception flags kept, which lets comparisons run on vector lanes
    extra_compile_args=["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno",
                        "-fno-trapping-math", "-pthread"],
    extra_link_args=["-pthread"])])
