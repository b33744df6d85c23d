"""lm_zoo.detection.montage: the body-only MIP montage with labels beside the panels."""
from __future__ import annotations

import numpy as np
import pytest

from lm_zoo.detection import Detections
from lm_zoo.detection.montage import body_mask, detection_figure, place_labels, save_detection_montage


def _torso_on_a_table(link=None):
    """(z, y, x) HU at 2 mm: an elliptic trunk with air-filled lungs, and a bright table slab
    below it (posterior, +y); between them nothing (air), a foam mattress (-800 HU), or three
    4 mm-wide soft-tissue contacts (straps, a fold of skin) joining the body to the table."""
    z, y, x = np.ogrid[:60, :80, :90]
    vol = np.full((60, 80, 90), -1000.0)
    body = ((x - 45) / 35.0) ** 2 + ((y - 35) / 25.0) ** 2 <= 1
    vol[:, body[0]] = 40.0
    lungs = (((x - 30) / 8.0) ** 2 + ((y - 33) / 10.0) ** 2 <= 1) | (((x - 60) / 8.0) ** 2 + ((y - 33) / 10.0) ** 2 <= 1)
    vol[10:50, lungs[0]] = -850.0
    vol[:, 65:68, 5:85] = 600.0  # the table top: its own part, 3 voxels thick
    if link == "mattress":
        vol[:, 58:65, 10:80] = np.where(vol[:, 58:65, 10:80] < -800.0, -800.0, vol[:, 58:65, 10:80])
    elif link == "contacts":
        for x0 in (30, 44, 58):
            vol[:, 55:65, x0:x0 + 2] = 40.0
    return vol, body[0], lungs[0]


@pytest.mark.parametrize("link", [None, "mattress", "contacts"])
def test_body_mask_keeps_the_trunk_with_its_lungs_and_drops_the_table(link):
    vol, body, lungs = _torso_on_a_table(link)
    assert link != "contacts" or (vol[:, 55:68, 44] > -500).all()  # one part above the threshold
    mask = body_mask(vol, 2.0)
    assert not mask[:, 65:68, :].any()  # no table voxel
    assert mask[:, body].mean() > 0.99  # the trunk, lungs filled
    assert mask[30][lungs].all()
    assert not mask[:, :5, :].any()  # air in front of the body


def test_place_labels_keeps_order_and_spacing_and_stays_in_the_column():
    rng = np.random.default_rng(0)
    targets = rng.uniform(0, 100, 25)
    pos = place_labels(targets, 3.0, 0.0, 100.0)
    order = np.argsort(targets, kind="stable")
    assert (np.diff(pos[order]) >= 3.0 - 1e-9).all() and pos.min() >= 0 and pos.max() <= 100
    spread = place_labels([10.0, 50.0, 90.0], 3.0, 0.0, 100.0)
    assert spread == pytest.approx([10.0, 50.0, 90.0])  # nothing to move
    crowded = place_labels(np.full(50, 5.0), 3.0, 0.0, 100.0)  # more than fit: centred, still apart
    assert (np.diff(np.sort(crowded)) >= 3.0 - 1e-9).all()


@pytest.fixture(scope="module")
def phantom_detections():
    """A held-out phantom (case_seed(1, 2)) at 4 mm and Detections made from its true landmarks:
    all found except three (one not found, two out of view), to draw without running the network."""
    from lm_zoo.phantoms.torso_ct import case_seed, generate_case

    image, truth = generate_case(case_seed(1, 2), spacing_mm=4.0)
    n = len(truth)
    status = ["found"] * n
    status[0], status[1], status[2] = "not_found", "out_of_view", "out_of_view"
    d = Detections(names=list(truth.names), points=np.asarray(truth.points), scores=np.full(n, 0.9),
                   found=np.array([s == "found" for s in status]), reasons=[""] * n, threshold=0.55,
                   weights="landmark", spacing_mm=1.5, status=status)
    return image, d


def test_montage_labels_do_not_overlap_and_lists_say_each_status(phantom_detections):
    image, d = phantom_detections
    fig, labels = detection_figure(image, d, title="phantom.nii.gz")
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert sorted(t.get_text() for t in labels) == sorted([n for n, f in zip(d.names, d.found) if f] * 2)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)
    texts = [t.get_text() for t in fig.texts]
    assert fig._suptitle.get_text().startswith("phantom.nii.gz") and "'landmark'" in fig._suptitle.get_text()
    assert any(t.startswith("out of view (2)") for t in texts) and any(t.startswith("not found (1)") for t in texts)
    assert any(t.strip() == d.names[1] for t in texts)


def test_save_detection_montage_writes_a_png(phantom_detections, tmp_path):
    image, d = phantom_detections
    path = save_detection_montage(image, d, tmp_path / "sub" / "m.png", title="phantom")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.png"]
