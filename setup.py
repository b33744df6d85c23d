"""The part of the packaging that is computed; the metadata is in pyproject.toml.

`datasets/` and `pretrained/` live at the top level of the checkout (the `tfds new` layout and
the weight files) but install under lm_zoo, so that no top-level `datasets` module shadows
Hugging Face's. pyproject.toml's [tool.setuptools.packages.find] finds packages under their own
names only, so the prefixed names and their folders are computed here. Every package is found
by walking the folders: a new subpackage of lm_zoo (a folder with __init__.py) or a new dataset
builder ships without editing this file.
"""
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

# pretrained/ holds data, flat (<set>.weights.h5, <set>.json, ...) or one folder per weight set
# (<set>/metadata.json, <set>/model.weights.h5, ...): both ship, at any depth.
PRETRAINED_DATA = [f"{depth}*.{ext}" for depth in ("", "**/") for ext in ("weights.h5", "json", "md", "csv")]
BUILDER_DATA = ["*.md", "*.bib", "*.txt", "*.tsv", "dummy_data/**/*"]


def _prefixed(folder: str, prefix: str) -> list[str]:
    """The package in `folder` and its subpackages, named under `prefix`."""
    return [prefix] + [f"{prefix}.{name}" for name in find_packages(folder)]


DATASET_PACKAGES = _prefixed("datasets", "lm_zoo.datasets")
PRETRAINED_PACKAGES = _prefixed("pretrained", "lm_zoo.pretrained")


class FreshBuildPy(build_py):
    """Copies the packages into an empty build/lib.

    pip builds in the checkout, and setuptools keeps build/lib between builds: a module or weight
    file that a `git pull` moved or removed would still ship in the next `pip install .`.
    """

    def run(self):
        if not getattr(self, "editable_mode", False):
            shutil.rmtree(self.build_lib, ignore_errors=True)
        super().run()


setup(
    cmdclass={"build_py": FreshBuildPy},
    packages=find_packages(include=["lm_zoo", "lm_zoo.*"]) + DATASET_PACKAGES + PRETRAINED_PACKAGES,
    # Subpackages follow their parent's folder (lm_zoo.datasets.x -> datasets/x).
    package_dir={"lm_zoo.datasets": "datasets", "lm_zoo.pretrained": "pretrained"},
    package_data={
        "lm_zoo.pretrained": PRETRAINED_DATA,
        **{name: BUILDER_DATA for name in DATASET_PACKAGES[1:]},
    },
)
