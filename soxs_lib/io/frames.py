"""From what the user gives (a SOF, a folder, a list of files) to a checked,
ordered set of raw darks and optional calibrations."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import math
from pathlib import Path

import numpy as np

from soxs_lib.config import keywords as kw
from soxs_lib.config.errors import DataNotFound, InputError
from soxs_lib.io.archive import looks_like_fits
from soxs_lib.io.fitsfile import open_fits, read_header
from soxs_lib.io.rawimage import RawImage
from soxs_lib.io.sof import parse_sof


def sof_path(inputs: list[str]) -> Path | None:
    """The SOF among the command line's inputs: a single input that is
    neither a folder nor a FITS file; None for folders and FITS files."""
    if len(inputs) != 1:
        return None
    p = Path(inputs[0])
    return None if p.is_dir() or looks_like_fits(p.name) else p


def collect_inputs(inputs: list[str]) -> list[tuple[Path, str | None]]:
    """One SOF, one folder of FITS files, or a list of FITS files."""
    if not inputs:
        raise DataNotFound("no input frames given")
    sof = sof_path(inputs)
    if sof is not None:
        if not sof.exists():
            raise DataNotFound(f"{sof}: SOF file not found")
        return parse_sof(sof)
    if len(inputs) == 1 and Path(inputs[0]).is_dir():
        p = Path(inputs[0])
        files = sorted(f for f in p.iterdir() if f.is_file() and looks_like_fits(f.name))
        if not files:
            raise DataNotFound(f"{p}: the folder holds no FITS files")
        return [(f, None) for f in files]
    return [(Path(f), None) for f in inputs]


def read_master_bias(path, region, full_shape, gain):
    """FLUX and the variance of a MASTER_BIAS_VIS, in electrons, on the
    science region ``region`` of raw frames of ``full_shape``.

    Raises
    ------
    InputError
        Unreadable, not 2-D, or of neither the raw frames' shape nor their
        science region's.
    """
    r0, r1, c0, c1 = region
    try:
        with open_fits(path, scaled=True) as hdul:
            ext = "FLUX" if "FLUX" in hdul else 0
            flux = np.asarray(hdul[ext].data, np.float32)
            err = (np.asarray(hdul["ERR"].data, np.float32) if "ERR" in hdul
                   else np.zeros_like(flux))
            unit = str(hdul[ext].header.get("BUNIT", hdul[0].header.get("BUNIT", "electron")))
    except (OSError, ValueError, TypeError, EOFError) as exc:
        raise InputError(f"{path}: cannot read the master bias ({exc})") from None
    if flux.ndim != 2:
        raise InputError(f"{path}: the master bias is not a 2-D image")
    if flux.shape == tuple(full_shape):
        flux, err = flux[r0:r1, c0:c1], err[r0:r1, c0:c1]
    elif flux.shape != (r1 - r0, c1 - c0):
        raise InputError(f"{path}: master bias is {flux.shape[1]}x{flux.shape[0]}, matching "
                         f"neither the raw frames nor their science region")
    if unit.strip().lower() in ("adu", "count", "counts"):
        flux, err = flux * gain, err * gain
    if not np.all(np.isfinite(flux)):
        flux = np.where(np.isfinite(flux), flux, np.nanmedian(flux))
    return np.ascontiguousarray(flux), np.ascontiguousarray(np.nan_to_num(err) ** 2)


@dataclass
class FrameSet:
    """A checked set of raw darks of one arm, sorted by time, and the
    optional master bias.  It owns the open frames: ``close()`` (or a
    ``with`` block) releases them, decompressed copies included."""

    arm: str
    raws: list[RawImage]
    bias: Path | None = None

    @property
    def first(self) -> RawImage:
        """The earliest frame: its header names and dates the product."""
        return self.raws[0]

    @property
    def exptime(self) -> float:
        """The common exposure time, s."""
        return float(self.first.header[kw.EXPTIME])

    def master_bias(self, region: tuple, gain: float):
        """The master bias on ``region`` (see ``read_master_bias``): offset
        (e-) and variance (e-^2) arrays."""
        return read_master_bias(self.bias, region, self.first.shape, gain)

    def close(self) -> None:
        """Release every frame."""
        for img in self.raws:
            img.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _describe(values: dict[str, list[str]]) -> str:
    return "; ".join(f"{v!s}: {', '.join(names)}" for v, names in values.items())


def check_raw(img: RawImage) -> None:
    """Refuse a frame that is not a raw SOXS dark.

    Raises
    ------
    InputError
        A product, missing keywords, not a dark, an unknown arm or one that
        contradicts its tag, an invalid EXPTIME; the message names the file.
    """
    h, name = img.header, img.path
    if kw.PRO_CATG in h:
        raise InputError(f"{name}: is a product ({kw.PRO_CATG} = {h[kw.PRO_CATG]!r}), "
                         "not a raw frame")
    arm = str(h.get(kw.SEQ_ARM, "")).strip().upper()
    missing = [k for k in kw.required(arm) if k not in h]
    if missing:
        raise InputError(f"{name}: missing header keyword(s) {', '.join(missing)}")
    if str(h[kw.DPR_TYPE]).strip().upper() != kw.DARK_DPR_TYPE:
        raise InputError(f"{name}: is not a dark ({kw.DPR_TYPE} = {h[kw.DPR_TYPE]!r})")
    if arm not in kw.ARMS:
        raise InputError(f"{name}: unknown arm {kw.SEQ_ARM} = {h[kw.SEQ_ARM]!r}")
    if img.tag is not None and img.tag != kw.raw_tag(arm):
        raise InputError(f"{name}: tagged {img.tag} but {kw.SEQ_ARM} = {arm!r}")
    try:
        exptime = float(h[kw.EXPTIME])
    except (TypeError, ValueError):
        exptime = math.nan
    if not math.isfinite(exptime) or exptime < 0:
        raise InputError(f"{name}: invalid {kw.EXPTIME} = {h[kw.EXPTIME]!r}")


def open_raws(entries: list[tuple[Path, str | None]]) -> list[RawImage]:
    """Open every raw frame, archives decompressed two at a time.

    Parameters
    ----------
    entries : list of (Path, str or None)
        Files and tags.

    Returns
    -------
    list of RawImage
        In the order of ``entries``.

    Raises
    ------
    DataNotFound, InputError
        The first frame in ``entries`` order that cannot be opened; the
        frames opened meanwhile are closed (their decompressed copies gone).
    """
    with ThreadPoolExecutor(max_workers=max(1, min(2, len(entries)))) as pool:
        futures = [pool.submit(RawImage, path, tag) for path, tag in entries]
    opened, failure = [], None
    for f in futures:
        try:
            opened.append(f.result())
        except BaseException as exc:     # noqa: BLE001 - re-raised below
            failure = failure or exc
    if failure is not None:
        for img in opened:
            img.close()
        raise failure
    return opened


def _split_biases(entries) -> tuple[list[Path], list]:
    """(master biases, raw entries): a MASTER_BIAS_VIS is recognised by its
    tag, or untagged by its PRO CATG."""
    biases, wanted = [], []
    for path, tag in entries:
        if tag is None and read_header(path).get(kw.PRO_CATG) == kw.BIAS_TAG:
            tag = kw.BIAS_TAG
        if tag == kw.BIAS_TAG:
            read_header(path)  # exists, readable, FITS or an archive of one
            biases.append(Path(path))
        else:
            wanted.append((path, tag))
    if len(biases) > 1:
        raise InputError("more than one MASTER_BIAS_VIS given: "
                         + ", ".join(str(b) for b in biases))
    return biases, wanted


def _check_set(raws: list[RawImage]) -> None:
    """Refuse too few frames, or frames that disagree."""
    if len(raws) < kw.MIN_FRAMES:
        names = ", ".join(str(r.path) for r in raws) or "none"
        raise DataNotFound(f"soxs_mdark needs at least {kw.MIN_FRAMES} raw darks of one "
                           f"arm; got {len(raws)} ({names})")
    checks = [(f"{meaning} ({key})", lambda r, key=key: str(r.header.get(key, "(absent)")))
              for key, meaning in kw.MUST_AGREE]
    checks.append(("image size (NAXIS1xNAXIS2)", lambda r: f"{r.shape[1]}x{r.shape[0]}"))
    for what, value in checks:
        groups: dict[str, list[str]] = {}
        for r in raws:
            groups.setdefault(value(r), []).append(r.path.name)
        if len(groups) > 1:
            raise InputError(f"mixed {what} in the set: {_describe(groups)}")


def load_frameset(entries: list[tuple[Path, str | None]]) -> FrameSet:
    """Open, classify and check every frame of one master dark.

    Parameters
    ----------
    entries : list of (Path, str or None)
        Files and their SOF tags (None: from the header; a MASTER_BIAS_VIS
        product is recognised by its PRO CATG).

    Returns
    -------
    FrameSet
        The raw darks sorted by MJD-OBS, opened (the caller closes it), and
        the master bias if any.

    Raises
    ------
    DataNotFound
        A file is missing, or fewer than 3 raw darks.
    InputError
        A file is unreadable, damaged or not a raw SOXS dark; the set mixes
        arms, exposure times, readouts, binnings, gains or image sizes; more
        than one master bias, or one for NIR darks.  The message names the
        files and keywords at fault.
    """
    biases, wanted = _split_biases(entries)
    raws = open_raws(wanted)
    try:
        for img in raws:
            check_raw(img)
        _check_set(raws)
        arm = str(raws[0].header[kw.SEQ_ARM]).strip().upper()
        bias = biases[0] if biases else None
        if bias is not None and arm != "VIS":
            raise InputError(f"{bias}: MASTER_BIAS_VIS given for {arm} darks")
    except BaseException:
        for img in raws:
            img.close()
        raise
    # frame order in the SOF must not matter: sort by time, then name
    raws.sort(key=lambda r: (float(r.header[kw.MJD_OBS]), r.path.name))
    return FrameSet(arm=arm, raws=raws, bias=bias)
