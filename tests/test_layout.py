"""The package layout: one `strata` namespace, no shadowing of the standard library."""

import subprocess
import sys
import zipfile

from conftest import REPO


def test_import_tokenize_from_repo_root_is_stdlib():
    # `python -m pytest` puts the repo root first on sys.path, where `tokenize/` lives.
    out = subprocess.run(
        [sys.executable, "-c", "import tokenize, linecache, traceback; print(tokenize.__file__)"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert not out.startswith(str(REPO)), out
    assert out.endswith("tokenize.py")


def test_strata_subpackages_import_from_repo_root():
    code = "import strata.pipeline.read, strata.config, strata.cli; print(strata.pipeline.read.__name__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "strata.pipeline.read"


def test_wheel_holds_one_strata_namespace(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("strata-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.startswith("strata-")}
    assert top == {"strata"}, top
    for module in ("strata/cli.py", "strata/config/__init__.py", "strata/pipeline/curate.py"):
        assert module in names
    folders = {"core": "strata", "pipeline": "strata/pipeline", "tokenize": "strata/tokenize",
               "train": "strata/train", "manifests": "strata/manifests"}
    missing = [
        f"{folder}/{source.relative_to(REPO / folder)}"
        for folder, package in folders.items()
        for source in (REPO / folder).rglob("*.py")
        if f"{package}/{source.relative_to(REPO / folder).as_posix()}" not in names
    ]
    assert not missing, f"source files the wheel leaves out (a package missing from pyproject's list?): {missing}"
    assert not any(n.startswith("tokenize/") or n == "strata/tokenize/__init__.py" for n in names)


def test_cli_help_explains_itself():
    out = subprocess.run([sys.executable, "-m", "strata.cli", "build", "--help"], capture_output=True, text=True, check=True)
    assert "--out" in out.stdout and "--runner" in out.stdout and "--until" in out.stdout
