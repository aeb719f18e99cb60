"""The package as users install it: the built wheel in a fresh virtual environment, the version, the extras' hints."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from latentatlas import extras
from latentatlas.cli import main
from latentatlas.errors import LatentAtlasError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # pyright: ignore[reportMissingImports]  (installed on 3.10 only)

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_version_flag_prints_the_distribution_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"latentatlas {PROJECT['version']}"


@pytest.mark.parametrize(
    ("extra", "module"), [("faces", "dlib"), ("faces", "face_recognition_models"), ("tensorboard", "tensorboard")]
)
def test_every_extra_module_is_declared_by_its_extra(extra, module):
    assert module in extras.EXTRAS[extra]
    declared = " ".join(PROJECT["optional-dependencies"][extra]).replace("-", "_").lower()
    assert module.split("_")[0] in declared


def test_require_names_the_missing_module_and_the_extra(monkeypatch):
    monkeypatch.setitem(extras.EXTRAS, "faces", ("dlib", "no_such_module_latentatlas"))
    with pytest.raises(LatentAtlasError, match=r"need no_such_module_latentatlas: pip install 'latentatlas\[faces\]'"):
        extras.require("faces")
    assert extras.missing("tensorboard") == []  # installed here (the Makefile installs every extra)


def _commands_raising(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    import latentatlas.cli as cli

    def fail(args):
        raise exc

    monkeypatch.setattr(cli, "COMMANDS", [(name, text, arguments, fail) for name, text, arguments, _ in cli.COMMANDS])


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ImportError("No module named 'dlib'", name="dlib"), r"pip install 'latentatlas\[faces\]'"),
        (ImportError("x", name="tensorboard.compat"), r"pip install 'latentatlas\[tensorboard\]'"),
        (ImportError("libGL.so.1: cannot open shared object file", name=None), r"apt install libgl1"),
    ],
)
def test_import_errors_of_optional_parts_become_one_line(exc, expected, monkeypatch, capsys):
    _commands_raising(monkeypatch, exc)
    assert main(["encode", "somewhere"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("latentatlas: error: ")
    assert re.search(expected, err[0])


def test_other_import_errors_are_not_hidden(monkeypatch):
    _commands_raising(
        monkeypatch, ImportError("cannot import name 'x' from 'latentatlas.stats'", name="latentatlas.stats")
    )
    with pytest.raises(ImportError, match="cannot import name"):
        main(["encode", "somewhere"])


def _tracked_files() -> list[str]:
    """The files a release is built from: git's list in a checkout, else the tree without build outputs."""
    if (REPO / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [line for line in listed.splitlines() if (REPO / line).is_file()]
    skip = {".venv", "runs", "build", "dist", "__pycache__", ".pytest_cache"}
    return [
        str(p.relative_to(REPO))
        for p in REPO.rglob("*")
        if p.is_file() and not skip.intersection(p.relative_to(REPO).parts) and ".egg-info" not in str(p)
    ]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `python -m build` makes from a copy of the tracked files (the checkout stays untouched)."""
    source = tmp_path_factory.mktemp("source")
    for name in _tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    # --no-isolation: this environment's setuptools, so CI builds without downloading a build environment
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = dist.glob("latentatlas-*.whl")
    return wheel


def test_wheel_holds_every_package_file_and_the_entry_point(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    package_files = {name.removeprefix("src/") for name in _tracked_files() if name.startswith("src/latentatlas/")}
    assert package_files - names == set()
    assert {"latentatlas/report/templates/report.html.j2", "latentatlas/explorer/static/index.html"} <= names
    (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    assert "latentatlas = latentatlas.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def _fresh_environment(folder: Path) -> Path:
    """A new virtual environment whose own site-packages comes first and which sees this environment's
    packages behind it (torch & co. are not installed again); returns its python."""
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # plain paths in a .pth are appended after the venv's own site-packages; the .pth files inside them (this
    # environment's editable install of latentatlas) are not run, so only the wheel provides latentatlas
    parents = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(purelib) / "parent_environment.pth").write_text("\n".join(parents) + "\n")
    return python


@pytest.mark.slow
def test_wheel_in_a_fresh_environment_trains_encodes_and_analyzes(wheel, tmp_path):
    python = _fresh_environment(tmp_path / "env")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env |= {"LATENTATLAS_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "2", "PIP_NO_INDEX": "1"}

    def run(*command: str) -> str:
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
        return done.stdout

    run(str(python), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", "--no-cache-dir", str(wheel))
    cli = str(python.parent / "latentatlas")  # the console script the wheel's entry point made
    assert run(cli, "--version").strip() == f"latentatlas {PROJECT['version']}"
    # the package, the report's template and style and the explorer's page, found the way the installed code
    # finds them, all inside the fresh environment (a whole report takes longer than this test may)
    probe = (
        "import sys; from importlib import resources; import latentatlas; "
        "from latentatlas.report.build import _environment; from latentatlas.explorer.app import STATIC_DIR; "
        "_environment().get_template('report.html.j2'); "
        "print(latentatlas.__file__.startswith(sys.prefix), STATIC_DIR.is_relative_to(sys.prefix), "
        "(STATIC_DIR / 'index.html').is_file(), "
        "len(resources.files('latentatlas.report').joinpath('report.css').read_text()) > 0)"
    )
    assert run(str(python), "-c", probe).split() == ["True"] * 4

    tiny = ["--image-size", "32", "--channels", "8,16", "--latent-dim", "8", "--batch-size", "16"]
    run(cli, "train", "--data", "synthetic-faces", "--synthetic-count", "64", "--epochs", "1", "--out", "run", *tiny)
    assert "wrote 64 z-points of dimension 8" in run(cli, "encode", "run")
    run(cli, "analyze", "run")
    assert (tmp_path / "run" / "analysis" / "analysis.json").is_file()
