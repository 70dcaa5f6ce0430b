"""Image ↔ camera_info pairing by stamp, with message_filters semantics."""

from __future__ import annotations

import pytest

from dpt_ros.core.camera.sync import CameraSync

MS = 1_000_000  # ns


def paired(result) -> list[tuple[str, str]]:
    return [(item, info) for item, info in result.paired]


def test_exact_pairs_the_image_first_camera_info_after() -> None:
    """image_transport's CameraPublisher order: the image, then its camera_info."""
    sync: CameraSync[str] = CameraSync("exact", timeout=0.2)
    assert paired(sync.add_image(100 * MS, "cam", "img100", now=0.0)) == []
    assert paired(sync.add_info(99 * MS, "cam", "info99")) == []  # another stamp: no
    assert paired(sync.add_info(100 * MS, "cam", "info100")) == [("img100", "info100")]
    assert sync.waiting == 0


def test_exact_pairs_a_camera_info_that_came_first() -> None:
    sync: CameraSync[str] = CameraSync("exact")
    sync.add_info(5 * MS, "cam", "info5")
    sync.add_info(6 * MS, "cam", "info6")
    assert paired(sync.add_image(5 * MS, "cam", "img5", now=0.0)) == [("img5", "info5")]


def test_pairing_a_newer_image_supersedes_older_waiting_ones() -> None:
    sync: CameraSync[str] = CameraSync("exact")
    for i in range(3):
        sync.add_image(i * MS, "cam", f"img{i}", now=0.0)
    result = sync.add_info(2 * MS, "cam", "info2")
    assert paired(result) == [("img2", "info2")] and result.superseded == ["img0", "img1"]
    assert paired(sync.add_info(0, "cam", "info0")) == []  # img0 is gone


def test_images_wait_at_most_the_timeout() -> None:
    sync: CameraSync[str] = CameraSync("exact", timeout=0.2)
    sync.add_image(1 * MS, "cam", "a", now=10.0)
    sync.add_image(2 * MS, "cam", "b", now=10.1)
    assert sync.expire(10.15).expired == []
    assert [w.item for w in sync.expire(10.25).expired] == ["a"]
    assert [w.item for w in sync.expire(10.35).expired] == ["b"]
    assert sync.waiting == 0


def test_approximate_takes_the_nearest_stamp_within_the_slop() -> None:
    sync: CameraSync[str] = CameraSync("approximate", slop=0.010)
    sync.add_info(100 * MS, "cam", "far")
    sync.add_info(113 * MS, "cam", "near")
    assert paired(sync.add_image(112 * MS, "cam", "img", now=0.0)) == [("img", "near")]
    assert paired(sync.add_image(140 * MS, "cam", "late", now=0.0)) == []  # 27 ms: too far
    assert paired(sync.add_info(135 * MS, "cam", "ok")) == [("late", "ok")]


def test_latest_takes_the_newest_of_the_frame_id_whatever_its_stamp() -> None:
    sync: CameraSync[str] = CameraSync("latest")
    assert paired(sync.add_image(1 * MS, "left", "img1", now=0.0)) == []  # none yet: waits
    assert paired(sync.add_info(900 * MS, "left", "L")) == [("img1", "L")]
    sync.add_info(5 * MS, "right", "R")
    assert paired(sync.add_image(2 * MS, "left", "img2", now=0.0)) == [("img2", "L")]


def test_everything_is_bounded() -> None:
    sync: CameraSync[int] = CameraSync("exact", infos=4, pending=3)
    for i in range(100):
        sync.add_info(i * MS, f"frame{i}", i)
    superseded = []
    for i in range(200, 210):
        superseded += sync.add_image(i * MS, "cam", i, now=0.0).superseded
    assert sync.waiting == 3 and superseded == list(range(200, 207))
    assert len(sync._infos) == 4 and len(sync._latest) == 4
    assert paired(sync.add_image(95 * MS, "cam", -1, now=0.0)) == []  # evicted
    assert paired(sync.add_image(96 * MS, "cam", -2, now=0.0)) == [(-2, 96)]  # kept


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="exact, approximate, latest"):
        CameraSync("nearest")


def test_offline_keeps_every_waiting_image() -> None:
    """newest_only=False (the bag tool): no image is superseded, each gets its own info."""
    sync: CameraSync[str] = CameraSync("exact", newest_only=False)
    for i in range(3):
        assert paired(sync.add_image(i * MS, "cam", f"img{i}", now=0.0)) == []
    assert paired(sync.add_info(2 * MS, "cam", "info2")) == [("img2", "info2")]
    assert paired(sync.add_info(0, "cam", "info0")) == [("img0", "info0")]
    assert paired(sync.add_image(0, "cam", "again", now=0.0)) == [("again", "info0")]
    assert [w.item for w in sync.expire(1.0).expired] == ["img1"]
