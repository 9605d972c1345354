"""A lost or damaged ``soxs.db`` is set aside and rebuilt from the raw headers
and the products on disk: nothing is redone and the QC monitor's view holds
the rows it held (``night/rebuild.py``)."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from soxs_lib.cli import main as cli
from soxs_lib.night import rebuild
from soxs_lib.night.monitor import VIEW
from soxs_lib.night.watch import watch
from test_night import MINI, _reduce, make_mini

PAGE = 4096


def rows(ws, sql: str) -> list:
    conn = sqlite3.connect(ws / "soxs.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def state(ws) -> dict:
    """What the database holds that a rebuild must give back."""
    return {
        "view": rows(ws, f'SELECT * FROM {VIEW} ORDER BY sof_name, qc_name'),
        "quality_control": rows(ws, "SELECT recipe, product, sof, qc_name, qc_value, qc_unit, "
                                    "qc_comment, qc_min, qc_max, qc_status, obs_date_utc, "
                                    "reduction_date_utc FROM quality_control "
                                    "ORDER BY sof, qc_name"),
        "products": rows(ws, "SELECT sof, path, status, error, exit_status, "
                             "reduction_date_utc FROM products ORDER BY sof"),
        "sets": rows(ws, "SELECT sof, arm, exptime, readout, binning, night, tpl_start, "
                         "nframes, nexp, status, first_date_obs, bias, readout_id, template, "
                         "object FROM sets ORDER BY sof"),
        "raw_frames": rows(ws, "SELECT * FROM raw_frames ORDER BY path"),
    }


def products(ws) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in (ws / "products").rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    ws = make_mini(tmp_path_factory.mktemp("rebuild"))
    assert cli.main(["prep", str(ws)]) == 0
    assert _reduce(ws)[0] == 0
    assert cli.main(["prep", str(ws)]) == 0          # the sets say "reduced"
    return ws, state(ws), products(ws)


@pytest.fixture
def ws(night):
    """The reduced workspace, its database given back as it was afterwards."""
    ws, before, made = night
    db = ws / "soxs.db"
    saved = db.read_bytes()
    yield ws, before, made
    db.write_bytes(saved)
    for suffix in rebuild.COMPANIONS:
        (ws / f"soxs.db{suffix}").unlink(missing_ok=True)
    shutil.rmtree(ws / "backups", ignore_errors=True)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _zero_pages(path):
    data = bytearray(path.read_bytes())
    assert len(data) >= 4 * PAGE
    data[PAGE:len(data) - PAGE] = bytes(len(data) - 2 * PAGE)   # all but the first and last
    path.write_bytes(bytes(data))


DAMAGES = {
    "truncated": _truncate,
    "zeroed pages": _zero_pages,
    "not SQLite": lambda p: p.write_text("a text file where the database was\n" * 200),
    "missing": lambda p: p.unlink(),
}


def _nothing_redone(ws, made) -> None:
    status, out = _reduce(ws, "--json")
    assert status == 0, out
    assert products(ws) == made                       # no product written again
    import json
    sets = json.loads(out)["sets"]
    assert len(sets) == len(MINI) and all(s["up_to_date"] for s in sets)


@pytest.mark.parametrize("damage", DAMAGES)
def test_prep_sets_a_damaged_database_aside_and_loses_nothing(ws, damage, capsys):
    ws, before, made = ws
    db = ws / "soxs.db"
    DAMAGES[damage](db)
    damaged = db.read_bytes() if db.exists() else None
    if damaged is not None:
        assert rebuild.fault(db)                      # SQLite cannot read it whole
    assert cli.main(["prep", str(ws)]) == 0
    out = capsys.readouterr().out
    assert f"the reductions of {len(MINI)} set(s) recovered from their products" in out
    kept = sorted((ws / "backups").glob("soxs-*.db"))
    if damaged is None:
        assert "was missing" in out and kept == []
    else:
        assert "was damaged" in out and len(kept) == 1
        assert kept[0].read_bytes() == damaged        # kept as it was, under a dated name
        assert str(kept[0].relative_to(ws)) in out
    assert state(ws) == before
    assert rebuild.fault(db) == ""
    _nothing_redone(ws, made)


def test_prep_refresh_rebuilds_a_sound_database(ws, capsys):
    ws, before, made = ws
    sound = (ws / "soxs.db").read_bytes()
    assert cli.main(["prep", str(ws), "--refresh"]) == 0
    assert "refreshed: made anew" in capsys.readouterr().out
    [kept] = (ws / "backups").glob("soxs-*.db")
    assert kept.read_bytes() == sound
    assert state(ws) == before
    _nothing_redone(ws, made)
    # a second prep uses the database as it is: nothing set aside again
    assert cli.main(["prep", str(ws)]) == 0
    assert "made anew" not in capsys.readouterr().out
    assert len(list((ws / "backups").glob("*"))) == 1


def test_reduce_all_rebuilds_a_damaged_database_too(ws):
    ws, before, made = ws
    (ws / "soxs.db").write_bytes(b"\0" * 8 * PAGE)
    _nothing_redone(ws, made)
    after = state(ws)
    assert after["products"] == before["products"]
    assert after["quality_control"] == before["quality_control"]
    assert len(list((ws / "backups").glob("soxs-*.db"))) == 1


def test_a_watch_pass_rebuilds_a_damaged_database(ws):
    ws, before, made = ws
    _truncate(ws / "soxs.db")
    shown = []
    assert watch(ws, lambda found, _: shown.append(found.repair), interval=0,
                 passes=1) == 0
    assert len(shown) == 1 and len(shown[0].recovered) == len(MINI)
    assert state(ws) == before and products(ws) == made


def test_a_sound_database_and_a_new_workspace_are_left_alone(ws, tmp_path):
    ws, _, _ = ws
    assert rebuild.fault(ws / "soxs.db") == ""
    assert rebuild.fault(tmp_path / "soxs.db") == ""          # none yet: nothing to repair
    db, repair = rebuild.open_database(tmp_path)
    db.close()
    assert repair is None and not (tmp_path / "backups").exists()


def test_the_journal_of_a_killed_writer_is_rolled_back_not_taken_for_damage(ws):
    """A writer killed inside a transaction leaves a hot journal: SQLite rolls
    it back on the next opening, and the database is sound again."""
    import subprocess
    import sys
    ws, before, _ = ws
    code = ("import os, signal, sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('PRAGMA cache_size=1')\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "c.execute(\"UPDATE quality_control SET qc_value = -1, qc_comment = "
            "printf('%.2000c', 'x')\")\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    res = subprocess.run([sys.executable, "-c", code, str(ws / "soxs.db")])
    assert res.returncode == -9
    assert (ws / "soxs.db-journal").stat().st_size > 0          # hot: the writer died
    assert rebuild.fault(ws / "soxs.db") == ""
    assert state(ws) == before and not (ws / "backups").exists()
