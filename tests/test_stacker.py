"""``soxs mdark`` stacks in a child forked as it starts (pipeline/stacker.py):
the master it makes is the one the run makes in-process, for plain and
compressed frames and with a master bias; and where the child cannot run,
the run stacks in-process."""

import gzip
import os
from pathlib import Path
import subprocess
import sys

from astropy.io import fits
import numpy as np
import pytest

from conftest import reduce

SOXS = Path(sys.executable).with_name("soxs")


def _soxs_mdark(sof: Path, out: Path) -> tuple[Path, str]:
    res = subprocess.run([str(SOXS), "mdark", str(sof), "-o", str(out)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode in (0, 5), res.stderr
    [product] = (out / "products/soxs_mdark").glob("*.fits")
    [log] = (out / "products/soxs_mdark").glob("*_log.txt")
    return product, log.read_text()


def _same_master(product: Path, md) -> None:
    with fits.open(product) as h:
        np.testing.assert_array_equal(h["FLUX"].data, md.flux)
        np.testing.assert_array_equal(h["ERR"].data, md.err)
        np.testing.assert_array_equal(h["QUAL"].data, md.qual)


def _gzipped(truth, folder: Path) -> Path:
    folder.mkdir()
    lines = []
    for p in truth.paths:
        dst = folder / (p.name + ".gz")
        dst.write_bytes(gzip.compress(p.read_bytes(), compresslevel=1))
        lines.append(f"{dst.name} DARK_VIS\n")
    (folder / "mdark.sof").write_text("".join(lines))
    return folder / "mdark.sof"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the child needs /proc")
@pytest.mark.parametrize("form", ["plain", "gzip", "master bias"])
def test_the_stacking_child_makes_the_master_made_in_process(vis_small, tmp_path, form):
    truth, sof = vis_small
    if form == "gzip":           # decompressed copies, read through /proc/<pid>/fd
        sof = _gzipped(truth, tmp_path / "gz")
    elif form == "master bias":  # the bias planes go through the shared memory
        r = fits.getdata(truth.paths[0])
        hdus = fits.HDUList([fits.PrimaryHDU(),
                             fits.ImageHDU(np.full(r.shape, np.mean(truth.bias_adu), np.float32),
                                           name="FLUX"),
                             fits.ImageHDU(np.full(r.shape, 0.5, np.float32), name="ERR")])
        hdus[0].header["HIERARCH ESO PRO CATG"] = "MASTER_BIAS_VIS"
        hdus[1].header["BUNIT"] = "adu"
        hdus.writeto(tmp_path / "mbias.fits")
        sof = tmp_path / "with_bias.sof"
        sof.write_text("".join(f"{p} DARK_VIS\n" for p in truth.paths)
                       + f"{tmp_path / 'mbias.fits'} MASTER_BIAS_VIS\n")
    product, log = _soxs_mdark(sof, tmp_path / "ws")
    assert "stacked in a child process" in log
    assert "timeline: import" in log and "; stacking " in log
    _same_master(product, reduce(sof))


def test_without_memory_to_share_the_run_stacks_in_process(vis_small, tmp_path):
    # a file size limit counts the shared memory (13 bytes a pixel): with a
    # limit below it but above the product's size, the child gives way and
    # the run goes on
    truth, sof = vis_small
    md = reduce(sof)
    product, _ = _soxs_mdark(sof, tmp_path / "ws0")
    shared, size = 13 * md.flux.size, product.stat().st_size
    assert size < shared
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "limit = int(sys.argv[3]); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)); "
            "sys.argv = ['soxs', 'mdark', sys.argv[1], '-o', sys.argv[2]]; "
            "from soxs_lib.cli.console import entry; entry()")
    res = subprocess.run([sys.executable, "-c", code, str(sof), str(tmp_path / "ws"),
                          str((size + shared) // 2)],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert res.returncode == 0, res.stderr
    [product] = (tmp_path / "ws/products/soxs_mdark").glob("*.fits")
    [log] = (tmp_path / "ws/products/soxs_mdark").glob("*_log.txt")
    assert "stacked in this process (no memory to share" in log.read_text()
    _same_master(product, md)


class _Spy:
    """A helper that is ready after ``after`` frames, measures pairs with the
    compiled sort in this process, and counts them."""

    def __init__(self, after):
        from soxs_lib.core import stats
        self.after, self.calls, self.got = after, 0, {}
        self._noise = lambda a, b, s, i: stats.pair_noise(a, b, s, i)

    def ready(self):
        self.calls += 1
        return self.calls > self.after

    def pair(self, k, a, b, sigma, iterations):
        self.got[k] = self._noise(a, b, sigma, iterations)

    def per_pair(self):
        return dict(self.got)


@pytest.mark.parametrize("after", [0, 2, 99])
def test_pairs_measured_by_a_helper_are_the_pairs_measured_here(nir, after):
    from soxs_lib.config import params
    from soxs_lib.core.calibration import calibration
    from soxs_lib.core.measure import measure_frames
    from soxs_lib.io import frames
    truth, sof = nir
    fs = frames.load_frameset(frames.collect_inputs([str(sof)]))
    values, cal = params.resolve({}), calibration(fs)
    here = measure_frames(fs, values, cal)
    spy = _Spy(after)
    there = measure_frames(fs, values, cal, spy)
    npairs = len(fs.raws) - 1
    assert len(spy.got) == max(0, npairs - after)        # the pairs once it was ready
    assert there.per_pair == here.per_pair and there.s_t == here.s_t
    assert [s for s, _ in there.stats] == [s for s, _ in here.stats]


_PAIRS_IN_THE_CHILD = """
import os, signal, sys, time
import numpy as np
from soxs_lib.core import stats
from soxs_lib.pipeline.stacker import StackProcess
rng = np.random.default_rng(5)
a, b, c = (rng.normal(2.0, 7.0, (40, 500)).astype(np.float32) for _ in range(3))
stacker = StackProcess()
try:
    assert stacker.usable
    deadline = time.monotonic() + 120
    while not stacker.ready():                # never waits: polled
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stacker.pair(0, a, b, 3.0, 5)
    stacker.pair(1, b, c, 3.0, 5)
    got = stacker.per_pair()
    assert got == {0: stats.pair_noise(a, b, 3.0, 5), 1: stats.pair_noise(b, c, 3.0, 5)}, got
    os.kill(stacker._child.pid, signal.SIGKILL)
    stacker.pair(2, a, c, 3.0, 5)             # to a dead child: no error yet
    try:
        stacker.per_pair()
    except RuntimeError as exc:
        print("ended:", exc)
finally:
    stacker.cancel()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the child needs /proc")
def test_the_stacking_child_measures_pairs_once_loaded_and_reports_its_end():
    res = subprocess.run([sys.executable, "-c", _PAIRS_IN_THE_CHILD], capture_output=True,
                         text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert res.returncode == 0, res.stderr
    assert "ended: worker process ended with status" in res.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the child needs /proc")
def test_a_shared_plane_goes_to_a_child_as_where_it_lies():
    import mmap
    import pickle
    from soxs_lib.pipeline.stacker import SharedPlane
    from soxs_lib.runtime.child import Child
    size = 4 * 4096
    fd = os.memfd_create("test")
    try:
        os.ftruncate(fd, size)
        buf = mmap.mmap(fd, size)
        plane = np.frombuffer(buf, np.float32, 120, 4096).reshape(10, 12)
        plane[...] = np.arange(120, dtype=np.float32).reshape(10, 12)
        plane[3, 4] = np.nan
        message = pickle.dumps(SharedPlane(f"/proc/{os.getpid()}/fd/{fd}", size, 4096, plane))
        assert len(message) < 300                  # where it lies, not its values
        got = Child(lambda: pickle.loads(message).copy()).result()
        np.testing.assert_array_equal(got, plane)
    finally:
        os.close(fd)


def test_a_frame_cut_short_before_the_child_maps_it_is_refused_by_name(small_set):
    """The child maps each frame: one truncated after it was checked is an
    InputError naming it, never a read past its end."""
    from soxs_lib.config.errors import Truncated
    from soxs_lib.io.rawimage import RawImage
    truth, _ = small_set
    path = truth.paths[1]
    img = RawImage(path)
    source = img.source()
    img.close()
    np.testing.assert_array_equal(source.open().read_rows_raw(0, 2), img.read_rows_raw(0, 2))
    os.truncate(path, path.stat().st_size - 2880)
    with pytest.raises(Truncated, match=str(path.name)):
        source.open()


def _mapped_kb(path: Path) -> int:
    """Resident kB of this process's mappings of ``path`` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5:     # a mapping's first line
            inside = len(fields) >= 6 and fields[5] == str(path)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs /proc")
def test_a_mapped_frame_keeps_only_the_rows_being_read_mapped(nir):
    """Read in blocks of rows, a frame's pages before the block asked for
    the time before are let go: the memory a frame holds is about two
    blocks (the one the kernel reads, the next), not the frame (16 MB)."""
    from soxs_lib.io.rawimage import RawImage
    truth, _ = nir
    path = truth.paths[0].resolve()
    img = RawImage(path)
    reader = img.source().open()
    rows, ncol = img.shape
    block = 64
    frame_kb = rows * ncol * img.dtype.itemsize // 1024
    most = 0
    for r in range(0, rows, block):
        total = float(reader.read_rows_raw(r, min(r + block, rows)).sum())
        assert np.isfinite(total)
        most = max(most, _mapped_kb(path))
    block_kb = block * ncol * img.dtype.itemsize // 1024
    # pages are mapped in the page cache's folios (up to 2 MB here)
    assert 0 < most <= 2 * block_kb + 4096 and most < frame_kb // 2
    np.testing.assert_array_equal(reader.read_rows_raw(0, 3), img.read_rows_raw(0, 3))
    reader.close()
    img.close()


_CUT_WHILE_MAPPED = """
import os, sys
from soxs_lib.io import rows
real_open, victim = rows.RowSource.open, sys.argv[1]
def open_then_cut(self):
    reader = real_open(self)
    if self.path.endswith(victim):
        os.truncate(self.path, 4096)       # cut short once the child has mapped it
    return reader
rows.RowSource.open = open_then_cut
sys.argv = ["soxs", "mdark", sys.argv[2], "-o", sys.argv[3]]
from soxs_lib.cli.console import entry
entry()
"""


def test_a_frame_cut_short_while_the_child_reads_it_is_named(small_set, tmp_path):
    """A mapped frame cut short under the child ends it with SIGBUS: the run
    names the frame (exit 2), as a frame found short when it is read, and
    leaves no product."""
    truth, sof = small_set
    victim = truth.paths[1].name
    res = subprocess.run([sys.executable, "-c", _CUT_WHILE_MAPPED, victim, str(sof),
                          str(tmp_path / "ws")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    assert f"{victim}: truncated" in res.stderr and "the file has 4096" in res.stderr
    assert not list((tmp_path / "ws").rglob("*.fits"))
