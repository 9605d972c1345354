"""PyEsoRex plugin: ``pyesorex --recipe-dir recipes soxs_mdark mdark.sof``.

A thin adapter: ``cpl`` at the boundaries (FrameSet in, ``cpl.ui``
parameters, ``cpl.dfs`` product with a ``cpl.core`` PropertyList, ``Msg``
logs); the science is ``soxs_lib.core.mdark.make_master_dark``, shared with the
``soxs`` command line."""

from __future__ import annotations

from pathlib import Path
import sys

try:
    import soxs_lib
except ImportError:   # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import soxs_lib

import cpl.core
import cpl.dfs
import cpl.ui

from soxs_lib.config import keywords as kw, params, qc
from soxs_lib.cli import manpage
from soxs_lib.config.errors import (
    DataNotFound,
    InputError,
    OutputError,
    SettingsError,
    SoxsError,
)
from soxs_lib.io.frames import load_frameset
from soxs_lib.core.mdark import make_master_dark
from soxs_lib.io.naming import PRODUCT_SUFFIX, product_stem
from soxs_lib.io.product import extension_data, extension_headers, product_cards, qc_cards
from soxs_lib.io.publish import ProductSet

# each soxs_lib error as the cpl error PyEsoRex reports (most specific first)
CPL_ERRORS = (
    (DataNotFound, cpl.core.DataNotFoundError),
    (InputError, cpl.core.IllegalInputError),
    (SettingsError, cpl.core.IllegalInputError),
    (OutputError, cpl.core.FileIOError),
    (SoxsError, cpl.core.IllegalInputError),
)

_TYPES = ((bool, cpl.core.Type.BOOL), (int, cpl.core.Type.INT),
          (float, cpl.core.Type.DOUBLE), (str, cpl.core.Type.STRING))


def _property(name: str, value, comment: str = ""):
    for pytype, cpltype in _TYPES:
        if isinstance(value, pytype):
            prop = cpl.core.Property(name, cpltype, value)
            if comment:
                prop.comment = comment[:47]
            return prop
    raise TypeError(f"{name}: no CPL type for {value!r}")


def _propertylist(cards) -> cpl.core.PropertyList:
    plist = cpl.core.PropertyList()
    for name, value, comment in cards:
        plist.append(_property(name, value, comment))
    return plist


# stack_method = cpl: CPL's image-list sigma clipping, keeping at least half
# of the samples; PyCPL 1.0.3 binds the name MEDIAN_MEAN to MEDIAN, so the
# mode is taken by its CPL value
CPL_KEEPFRAC = 0.5
CPL_MEDIAN_MEAN = cpl.core.ImageList.Collapse(2)


def cpl_combine(frames, kappa: float):
    """The combiner of ``stack_method = cpl`` (see ``mdark.combine_outside``):
    ``ImageList.collapse_sigclip_create(kappa, kappa, CPL_KEEPFRAC,
    MEDIAN_MEAN)`` on the frames in electrons, their excluded samples marked
    bad.  Returns (mean image, contribution map)."""
    images = []
    for data, excluded in frames:
        image = cpl.core.Image(data)
        image.reject_from_mask(cpl.core.Mask(excluded))
        images.append(image)
    return cpl.core.ImageList(images).collapse_sigclip_create(
        kappa, kappa, CPL_KEEPFRAC, CPL_MEDIAN_MEAN)


def _cpl_error(exc: SoxsError) -> Exception:
    cls = next(c for soxs, c in CPL_ERRORS if isinstance(exc, soxs))
    return cls(str(exc))


def cpl_parameter(p: params.Param):
    """The cpl.ui parameter of a declaration: full name, alias, range or
    alternatives."""
    if p.choices:
        par = cpl.ui.ParameterEnum(name=p.full_name, description=p.description,
                                   context=params.CONTEXT, default=p.default,
                                   alternatives=list(p.choices))
    else:
        par = cpl.ui.ParameterRange(name=p.full_name, description=p.description,
                                    context=params.CONTEXT, default=p.default,
                                    min=p.min, max=p.max)
    par.cli_alias = p.name
    return par


class SoxsMdark(cpl.ui.PyRecipe):
    """soxs_mdark for PyEsoRex: the man page, parameters and products come
    from soxs_lib's declarations."""

    _name = params.RECIPE
    _version = soxs_lib.__version__
    _author = "SOXS pipeline team"
    _email = "soxs-pipeline@example.org"
    _copyright = "GPL-3.0-or-later"
    _synopsis = manpage.SYNOPSIS
    _description = manpage.description()

    def __init__(self):
        super().__init__()
        self.parameters = cpl.ui.ParameterList([cpl_parameter(p) for p in params.PARAMETERS])

    def _values(self, settings: dict) -> dict:
        for name, value in settings.items():
            # an unknown name is a SettingsError naming it, as on the command line
            self.parameters[params.lookup(name, "parameter").full_name].value = value
        # PyCPL does not check ranges on assignment: the shared declarations do
        return params.resolve({p.name: self.parameters[p.full_name].value
                               for p in params.PARAMETERS}, source="parameter")

    def run(self, frameset: cpl.ui.FrameSet, settings: dict) -> cpl.ui.FrameSet:
        """Make the master dark of ``frameset``; ``settings`` maps full
        parameter names to values set explicitly.  Returns the product frame.

        Raises
        ------
        cpl.core.Error
            The soxs_lib error mapped by ``CPL_ERRORS``, with its message.
        """
        try:
            values = self._values(settings)
            entries, used = [], []
            for frame in frameset:
                if frame.tag in kw.RAW_TAGS:
                    frame.group = cpl.ui.Frame.FrameGroup.RAW
                elif frame.tag in kw.CALIB_TAGS:
                    frame.group = cpl.ui.Frame.FrameGroup.CALIB
                else:
                    raise SoxsError(f"{frame.file}: unknown tag {frame.tag!r} (soxs_mdark "
                                    f"takes {', '.join(kw.KNOWN_TAGS)})")
                entries.append((Path(frame.file), frame.tag))
                used.append(frame)
            with load_frameset(entries) as fs:
                cpl.core.Msg.info(self._name, f"{len(fs.raws)} {fs.arm} raw darks, "
                                              f"EXPTIME {fs.exptime:g} s")
                # named from the set as given: a frame dropped later never renames it
                filename = product_stem(fs.first.header) + PRODUCT_SUFFIX
                md = make_master_dark(fs, values, qc.default_ranges(fs.arm),
                                      combine=cpl_combine)
            for path, why in md.dropped:
                cpl.core.Msg.warning(self._name, f"left out {path}: {why}")
            for note in md.notes:
                cpl.core.Msg.warning(self._name, note)
            left_out = {str(path) for path, _ in md.dropped}
            used = [f for f in used if f.file not in left_out]
            for r in md.qc:
                log = cpl.core.Msg.warning if r.passed is False else cpl.core.Msg.info
                log(self._name, f"QC {r.qc.name} = {r.formatted()} {r.qc.unit} {r.status}")
            return self._save(frameset, used, md, filename)
        except SoxsError as exc:
            raise _cpl_error(exc) from None

    def _save(self, frameset, used, md, filename: str) -> cpl.ui.FrameSet:
        """Write the product with cpl.dfs, whole or not at all (staged under
        its own name, as cpl.dfs records it in PIPEFILE, then moved into
        place by the shared publishing path)."""
        tag = md.product_tag
        applist = _propertylist(product_cards(md) + qc_cards(md))
        first = next(f for f in used if Path(f.file).name == md.frameset.first.path.name)
        publisher = ProductSet(overwrite=True, lock_dir=Path("."))   # esorex overwrites
        try:
            tmp = str(publisher.stage(Path(filename), same_name=True))
            cpl.dfs.save_propertylist(frameset, self.parameters, cpl.ui.FrameSet(used),
                                      self._name, applist, soxs_lib.PIPE_ID, tmp,
                                      None, first)
            heads, data = extension_headers(), extension_data(md)
            for name, header in heads.items():
                cards = [(c.keyword, c.value, c.comment) for c in header.cards]
                cpl.core.Image(data[name]).save(tmp, _propertylist(cards),
                                                cpl.core.io.EXTEND)
            publisher.commit()
        finally:
            publisher.abort()
        return cpl.ui.FrameSet([cpl.ui.Frame(
            filename, tag=tag, group=cpl.ui.Frame.FrameGroup.PRODUCT,
            level=cpl.ui.Frame.FrameLevel.FINAL, frameType=cpl.ui.Frame.FrameType.IMAGE)])
