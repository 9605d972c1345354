"""The SOXS QC monitor's contract on a reduced night, checked with SQL as the
monitor reads it; the database created and migrated in one transaction."""

from __future__ import annotations

from pathlib import Path
import shutil
import sqlite3
import subprocess
import sys
import textwrap

from astropy.io import fits
import pytest
import yaml

from soxs_lib.night import db as dbmod, monitor
from soxs_lib.night.classify import night_of
from soxs_lib.io.simulate import simulate_darks

SOXS = Path(sys.executable).with_name("soxs")
ROOT = Path(__file__).resolve().parents[1]

# the monitor's preflight (qc_monitor/schema.py): these columns, by these names
MONITOR_COLUMNS = [
    "night start date", "obs_date_utc", "eso seq arm", "soxspipe_recipe", "qc_name",
    "qc_value", "qc_order", "qc_unit", "qc_flag", "qc_value_min", "qc_value_max",
    "sof_name", "file", "status", "binning", "rospeed", "slit", "slitmask", "lamp",
    "exptime", "template", "object", "filepath"]
# rows it drops (and holds their night open for) when one of these is empty
REQUIRED = ["night start date", "obs_date_utc", "eso seq arm", "qc_value",
            "soxspipe_recipe", "qc_name"]
# its NIR dark plots (configs/plots/datapoint_queries.yaml), by exact equality
NIR_DARK = """SELECT "night start date", qc_value, exptime, qc_unit, file
    FROM quality_control_plus_lite
    WHERE soxspipe_recipe = 'soxs-mdark' AND qc_name = ? AND "eso seq arm" = 'NIR'
      AND rospeed = '3' AND qc_order = '-1' AND exptime = ?"""
MONITOR_EXPTIMES = (2.0, 5.0, 10.0, 15.0, 60.0, 120.0, 300.0, 600.0, 900.0)

# (arm, EXPTIME, readout, binning, start)
SETS = (("NIR", 300.0, None, 1, "2026-01-11T21:10:00"),
        ("NIR", 60.0, None, 1, "2026-01-12T02:05:00"),
        ("VIS", 600.0, "SHG", 2, "2026-01-11T20:30:00"),
        ("VIS", 300.0, "FHG", 2, "2026-01-12T06:45:00"))


def _night(root: Path) -> Path:
    raw = root / "raw" / "2026-01-11"
    for k, (arm, exptime, readout, binning, start) in enumerate(SETS):
        simulate_darks(raw, arm=arm, nframes=3, exptime=exptime, readout=readout,
                       binning=binning, seed=70 + k, start=start, write_sof=False,
                       cosmics_per_frame=10, prefix=f"SOXS_{k}")
    return root


def _run(*args):
    res = subprocess.run([str(SOXS), *map(str, args)], capture_output=True, text=True,
                         timeout=600)
    assert "Traceback" not in res.stderr, res.stderr
    return res


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    ws = _night(tmp_path_factory.mktemp("monitor") / "ws")
    assert _run("prep", ws).returncode == 0
    res = _run("reduce", "all", ws, "-j", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    conn = sqlite3.connect(f"file:{ws / 'soxs.db'}?mode=ro", uri=True)
    yield ws, conn
    conn.close()


def test_the_view_has_exactly_the_monitors_columns(reduced):
    _, conn = reduced
    cols = [r[1] for r in conn.execute(f"PRAGMA table_info({monitor.VIEW})")]
    assert cols == MONITOR_COLUMNS


@pytest.mark.parametrize("qc_name, keyword", [("MDARK MEDIAN", "ESO QC MDARK MEDIAN"),
                                              ("RAW RON", "ESO QC RAW RON")])
def test_the_monitors_nir_dark_plots_find_every_nir_set(reduced, qc_name, keyword):
    ws, conn = reduced
    for arm, exptime, _, _, start in SETS:
        assert exptime in MONITOR_EXPTIMES
        if arm != "NIR":
            continue
        rows = conn.execute(NIR_DARK, (qc_name, exptime)).fetchall()
        assert len(rows) == 1, (qc_name, exptime)
        night, value, exp, unit, file = rows[0]
        prod = next((ws / "products").rglob(file))          # reduced_products_search: recursive
        h = fits.getheader(prod)
        assert value == pytest.approx(h[keyword], rel=1e-6)
        assert (exp, unit) == (exptime, "electrons")
        assert night == night_of(h["MJD-OBS"]) == ("2026-01-11")
        assert file.startswith(start.replace("-", "").replace(":", "")[:15] + "_NIR_3_MDARK_")


def test_no_row_the_monitor_would_drop_or_see_twice(reduced):
    _, conn = reduced
    rows = conn.execute(f'SELECT {", ".join(f"[{c}]" for c in REQUIRED)} '
                        f"FROM {monitor.VIEW}").fetchall()
    assert len(rows) > 0
    assert all(v is not None and str(v).strip() for row in rows for v in row)
    identity = conn.execute(
        f'SELECT obs_date_utc, soxspipe_recipe, qc_name, "eso seq arm", qc_order, file, '
        f"count(*) FROM {monitor.VIEW} GROUP BY 1, 2, 3, 4, 5, 6 HAVING count(*) > 1")
    assert identity.fetchall() == []


def test_each_row_is_filled_as_soxspipe_fills_its_dark_recipes(reduced):
    ws, conn = reduced
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(f"SELECT * FROM {monitor.VIEW}").fetchall()
    finally:
        conn.row_factory = None
    names = {r["qc_name"] for r in rows}
    assert "HOTPIX NUM" not in names and {"HOTPIX FRAC", "MASTER RON"} <= names
    assert len({r["sof_name"] for r in rows}) == len(SETS)
    for r in rows:
        prod = ws / "products" / "soxs_mdark" / r["file"]
        h = fits.getheader(prod)
        arm = h["ESO SEQ ARM"]
        assert r["eso seq arm"] == arm and r["soxspipe_recipe"] == "soxs-mdark"
        assert r["qc_order"] == "-1" and r["status"] == "pass"
        assert r["sof_name"] == prod.stem + ".sof" and Path(r["filepath"]) == prod
        assert r["rospeed"] == str(h["ESO DET READ CURID"])
        assert r["binning"] == ("2x2" if arm == "VIS" else None)
        assert r["exptime"] == h["EXPTIME"]
        assert (r["template"], r["object"]) == (h["ESO TPL ID"], h["OBJECT"])
        assert (r["slit"], r["slitmask"], r["lamp"]) == (None, None, None)
        assert r["obs_date_utc"] == h["DATE-OBS"]
        key = f"ESO QC {r['qc_name']}"
        assert r["qc_value"] == pytest.approx(h[key], rel=1e-6)
        status = h.get(f"{key} STATUS")
        assert r["qc_flag"] == ("fail" if status == "FAIL" else "pass")
        if status is not None:
            lo, hi = (float(x) for x in h.comments[f"{key} STATUS"].strip("range []")
                      .split(","))
            assert (r["qc_value_min"], r["qc_value_max"]) == (lo, hi)
        unit = {"MDARK MEDIAN": "electrons", "RAW RON": "electrons",
                "MASTER RON": "electrons", "DETECTOR TEMP": "kelvin", "HOTPIX FRAC": ""}
        if r["qc_name"] in unit:
            assert r["qc_unit"] == unit[r["qc_name"]]


def test_a_failed_qc_is_flagged_fail(reduced, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(reduced[0] / "raw", ws / "raw")
    settings = tmp_path / "tight.yaml"
    settings.write_text("soxs_mdark:\n  qc-acceptable-ranges:\n    raw-ron: [0, 1]\n")
    assert _run("prep", ws).returncode == 0
    assert _run("reduce", "all", ws, "-s", settings, "-j", "2").returncode == 5
    with sqlite3.connect(ws / "soxs.db") as conn:
        flags = dict(conn.execute(f"SELECT qc_flag, count(*) FROM {monitor.VIEW} "
                                  "WHERE qc_name = 'RAW RON' GROUP BY 1").fetchall())
        other = conn.execute(f"SELECT DISTINCT qc_flag FROM {monitor.VIEW} "
                             "WHERE qc_name = 'MDARK MEDIAN'").fetchall()
    assert flags == {"fail": len(SETS)} and other == [("pass",)]


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def test_the_docs_show_the_monitor_configuration_soxs_prints(tmp_path):
    text = (ROOT / "docs" / "qc.md").read_text()
    assert monitor.config_yaml() in text
    ws = tmp_path / "ws"
    ws.mkdir()
    res = _run("qc", "monitor-config", ws)
    assert res.returncode == 0
    assert res.stdout == monitor.config_yaml(ws.resolve())
    cfg = yaml.safe_load(res.stdout)
    # the monitor publishes under <output_dir>/.qc-publication/ and refuses that
    # folder inside, or above, the folders it reads (qc_monitor/publication.py)
    publication = Path(cfg["plots"]["output_dir"]) / ".qc-publication"
    for key in ("upstream_root", "reduced_root"):
        assert not _overlaps(publication, Path(cfg["paths"][key]))
    assert Path(cfg["plots"]["html_output"]).parent == publication.parent.parent
    assert Path(cfg["paths"]["upstream_root"]) == ws.resolve()
    assert Path(cfg["paths"]["reduced_root"]) == ws.resolve() / "products"


def test_a_monitor_output_inside_the_workspace_is_refused(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    for inside in (ws / "qc", ws, tmp_path):
        res = _run("qc", "monitor-config", ws, "--output", inside)
        assert res.returncode == 2 and res.stdout == ""
        assert f"{inside.resolve()}: the QC monitor's output must be outside" in res.stderr
    res = _run("qc", "monitor-config", ws, "--output", tmp_path / "qcmon")
    assert res.returncode == 0
    assert yaml.safe_load(res.stdout)["paths"]["qc_database"] == \
        str(tmp_path.resolve() / "qcmon" / "qc.sqlite")


@pytest.mark.parametrize("path", ["/srv/op night/ws", "/data/run #2/ws", "/data/a: b/ws",
                                  "/data/it's/ws", "/data/[x]/ws", "/data/é/ws"])
def test_the_monitor_configuration_reads_back_every_folder_name(path):
    cfg = yaml.safe_load(monitor.config_yaml(Path(path)))
    out = Path(path).parent / (Path(path).name + "-qc-monitor")
    assert cfg["paths"] == {"upstream_root": path, "reduced_root": f"{path}/products",
                            "qc_database": str(out / "qc.sqlite")}
    assert (cfg["plots"]["output_dir"], cfg["plots"]["html_output"]) == (
        str(out / "plots"), str(out / "index.html"))


@pytest.mark.parametrize("path, token", [("/data/soxs/ws", None), ("/data/test_night/ws", "test"),
                                         ("/scratch/TMP/ws", "tmp")])
def test_a_workspace_the_monitor_takes_for_test_data_is_allowed_by_name(path, token):
    cfg = monitor.config_yaml(Path(path))
    acquisition = yaml.safe_load(cfg)["acquisition"]
    if token is None:
        assert "allow_suspicious_paths" not in acquisition
    else:
        assert acquisition["allow_suspicious_paths"] is True
        assert f"the path holds '{token}'" in cfg


# -- creating and migrating the database: one transaction ---------------------------------

V1 = (
    """CREATE TABLE raw_frames (path TEXT PRIMARY KEY, size INTEGER, mtime REAL, kind TEXT,
    reason TEXT, complete INTEGER, arm TEXT, exptime REAL, readout TEXT, readout_id TEXT,
    binning TEXT, night TEXT, tpl_start TEXT, tpl_nexp INTEGER, mjd_obs REAL,
    date_obs TEXT, sof TEXT)""",
    """CREATE TABLE sets (sof TEXT PRIMARY KEY, arm TEXT, exptime REAL, readout TEXT,
    binning TEXT, night TEXT, tpl_start TEXT, nframes INTEGER, nexp INTEGER, status TEXT,
    first_date_obs TEXT, bias TEXT, updated_utc TEXT)""",
    """CREATE TABLE products (sof TEXT PRIMARY KEY, path TEXT, status TEXT, error TEXT,
    exit_status INTEGER, reduction_date_utc TEXT, seconds REAL, inputs_mtime REAL)""",
    """CREATE TABLE quality_control (id INTEGER PRIMARY KEY AUTOINCREMENT, recipe TEXT,
    product TEXT, sof TEXT, qc_name TEXT, qc_value REAL, qc_unit TEXT, qc_comment TEXT,
    qc_min REAL, qc_max REAL, qc_status TEXT, obs_date_utc TEXT, reduction_date_utc TEXT)""",
    "CREATE INDEX quality_control_sof ON quality_control (sof)",
    "CREATE INDEX quality_control_name ON quality_control (qc_name, obs_date_utc)",
)
OLD_SOF = "20260111T211000_NIR_1X1_NDR_MDARK_300S_SOXS.sof"


def _v1(ws: Path) -> None:
    ws.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(ws / "soxs.db") as conn:
        for sql in V1:
            conn.execute(sql)
        conn.execute("INSERT INTO raw_frames (path, size, mtime, kind, readout_id, sof) "
                     "VALUES ('/r/a.fits', 1, 5.0, 'DARK_NIR', '3', ?)", (OLD_SOF,))
        conn.execute("INSERT INTO sets (sof, arm, exptime, night, status) "
                     "VALUES (?, 'NIR', 300.0, '2026-01-11', 'ready')", (OLD_SOF,))
        conn.execute("INSERT INTO quality_control (sof, qc_name, qc_value, obs_date_utc) "
                     "VALUES (?, 'RAW RON', 7.3, '2026-01-11T21:10:00.000')", (OLD_SOF,))
        conn.execute("PRAGMA user_version = 1")


def test_a_version_1_database_is_migrated_keeping_its_rows(tmp_path):
    _v1(tmp_path)
    dbmod.Database(tmp_path).close()
    with sqlite3.connect(tmp_path / "soxs.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == dbmod.SCHEMA_VERSION == 2
        assert conn.execute("SELECT sof, readout_id FROM sets").fetchall() == [(OLD_SOF, "3")]
        assert conn.execute("SELECT mtime FROM raw_frames").fetchall() == [(None,)]
        assert conn.execute("SELECT qc_value FROM quality_control").fetchall() == [(7.3,)]
        assert conn.execute(f"SELECT qc_value, rospeed FROM {monitor.VIEW}").fetchall() \
            == [(7.3, "3")]


def test_after_an_upgrade_prep_renames_the_sets_and_removes_their_old_sofs(tmp_path):
    ws = tmp_path / "ws"
    simulate_darks(ws / "raw", arm="NIR", nframes=3, seed=5, start="2026-01-11T21:10:00",
                   write_sof=False, cosmics_per_frame=5)
    _v1(ws)
    (ws / "sof").mkdir()
    (ws / "sof" / OLD_SOF).write_text("old\n")
    (ws / "sof" / "mine.sof").write_text("an operator's own SOF\n")
    res = _run("prep", ws)
    assert res.returncode == 0
    assert "1 SOF(s) written, 1 removed" in res.stdout and OLD_SOF in res.stdout
    assert sorted(p.name for p in (ws / "sof").iterdir()) == [
        "20260111T211000_NIR_3_MDARK_300_0S_SOXS.sof", "mine.sof"]
    with sqlite3.connect(ws / "soxs.db") as conn:
        assert conn.execute("SELECT sof, template FROM sets").fetchall() == [
            ("20260111T211000_NIR_3_MDARK_300_0S_SOXS.sof", "SOXS_gen_cal_Dark")]


KILL_AT = textwrap.dedent("""
    import os, signal, sys
    from soxs_lib.night import db

    class KillAfter(tuple):
        # the statements of the upgrade; SIGKILL once {n} of them have run
        def __iter__(self):
            for k, sql in enumerate(tuple.__iter__(self)):
                if k == {n}:
                    os.kill(os.getpid(), signal.SIGKILL)
                yield sql

    db.SCHEMA = KillAfter(db.SCHEMA)
    db.MIGRATIONS = {{v: KillAfter(s) for v, s in db.MIGRATIONS.items()}}
    db.Database(sys.argv[1])
""")


@pytest.mark.parametrize("n", [1, 3, 6])
def test_a_kill_while_the_database_is_created_leaves_none(tmp_path, n):
    res = subprocess.run([sys.executable, "-c", KILL_AT.format(n=n), str(tmp_path)])
    assert res.returncode == -9
    with sqlite3.connect(tmp_path / "soxs.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    dbmod.Database(tmp_path).close()                      # the next run creates it whole
    with sqlite3.connect(tmp_path / "soxs.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == dbmod.SCHEMA_VERSION
        assert conn.execute(f"SELECT count(*) FROM {monitor.VIEW}").fetchone()[0] == 0


@pytest.mark.parametrize("n", [2, 5, 7])
def test_a_kill_while_the_database_is_migrated_leaves_version_1(tmp_path, n):
    _v1(tmp_path)
    res = subprocess.run([sys.executable, "-c", KILL_AT.format(n=n), str(tmp_path)])
    assert res.returncode == -9
    with sqlite3.connect(tmp_path / "soxs.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert [r[1] for r in conn.execute("PRAGMA table_info(sets)")][-1] == "updated_utc"
        assert conn.execute("SELECT mtime FROM raw_frames").fetchall() == [(5.0,)]
    dbmod.Database(tmp_path).close()
    with sqlite3.connect(tmp_path / "soxs.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == dbmod.SCHEMA_VERSION
