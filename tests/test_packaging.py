"""Wheel, sdist and editable installs carry every package and data file.

`datasets/` and `pretrained/` install as lm_zoo.datasets and lm_zoo.pretrained (package_dir), which
a legacy `setup.py develop` used to lose (issue 27, item 1). Each install goes into a temporary
venv that sees this interpreter's site-packages through a .pth file, so nothing is downloaded:
builds run with this interpreter's setuptools (no build isolation) and installs use --no-deps.

A probe subpackage of lm_zoo and a probe folder under pretrained/ are added to the copy that is
built, so a new subpackage or a per-weight-set folder that would not ship fails here.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# What a build reads; the rest of the checkout (tests, benchmarks, runs) plays no part.
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "lm_zoo", "datasets", "pretrained")
PROBE_PACKAGE = "lm_zoo/_packaging_probe"
# Names no registry reads (a folder's metadata.json would be taken for a weight set).
PROBE_WEIGHTS = tuple(f"pretrained/_packaging_probe/probe.{ext}" for ext in ("weights.h5", "json", "md", "csv"))
STALE = "build/lib/lm_zoo/_moved_away.py"
# pyproject.toml's [build-system] requires, and the `test` extra installs.
MIN_SETUPTOOLS = (77,)
# Where each top-level folder of the checkout lands in an installed copy.
INSTALLED_AS = {"lm_zoo": "lm_zoo", "datasets": "lm_zoo/datasets", "pretrained": "lm_zoo/pretrained"}


def _setuptools_version() -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(p) for p in version("setuptools").split(".")[:2] if p.isdigit())


def _require_offline_build():
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed in this interpreter: cannot build without the network")
    if _setuptools_version() < MIN_SETUPTOOLS:
        pytest.skip(f"setuptools < {MIN_SETUPTOOLS} cannot read pyproject.toml (SPDX license); "
                    "`pip install -e '.[test]'` installs a recent one")
    if importlib.util.find_spec("pip") is None:
        pytest.skip("pip is not installed in this interpreter")


def _run(args, cwd, **kw):
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, **kw)
    command = " ".join(str(a) for a in args if "\n" not in str(a))  # the inline check script left out
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _build(hook: str, project: Path, out: Path) -> Path:
    """Call the PEP 517 backend the way a frontend does, with this interpreter's setuptools."""
    out.mkdir(parents=True, exist_ok=True)
    code = f"import sys; from setuptools import build_meta; print(build_meta.{hook}(sys.argv[1]))"
    name = _run([sys.executable, "-c", code, str(out)], cwd=project).strip().splitlines()[-1]
    return out / name


def _copy_sources(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / name)
    (dest / PROBE_PACKAGE).mkdir()
    (dest / PROBE_PACKAGE / "__init__.py").write_text('"""Packaging probe: a new subpackage ships."""\n')
    for rel in PROBE_WEIGHTS:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text("{}\n" if rel.endswith(".json") else "probe\n")
    return dest


def _shipped_files(project: Path) -> list[str]:
    """Every file an install must hold, as its path inside site-packages."""
    files = [p for p in (project / "lm_zoo").rglob("*.py")]
    files += [p for p in (project / "datasets").glob("*.py")]
    files += [p for p in (project / "datasets").glob("*/**/*") if p.is_file()]
    files += [p for p in (project / "pretrained").rglob("*") if p.is_file()]
    names = []
    for path in files:
        rel = path.relative_to(project)
        if "__pycache__" in rel.parts:
            continue
        names.append("/".join((INSTALLED_AS[rel.parts[0]], *rel.parts[1:])))
    return sorted(names)


def _packages(project: Path) -> list[str]:
    """Every package of the checkout, by its installed name."""
    names = []
    for folder, prefix in INSTALLED_AS.items():
        for init in sorted((project / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(project / folder)
            if "__pycache__" not in rel.parts:
                names.append(".".join((prefix.replace("/", "."), *rel.parts)))
    return names


def _venv(path: Path) -> Path:
    """A venv without pip that sees this interpreter's packages (after its own site-packages)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=path).strip()
    ours = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)]
    ours += [p for p in site.getsitepackages() if p not in ours]
    Path(purelib, "zz_test_env.pth").write_text("\n".join(ours) + "\n")
    return python


def _pip_install(python: Path, *args: str, cwd: Path):
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation",
          "--ignore-installed", "--disable-pip-version-check", *args], cwd=cwd)


CHECK = r"""
import importlib, json, sys
from pathlib import Path
packages, weight_sets, root = json.loads(sys.argv[1]), json.loads(sys.argv[2]), Path(sys.argv[3]).resolve()
found = {}
for name in packages:
    module = importlib.import_module(name)
    found[name] = str(Path(module.__file__).resolve())
from lm_zoo import pretrained
for name in weight_sets:
    found["weights:" + name] = str(Path(pretrained.weights_path(name)).resolve())
import lm_zoo.datasets, tensorflow_datasets as tfds
for name in ("landmark_ct_patches", "mra_aneurysm_patches"):
    found["builder:" + name] = str(Path(sys.modules[tfds.builder_cls(name).__module__].__file__).resolve())
outside = {k: v for k, v in found.items() if not v.startswith(str(root))}
print(json.dumps({"found": found, "outside": outside}))
"""


def _check_imports(python: Path, project: Path, root: Path, cwd: Path):
    from lm_zoo import pretrained

    # Sets whose file is in this checkout (a set fetched from `origin` would need the network).
    weight_sets = sorted(n for n, ws in pretrained.WEIGHT_SETS.items() if pretrained.local_path(ws).is_file())
    assert weight_sets, "no weight set has its file in this checkout"
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = _run([str(python), "-c", CHECK, json.dumps(_packages(project)), json.dumps(weight_sets), str(root)],
               cwd=cwd, env=env)
    report = json.loads(out.strip().splitlines()[-1])
    assert report["outside"] == {}, f"imported from outside the installed copy {root}: {report['outside']}"
    for name in weight_sets:
        assert Path(report["found"]["weights:" + name]).is_file()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    _require_offline_build()
    return _copy_sources(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def sdist(project, tmp_path_factory):
    return _build("build_sdist", project, tmp_path_factory.mktemp("sdist"))


@pytest.fixture(scope="module")
def wheel_from_sdist(sdist, tmp_path_factory):
    """What `pip install lm_zoo-<v>.tar.gz` installs: a wheel built from the unpacked sdist."""
    unpacked = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(sdist) as tar:
        tar.extractall(unpacked, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (top,) = unpacked.iterdir()
    return _build("build_wheel", top, tmp_path_factory.mktemp("wheel_from_sdist"))


def test_wheel_holds_every_module_weight_file_and_dummy_data(project, tmp_path):
    # Left in build/lib by a build of an older checkout (a module moved since): must not ship.
    (project / STALE).parent.mkdir(parents=True, exist_ok=True)
    (project / STALE).write_text("moved = True\n")
    wheel = _build("build_wheel", project, tmp_path / "wheel")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [n for n in _shipped_files(project) if n not in names]
    assert missing == [], f"not in the wheel: {missing}"
    assert any(n.endswith(".weights.h5") for n in names)
    for builder in ("landmark_ct_patches", "mra_aneurysm_patches"):
        assert any(n.startswith(f"lm_zoo/datasets/{builder}/dummy_data/") for n in names), builder
    assert f"{PROBE_PACKAGE}/__init__.py" in names
    assert STALE.split("/", 2)[2] not in names, "a file left in build/lib by an earlier build shipped"
    assert all(f"lm_zoo/{rel}" in names for rel in PROBE_WEIGHTS)
    dist_info = next(n for n in names if n.endswith(".dist-info/METADATA")).rsplit("/", 1)[0]
    read = lambda name: zipfile.ZipFile(wheel).read(f"{dist_info}/{name}").decode()  # noqa: E731
    assert "lm-zoo = lm_zoo.cli:main" in read("entry_points.txt")
    assert "License-Expression: Apache-2.0" in read("METADATA").splitlines()
    assert "Apache License" in read("licenses/LICENSE")


def test_sdist_holds_the_sources_and_builds_the_same_wheel(project, sdist, wheel_from_sdist, tmp_path):
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for required in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        assert required in names
    installed_to_source = {v: k for k, v in INSTALLED_AS.items()}
    for shipped in _shipped_files(project):
        top = next(k for k in sorted(installed_to_source, key=len, reverse=True) if shipped.startswith(k + "/"))
        assert installed_to_source[top] + shipped[len(top):] in names, shipped
    direct = _build("build_wheel", project, tmp_path / "direct")
    listing = lambda whl: sorted(zipfile.ZipFile(whl).namelist())  # noqa: E731
    assert listing(wheel_from_sdist) == listing(direct)


def test_installed_wheel_imports_every_package_and_weights_file(project, wheel_from_sdist, tmp_path):
    python = _venv(tmp_path / "venv")
    _pip_install(python, str(wheel_from_sdist), cwd=tmp_path)
    site_packages = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp_path)
    _check_imports(python, project, Path(site_packages.strip()), cwd=tmp_path)


def test_editable_install_imports_every_package_from_the_checkout(project, tmp_path):
    python = _venv(tmp_path / "venv")
    _pip_install(python, "-e", str(project), cwd=tmp_path)
    _check_imports(python, project, project, cwd=tmp_path)
