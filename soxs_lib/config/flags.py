"""QUAL bits of the master dark: one declaration, used by the core, the
header (``QUALBn`` keywords of the QUAL extension) and the man page."""

HOT = 1          # dark signal above the master's median by > hot_pixel_sigma
NODATA = 2       # no valid sample: FLUX is a fill value (the master's median)
SATURATED = 4    # at least one sample was saturated and excluded
BADINPUT = 8     # at least one sample was NaN or infinite and excluded
LOWCOVER = 16    # fewer than half of the frames contributed
COLD = 32        # dark signal below the master's median by > hot_pixel_sigma

MEANINGS = {
    HOT: "hot pixel: dark signal above the median by more than hot_pixel_sigma",
    NODATA: "no valid sample; FLUX holds the master's median as a fill value",
    SATURATED: "one or more saturated samples excluded",
    BADINPUT: "one or more NaN/inf samples excluded",
    LOWCOVER: "fewer than half of the frames contributed",
    COLD: "cold pixel: dark signal below the median by more than hot_pixel_sigma",
}
