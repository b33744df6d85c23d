"""lm_zoo.errors: one hierarchy; the old per-module names are the same classes."""
import pytest

import lm_zoo.cohorts
import lm_zoo.detection
import lm_zoo.evaluation
import lm_zoo.io
import lm_zoo.landmarks
import lm_zoo.outputs
import lm_zoo.dataset_builder
import lm_zoo.segmentation
import lm_zoo.tfds_loader
import lm_zoo.pretrained
import lm_zoo.train
import lm_zoo.vessels
from lm_zoo import errors
from lm_zoo.applications import mini_vgg25d
from lm_zoo.phantoms import head_mra, torso_ct


def test_one_cohort_error_class_under_every_old_name():
    assert lm_zoo.cohorts.CohortError is head_mra.CohortError is torso_ct.CohortError is errors.CohortError
    assert lm_zoo.cohorts.CohortNotFoundError is errors.CohortNotFoundError
    assert head_mra.AneurysmTableError is lm_zoo.cohorts.AneurysmTableError is errors.AneurysmTableError


@pytest.mark.parametrize("cls, builtin", [
    (errors.CohortError, ValueError), (errors.CohortNotFoundError, FileNotFoundError),
    (errors.AneurysmTableError, errors.CohortError), (lm_zoo.io.ImageReadError, ValueError),
    (lm_zoo.landmarks.LandmarkFileError, ValueError), (lm_zoo.train.TrainingDataError, ValueError),
    (lm_zoo.vessels.VesselError, ValueError), (lm_zoo.evaluation.EvaluationError, ValueError),
    (mini_vgg25d.WeightsLoadError, ValueError), (lm_zoo.pretrained.WeightsIntegrityError, ValueError),
    (lm_zoo.pretrained.WeightsNotAvailableError, ValueError), (errors.StaleDatasetError, RuntimeError),
    (lm_zoo.outputs.OutputDirError, ValueError), (lm_zoo.dataset_builder.DatasetLockedError, RuntimeError),
    (lm_zoo.segmentation.SegmentationError, ValueError), (lm_zoo.tfds_loader.DatasetError, ValueError),
    (lm_zoo.detection.DetectionError, ValueError), (lm_zoo.detection.NotCTError, lm_zoo.detection.DetectionError),
    (lm_zoo.detection.NoBodyError, lm_zoo.detection.DetectionError),
])
def test_every_error_is_an_lm_zoo_error_and_a_builtin(cls, builtin):
    assert issubclass(cls, errors.LmZooError) and issubclass(cls, builtin)


def test_phantom_writers_raise_the_shared_class(tmp_path):
    with pytest.raises(errors.CohortError, match="n_cases"):
        head_mra.write_cohort(tmp_path / "m", 0, progress=False)
    with pytest.raises(errors.CohortError, match="n_cases"):
        torso_ct.write_cohort(tmp_path / "c", 0, progress=False)
