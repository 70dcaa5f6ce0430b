"""`CameraSync(wait_for_stream=True)`, the node's pairing: an image is given up because its
camera_info can no longer come, never because the node (or its middleware) was late."""

from __future__ import annotations

from dpt_ros.core.camera.sync import CameraSync

MS = 1_000_000


def _sync(mode: str = "exact") -> CameraSync:
    return CameraSync(mode, slop=0.01, timeout=0.2, pending=8, wait_for_stream=True)


def test_a_late_camera_info_stream_rejects_nothing():
    """The stream stalls for 2 s while images come; then its backlog arrives at once."""
    sync = _sync()
    for i in range(5):  # images at 5 Hz, camera_info published just before each, not taken
        sync.add_image(i * 200 * MS, "cam", f"image{i}", now=i * 0.2)
    assert sync.expire(now=2.0).expired == []  # long past the timeout: still waiting
    assert sync.overdue(2.0)
    paired = []
    for i in range(5):  # the backlog, in order
        result = sync.add_info(i * 200 * MS, "cam", f"info{i}", now=2.1)
        paired += result.paired
    assert paired[-1] == ("image4", "info4") and sync.waiting == 0


def test_given_up_once_the_stream_passed_its_stamp():
    sync = _sync()
    sync.add_image(100 * MS, "cam", "a", now=0.0)
    sync.add_info(300 * MS, "cam", "later", now=0.01)  # its own (100 ms) cannot come now
    assert [w.item for w in sync.expire(now=0.02).expired] == ["a"]


def test_approximate_waits_for_the_stream_to_pass_the_slop():
    sync = _sync("approximate")
    sync.add_image(100 * MS, "cam", "a", now=0.0)
    assert sync.add_info(105 * MS, "cam", "near", now=0.01).paired == [("a", "near")]
    sync.add_image(200 * MS, "cam", "b", now=0.1)
    sync.add_info(215 * MS, "cam", "beyond", now=0.11)  # 15 ms: past the slop, no match
    assert [w.item for w in sync.expire(now=0.12).expired] == ["b"]


def test_a_live_stream_with_other_stamps_is_a_driver_bug_reported_after_the_timeout():
    sync = _sync()
    sync.add_image(300 * MS, "cam", "a", now=0.0)
    sync.add_info(299 * MS, "cam", "older", now=0.05)  # taken after the image: no match
    assert sync.expire(now=0.1).expired == []  # within the timeout
    assert [w.item for w in sync.expire(now=0.25).expired] == ["a"]


def test_overdue_images_can_be_taken_for_the_parameter_fallback():
    sync = _sync()
    sync.add_image(1, "cam", "a", now=0.0)
    sync.add_image(2, "cam", "b", now=0.1)
    assert [w.item for w in sync.take_overdue(now=0.25)] == ["a"]
    assert sync.waiting == 1


def _same(a: str, b: str) -> bool:
    return a.split("@")[0] == b.split("@")[0]


def test_a_lost_camera_info_between_two_equal_ones_is_bracketed():
    """Its own camera_info lost for good: the equal ones around its stamp pair it."""
    sync = CameraSync("exact", timeout=0.2, wait_for_stream=True, same=_same)
    sync.add_info(100 * MS, "cam", "K1@100", now=0.0)
    sync.add_image(200 * MS, "cam", "lost-info", now=0.1)
    sync.add_info(300 * MS, "cam", "K1@300", now=0.2)
    result = sync.expire(now=0.21)
    assert result.expired == [] and result.bracketed == [("lost-info", "K1@100")]
    # a calibration that changed around the stamp (zoom): no guess, given up
    sync.add_image(400 * MS, "cam", "zoomed", now=0.3)
    sync.add_info(500 * MS, "cam", "K2@500", now=0.4)
    result = sync.expire(now=0.41)
    assert [w.item for w in result.expired] == ["zoomed"] and result.bracketed == []
