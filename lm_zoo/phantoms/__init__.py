"""Deterministic phantom cohorts written exactly like real ones (volume files + annotation files).

- :mod:`lm_zoo.phantoms.torso_ct`: torso CT with named anatomical landmarks.
- :mod:`lm_zoo.phantoms.head_mra`: head TOF-MRA with a circle-of-Willis arterial tree and saccular
  aneurysms (ground-truth centre, radius, site and mask).

Import the submodule you need; this package imports nothing heavy itself.
"""
