"""lm_zoo: a Keras model zoo and TFDS datasets for 2.5D medical image patches."""
import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "lm_zoo" / "__init__.py").read_text(encoding="utf-8")).group(1)

# `datasets/` and `pretrained/` live at the top level of the checkout (the `tfds new`
# layout and the weight files), but install under lm_zoo so that no top-level
# `datasets` module shadows Hugging Face's.
DATASET_PACKAGES = sorted(
    "lm_zoo.datasets." + p.name
    for p in (HERE / "datasets").iterdir()
    if (p / "__init__.py").exists()
)

setup(
    name="lm_zoo",
    version=VERSION,
    description="MiniVGG25D (Keras) pretrained on anatomical landmarks, 2.5D patch extraction "
    "in physical space and TFDS datasets for transfer learning in medical imaging.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    python_requires=">=3.10",
    packages=[
        "lm_zoo",
        "lm_zoo.applications",
        "lm_zoo.phantoms",
        "lm_zoo.evaluation",
        "lm_zoo.commands",
        "lm_zoo.datasets",
        "lm_zoo.pretrained",
        *DATASET_PACKAGES,
    ],
    package_dir={
        "lm_zoo.datasets": "datasets",
        "lm_zoo.pretrained": "pretrained",
        **{name: "datasets/" + name.rsplit(".", 1)[1] for name in DATASET_PACKAGES},
    },
    package_data={
        "lm_zoo.pretrained": ["*.weights.h5", "*.md", "*.json", "*.csv"],
        **{
            name: ["*.md", "*.bib", "*.txt", "*.tsv", "dummy_data/**/*"]
            for name in DATASET_PACKAGES
        },
    },
    include_package_data=True,
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.0",
        "tensorflow-datasets>=4.9",
        "importlib_resources",
        "dill",
        "apache-beam>=2.50",
        "mlcroissant>=1.0",
        "SimpleITK>=2.3",
        "numpy>=1.24",
        "scipy>=1.10",
        "numba>=0.58",
        "scikit-learn>=1.3",
        "absl-py",
        "tqdm",
        "matplotlib",
        "pillow",
    ],
    extras_require={"test": ["pytest>=7"]},
    entry_points={"console_scripts": ["lm-zoo = lm_zoo.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Medical Science Apps.",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
