"""The QC plot's reduction of the master for display."""

import os

import numpy as np
import pytest

from soxs_lib.pipeline import plot
from soxs_lib.pipeline.plotter import PlotProcess, plot_data


def test_display_binning_is_the_median_of_each_block_with_data():
    rng = np.random.default_rng(5)
    flux = rng.normal(3.0, 2.0, (2048, 2048)).astype(np.float32)
    flux[10, 10] = np.nan                    # one pixel without data in a block
    flux[100:104, 200:204] = np.nan          # a block without any
    shown, f = plot.reduce_master(flux)
    assert f == 4 and shown.shape == (512, 512)
    blocks = flux.reshape(512, 4, 512, 4).swapaxes(1, 2).reshape(512, 512, 16)
    expect = np.median(blocks, axis=-1)
    expect[2, 2] = np.median(np.delete(blocks[2, 2], 10 % 4 * 4 + 10 % 4))
    assert np.isnan(shown[25, 50])
    expect[25, 50] = np.nan
    np.testing.assert_array_equal(shown, expect.astype(shown.dtype))


@pytest.mark.parametrize("shape", [(2047, 2041), (4096, 808), (1020, 1020)])
def test_display_binning_band_by_band_covers_every_block(shape):
    """The blocks are sorted a band of rows at a time: a last band cut short
    and blocks without data in any band give the median of each block."""
    rng = np.random.default_rng(shape[1])
    flux = rng.normal(3.0, 2.0, shape).astype(np.float32)
    flux[rng.random(shape) < 0.002] = np.nan
    f = plot.display_factor(shape)
    rows, cols = shape[0] // f, shape[1] // f
    flux[(rows - 1) * f:rows * f, :f] = np.nan      # a block without data, in the last band
    shown, f = plot.reduce_master(flux)
    blocks = flux[:rows * f, :cols * f].reshape(rows, f, cols, f).swapaxes(1, 2)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        expect = np.nanmedian(blocks.reshape(rows, cols, f * f), axis=-1)
    assert shown.shape == (rows, cols) and np.isnan(shown[-1, 0])
    np.testing.assert_array_equal(shown, expect.astype(shown.dtype))


def test_small_master_is_shown_unbinned():
    flux = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    shown, f = plot.reduce_master(flux)
    assert f == 1 and shown is flux


def _master_of_three(rng, n):
    """Mean of 3 frames in electrons (gain 1, per-frame bias removed): most
    pixels on the lattice of thirds, some (one sample clipped) on halves."""
    adu = rng.normal(0.0, 3.5, (n, 3)).round()
    bias = np.array([0.21, 0.43, 0.92])
    master = (adu - bias).mean(axis=1)
    clipped = rng.random(n) < 0.02
    master[clipped] = (adu[clipped, :2] - bias[:2]).mean(axis=1)
    return master.astype(np.float32)


def test_histogram_bins_follow_the_lattice_of_a_few_frames_mean():
    rng = np.random.default_rng(11)
    values = _master_of_three(rng, 2_000_000)
    edges = plot.histogram_edges(values, -20.0, 40.0)
    widths = np.diff(edges)
    np.testing.assert_allclose(widths, 1 / 3, rtol=1e-5)      # 0.3 aimed at: one step
    assert edges[0] <= -20.0 and edges[-1] >= 40.0
    counts, _ = np.histogram(values, edges)
    centres = (edges[:-1] + edges[1:]) / 2
    core = counts[np.abs(centres - np.median(values)) < 4]
    # each bin holds one point of the main lattice: the profile is smooth
    smooth = (core[:-2] + core[2:]) / 2
    assert np.all(np.abs(core[1:-1] - smooth) < 0.1 * smooth)
    plain, _ = np.histogram(values, bins=200, range=(-20.0, 40.0))
    pcentres = np.linspace(-20, 40, 401)[1::2]
    pcore = plain[np.abs(pcentres - np.median(values)) < 4]
    psmooth = (pcore[:-2] + pcore[2:]) / 2
    assert not np.all(np.abs(pcore[1:-1] - psmooth) < 0.1 * psmooth)   # what it cures


def test_histogram_of_values_off_any_lattice_has_even_bins():
    values = np.random.default_rng(2).normal(0.0, 2.0, 100_000)
    np.testing.assert_allclose(plot.histogram_edges(values, -20.0, 40.0),
                               np.linspace(-20.0, 40.0, 201))


def _png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


@pytest.mark.parametrize("forked", [True, False])
def test_the_plot_is_drawn_with_pixels_without_data(small_set, tmp_path, monkeypatch, forked):
    """In a forked child or, where fork is missing, in-process; a master with
    a hole (saturated in every frame: no data) still gets its plot."""
    from astropy.io import fits
    from soxs_lib.config import flags, params
    from soxs_lib.io import frames
    from soxs_lib.config import qc
    from soxs_lib.config.detector import detector
    from soxs_lib.core.mdark import make_master_dark
    if not forked:
        monkeypatch.delattr(os, "fork")
    truth, sof = small_set
    for path in truth.paths:
        with fits.open(path, mode="update") as h:
            h[0].data[40:80, 100:160] = detector("VIS").saturation
    fs = frames.load_frameset(frames.collect_inputs([str(sof)]))
    plotter = PlotProcess()
    assert (plotter.pid is not None) == forked
    try:
        md = make_master_dark(fs, params.resolve(), qc.default_ranges(fs.arm),
                              plotter.send_master)
        assert np.count_nonzero(md.qual & flags.NODATA) >= 1000
        out = tmp_path / "qc.png"
        plotter.submit(plot_data(md, "test"), out)
        plotter.wait()
    finally:
        plotter.cancel()
    assert _png_size(out) == plot.LAYOUTS["tall"].size    # VIS, tall and narrow


def test_a_forked_plotter_draws_the_png_an_in_process_one_draws(small_set, tmp_path,
                                                                monkeypatch):
    """The plot is the same whether a child draws it or the run itself
    (where fork is missing), and whether its histogram is drawn as soon as
    the master's level is known or with the rest."""
    from soxs_lib.io import frames
    from soxs_lib.config import params
    from soxs_lib.config import qc
    from soxs_lib.core.mdark import make_master_dark
    _, sof = small_set
    fs = frames.load_frameset(frames.collect_inputs([str(sof)]))
    md = make_master_dark(fs, params.resolve(), qc.default_ranges(fs.arm))
    fs.close()
    region = (0, md.flux.shape[0], 0, md.flux.shape[1])
    qcv = {r.qc.name: r.value for r in md.qc}
    pngs = []
    for forked, level in ((True, False), (True, True), (False, True), (False, False)):
        if not forked and hasattr(os, "fork"):
            monkeypatch.delattr(os, "fork")
        plotter = PlotProcess()
        assert (plotter.pid is not None) == forked
        try:
            plotter.send_master(md.flux, region)
            if level:
                plotter.send_level(qcv["MDARK MEDIAN"], qcv["MDARK RMS"],
                                   md.params.hot_pixel_sigma)
            out = tmp_path / f"qc{len(pngs)}.png"
            plotter.submit(plot_data(md, "test"), out)
            plotter.wait()
        finally:
            plotter.cancel()
        pngs.append(out.read_bytes())
    assert pngs[1] == pngs[0] and pngs[2] == pngs[0] and pngs[3] == pngs[0]


def _figure(shape, region):
    """A QC figure of a master of ``shape`` drawn as a run draws it."""
    rng = np.random.default_rng(3)
    flux = rng.normal(1.0, 2.0, shape).astype(np.float32)
    hot = rng.random(shape) < 0.002
    fig = plot.QCFigure(plot.layout_for(shape))
    fig.show_master(flux, region)
    d = dict(hot=np.packbits(hot), shape=shape, ksig=5.0, failed=[], title="x",
             qc={"MDARK MEDIAN": 1.0, "MDARK RMS": 2.0, "HOTPIX NUM": int(hot.sum()),
                 "HOTPIX FRAC": float(hot.mean())})
    return fig, d


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("shape, region, layout", [
    ((4096, 808), (0, 4096, 50, 858), "tall"),      # VIS, unbinned science region
    ((2048, 404), (0, 2048, 25, 429), "tall"),      # VIS binned 2x2
    ((2040, 2040), (4, 2044, 4, 2044), "wide"),     # NIR
])
def test_each_arm_gets_panels_laid_out_for_its_shape(tmp_path, shape, region, layout):
    fig, d = _figure(shape, region)
    assert plot.layout_for(shape) == layout
    plot.draw(fig, d, tmp_path / "qc.png")
    assert _png_size(tmp_path / "qc.png") == plot.LAYOUTS[layout].size
    width, height = plot.LAYOUTS[layout].size
    panels = [fig.panels[k] for k in ("master", "colorbar", "hist", "hot")]
    # panels and every text stay on the figure and off each other
    boxes = [p.box for p in panels]
    texts = [(k, role, b) for k, p in enumerate(panels) for role, b in p.texts]
    for i, a in enumerate(boxes):
        assert all(not _overlap(a, b) for b in boxes[i + 1:])
        # the histogram's legend is the one text inside a panel
        assert all(not _overlap(a, b) for _, role, b in texts if role != "legend")
    for k, (_, _, a) in enumerate(texts):
        assert 0 <= a[0] and a[2] <= width and 0 <= a[1] and a[3] <= height
        assert all(not _overlap(a, b) for _, _, b in texts[k + 1:]), a
    for name in ("master", "hot"):          # the master and the hot-pixel map
        box = fig.panels[name].box
        assert box[3] - box[1] > 0.6 * height               # tall enough to see the detector
        rows, cols = region[1] - region[0], region[3] - region[2]
        assert (box[2] - box[0]) / (box[3] - box[1]) == pytest.approx(cols / rows, rel=0.05)
        labels = [b for role, b in fig.panels[name].texts if role == "xtick"]
        assert len(labels) >= 2


@pytest.mark.parametrize("lo, hi, most, labels", [
    (0.0, 1.0, 4, ["0.00", "0.25", "0.50", "0.75", "1.00"]),
    (0.0, 10.0, 4, ["0.0", "2.5", "5.0", "7.5", "10.0"]),
    (3.5, 2043.5, 5, ["500", "1000", "1500", "2000"]),
    (-2.0, 2.0, 4, ["\u22122", "\u22121", "0", "1", "2"]),
])
def test_tick_labels_are_round_values_written_exactly(lo, hi, most, labels):
    from soxs_lib.pipeline.canvas import nice_ticks, tick_text
    ticks = nice_ticks(lo, hi, most)
    assert [tick_text(t, ticks[1] - ticks[0]) for t in ticks] == labels


def test_the_master_the_plot_is_sent_is_not_changed_after(small_set):
    """The plotting child may read the master where the stacking child wrote
    it: pixels without data stay NaN there, the product's are filled."""
    from astropy.io import fits
    from soxs_lib.config import flags, params, qc
    from soxs_lib.config.detector import detector
    from soxs_lib.core.mdark import make_master_dark
    from soxs_lib.io import frames
    truth, sof = small_set
    for path in truth.paths:
        with fits.open(path, mode="update") as h:
            h[0].data[40:80, 100:160] = detector("VIS").saturation
    fs = frames.load_frameset(frames.collect_inputs([str(sof)]))
    seen = []
    md = make_master_dark(fs, params.resolve(), qc.default_ranges(fs.arm),
                          lambda flux, _region: seen.append((flux, flux.copy())))
    fs.close()
    [(sent, copy)] = seen
    nodata = (md.qual & flags.NODATA) != 0
    assert nodata.sum() >= 1000
    np.testing.assert_array_equal(sent, copy)                 # not changed after
    assert np.isnan(sent[nodata]).all() and np.isfinite(md.flux).all()
