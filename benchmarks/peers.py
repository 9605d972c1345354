"""The benchmark's peers, set up where they are missing: soxspipe in its own
Python 3.12 virtual environment (``benchmarks/venv-soxspipe312``), ESO's esorex and
hawki_cal_dark from Debian's packages; their versions; and the paths and
helpers the benchmark shares."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
WORK = HERE / "work"
# soxspipe 0.19.0 needs Python 3.12 or 3.13 (its prep opens SQLite with
# autocommit=); its dependency fundamentals imports six without declaring it
VENV_SP = HERE / "venv-soxspipe312"
SOXSPIPE_VERSION = "0.19.0"
SOXSPIPE_PYTHON = (3, 12)
SOXS = ROOT / ".venv" / "bin" / "soxs"
PY = Path(sys.executable)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# --------------------------------------------------------------------------- utils
def log(msg: str) -> None:
    print(msg, flush=True)


def sh(cmd, **kw) -> subprocess.CompletedProcess:
    # esorex writes esorex.log into its cwd: keep every helper call in WORK
    WORK.mkdir(parents=True, exist_ok=True)
    kw.setdefault("cwd", WORK)
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def tail(path: Path, n: int = 12) -> str:
    try:
        lines = ANSI.sub("", path.read_text(errors="replace")).splitlines()
    except OSError:
        return ""
    return "\n".join("      | " + l for l in lines[-n:])


# ------------------------------------------------------------------ set up the peers
def python_at_least(major: int, minor: int) -> str | None:
    """A Python interpreter of at least that version on this machine, or None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = []
    for m in range(minor, minor + 4):
        candidates.append(shutil.which(f"python{major}.{m}"))
        # a pyenv shim answers only for its selected version: the install itself
        candidates += sorted(str(p) for p in pyenv.glob(f"{major}.{m}.*/bin/python{major}"))
    for exe in filter(None, candidates):
        if sh([exe, "-c", f"import sys; sys.exit(sys.version_info < ({major}, {minor}))"]
              ).returncode == 0:
            return exe
    return None


def ensure_soxspipe(venv: Path = VENV_SP) -> Path:
    """Install soxspipe into its own virtual environment ``venv``, made with a
    Python of at least ``SOXSPIPE_PYTHON`` found on this machine."""
    exe = venv / "bin" / "soxspipe"
    vpy = venv / "bin" / "python"
    check = ("import importlib.metadata as m, six; print(m.version('soxspipe'))")
    if vpy.exists():
        r = sh([vpy, "-c", check])
        if r.returncode == 0 and r.stdout.strip() == SOXSPIPE_VERSION and exe.exists():
            return exe
    base = python_at_least(*SOXSPIPE_PYTHON)
    if base is None:
        raise RuntimeError(f"soxspipe {SOXSPIPE_VERSION} needs Python "
                           f"{'.'.join(map(str, SOXSPIPE_PYTHON))} or later: none found")
    log(f"installing soxspipe=={SOXSPIPE_VERSION} into {venv} (python {base}) ...")
    if venv.exists():
        shutil.rmtree(venv)               # another soxspipe, or a half-made one
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([vpy, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([vpy, "-m", "pip", "install", "--quiet",
                    f"soxspipe=={SOXSPIPE_VERSION}", "six"], check=True)
    r = sh([vpy, "-c", check])
    if r.returncode != 0 or r.stdout.strip() != SOXSPIPE_VERSION:
        raise RuntimeError(f"soxspipe install failed: {r.stderr.strip()[-500:]}")
    return exe


def soxspipe_default_settings() -> Path:
    """The default settings of soxspipe (``soxs_default_settings.yaml``) as a
    copy in ``WORK`` whose log file is there too: the package's points into
    its author's home folder."""
    import yaml
    r = sh([VENV_SP / "bin" / "python", "-c",
            "import soxspipe, os; print(os.path.dirname(soxspipe.__file__))"])
    path = Path(r.stdout.strip()) / "soxs_default_settings.yaml"
    if not path.exists():
        raise RuntimeError(f"soxspipe default settings not found at {path}")
    settings = yaml.safe_load(path.read_text())
    settings["logging settings"]["handlers"]["file"]["filename"] = str(WORK / "soxspipe.log")
    copy = WORK / "soxspipe_default_settings.yaml"
    WORK.mkdir(parents=True, exist_ok=True)
    copy.write_text(yaml.safe_dump(settings, sort_keys=False))
    return copy


def hawki_available() -> bool:
    if not shutil.which("esorex"):
        return False
    r = sh(["esorex", "--recipes"])
    return "hawki_cal_dark" in r.stdout


def apt_get(args, tries: int = 60, wait: float = 20.0) -> subprocess.CompletedProcess:
    """apt-get, waiting while another process holds the dpkg/apt lock."""
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for i in range(tries):
        r = subprocess.run(prefix + ["apt-get"] + args, capture_output=True, text=True, env=env)
        if r.returncode == 0:
            return r
        if re.search(r"Could not get lock|Unable to acquire|lock-frontend|is held by process",
                     r.stderr):
            log(f"  apt/dpkg lock busy (another process); waiting {wait:.0f}s ({i + 1}/{tries})")
            time.sleep(wait)
            continue
        return r
    return r


def ensure_hawki() -> bool:
    if hawki_available():
        return True
    log("installing esorex and cpl-plugin-hawki with apt-get ...")
    r = apt_get(["install", "-y", "esorex", "cpl-plugin-hawki"])
    if r.returncode != 0:
        apt_get(["update"])
        r = apt_get(["install", "-y", "esorex", "cpl-plugin-hawki"])
    if r.returncode != 0:
        log(f"  apt-get failed: {r.stderr.strip()[-400:]}")
    return hawki_available()


def peer_versions(have_sp: bool, have_hawki: bool) -> list[str]:
    out = []
    r = sh([SOXS, "--version"])
    out.append(f"soxs: {(r.stdout or r.stderr).strip()}")
    if have_sp:
        r = sh([VENV_SP / "bin" / "python", "-c",
                "import importlib.metadata as m, numpy, platform; "
                "print(m.version('soxspipe'), numpy.__version__, platform.python_version())"])
        v = r.stdout.split()
        if len(v) == 3:
            out.append(f"soxspipe {v[0]} (numpy {v[1]}, python {v[2]}, {VENV_SP})")
    if have_hawki:
        r = sh(["esorex", "--version"])
        m = re.search(r"version\s+(\S+)", r.stdout)
        r2 = sh(["esorex", "--man-page", "hawki_cal_dark"])
        m2 = re.search(r"hawki_cal_dark -- version (\S+)", r2.stdout)
        out.append(f"esorex {m.group(1) if m else '?'}, hawki_cal_dark "
                   f"{m2.group(1) if m2 else '?'} (C, CPL)")
    return out


@dataclass
class Run:
    ok: bool
    rc: int
    wall: float
    rss_mb: float
    note: str = ""
    phases: dict = field(default_factory=dict)     # soxs: the run's timeline, s
    product: str = ""                              # the product it wrote


def run_measured(cmd, cwd: Path, log_path: Path, timeout: float) -> tuple[int, float, float]:
    """Run ``cmd``; return (exit code, wall s, child's peak RSS in MB)."""
    cwd.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT, env=os.environ.copy())
        timer = threading.Timer(timeout, proc.kill)   # our own child only
        timer.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc                      # already reaped: keep Popen from waiting
    return rc, wall, ru.ru_maxrss / 1024.0   # ru_maxrss is in KiB on Linux


# ---------------------------------------------------------------------- input data
