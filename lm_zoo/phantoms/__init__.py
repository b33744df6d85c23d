"""Deterministic phantom cohorts written exactly like real ones (volume files + annotation files).

- :mod:`lm_zoo.phantoms.torso_ct`: torso CT with named anatomical landmarks.
- :mod:`lm_zoo.phantoms.head_mra`: head TOF-MRA with a circle-of-Willis arterial tree and saccular
  aneurysms (ground-truth centre, radius, site and mask).
- :mod:`lm_zoo.phantoms.insertion`: :func:`insert_aneurysms` grows saccular aneurysms into a real,
  healthy TOF-MRA volume with the host vessel's own intensity profile and noise.

Import the submodule you need; this package imports nothing heavy itself (``insert_aneurysms`` is
loaded on first use).
"""


def __getattr__(name):
    if name == "insert_aneurysms":
        from lm_zoo.phantoms.insertion import insert_aneurysms

        return insert_aneurysms
    raise AttributeError(f"module 'lm_zoo.phantoms' has no attribute {name!r}")
