"""Files: raw frames in every form archives deliver them, SOFs and frame
sets, the product's cards and HDUs, the one rule that names a product,
all-or-nothing publishing, synthetic raw darks.  Imports ``config`` and
``core``."""
