"""/diagnostics raises alarms: per camera, OK / WARN (stale camera, drops, rejected frames) /
ERROR (worker stuck or gone), and the node's status is the worst of them.

Unit level with a fake clock (Stats, assess, diagnostic_array) and with the real Worker and
LatestSlots around a handler that blocks (a stuck model call); then a real node subprocess
over DDS whose camera stops: WARN within diagnostics.stale_s + one period.
"""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("diagnostic_msgs")

from _node_util import (
    IMAGE_TOPIC,
    ROOT,
    Peer,
    camera_rgb,
    domain_id,
    image_msg,
    start_nodes,
)

from dpt_ros.config import params
from dpt_ros.ros.diagnostics import (
    ERROR,
    OK,
    WARN,
    Limits,
    Stats,
    WorkerState,
    assess,
    diagnostic_array,
)
from dpt_ros.ros.worker import LatestSlots, Worker

LIMITS = Limits(stale_s=2.0, drop_ratio=0.5, stuck_s=0.3)
IDLE = WorkerState(alive=True)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _levels(msg) -> list[tuple[str, int, str]]:
    return [(s.name, s.level[0] if isinstance(s.level, bytes) else s.level, s.message)
            for s in msg.status]


def _array(stats: Stats, worker: WorkerState = IDLE, inputs=None):
    return diagnostic_array(stats.snapshot(), "dpt_node: processing", "cpu", {"device": "cpu"},
                            None, worker, LIMITS, inputs)


def _stream(stats: Stats, clock: FakeClock, seconds: float, hz: float = 10.0,
            camera: str = "", drop_every: int = 0) -> None:
    for i in range(int(seconds * hz)):
        clock.t += 1.0 / hz
        stats.on_received(camera)
        if drop_every and i % drop_every:
            stats.on_dropped(camera=camera)
        else:
            stats.on_processed(0.01, camera)


# ------------------------------------------------------------------ unit level
def test_levels_follow_the_camera():
    clock = FakeClock()
    stats = Stats(clock=clock, cameras=[""])
    (_, level, message), cam = _levels(_array(stats))[0], _levels(_array(stats))[1]
    assert (level, message) == (OK, "waiting for images") and cam[0] == "dpt_node: input image"
    _stream(stats, clock, 2.0)
    node, cam = _levels(_array(stats, inputs={"": "/cam/image_raw"}))
    assert node[1] == OK and node[2].startswith("running: 10.0 Hz in, 10.0 Hz processed")
    assert cam == ("dpt_node: input /cam/image_raw", OK, node[2])
    clock.t += 1.9  # not stale yet
    assert _levels(_array(stats))[0][1] == OK
    clock.t += 0.2  # 2.1 s without an image
    node, cam = _levels(_array(stats))
    assert node[1] == WARN and node[2] == "stale: no image for 2.1 s"
    assert cam[1] == WARN
    _stream(stats, clock, 0.5)  # it came back
    assert _levels(_array(stats))[0][1] == OK


def test_drops_warn_when_far_more_frames_arrive_than_are_processed():
    clock = FakeClock()
    stats = Stats(clock=clock, cameras=[""])
    _array(stats)
    _stream(stats, clock, 2.0, drop_every=4)  # 3 of 4 dropped
    node, _ = _levels(_array(stats))
    assert node[1] == WARN and node[2].startswith("drops: 15 of 20 frames dropped, 2.5 Hz "
                                                  "processed of 10.0 Hz in")
    _stream(stats, clock, 2.0, drop_every=2)  # half dropped: not above the ratio
    assert _levels(_array(stats))[0][1] == OK


def test_rejected_frames_warn_for_their_camera_or_the_node():
    clock = FakeClock()
    stats = Stats(clock=clock, cameras=["front", "rear"])
    _stream(stats, clock, 1.0, camera="front")
    _stream(stats, clock, 1.0, camera="rear")
    stats.on_error("step", camera="rear")
    stats.on_error("step", camera="rear")
    stats.on_error("internal")  # nobody knows which camera
    node, front, rear = _levels(_array(stats, inputs={"front": "/f", "rear": "/r"}))
    assert front[:2] == ("dpt_node: input /f", OK)
    assert rear[:2] == ("dpt_node: input /r", WARN)
    assert rear[2] == "2 frame(s) rejected in the last interval (step 2)"
    assert node[1] == WARN
    assert node[2] == ("rear: 2 frame(s) rejected in the last interval (step 2); "
                       "1 frame(s) rejected in the last interval")
    assert [lvl for _, lvl, _ in _levels(_array(stats))] == [OK, OK, OK]  # next interval


@pytest.mark.ros
def test_an_unsupported_lens_is_counted_but_its_frame_is_processed(capfd):
    """In process, the worker's handler on one frame whose camera_info has a lens model the
    node cannot invert: counted in errors.distortion (the camera's status warns), logged as
    what it is (no ~/points, not a skipped frame), and the frame still processed (depth)."""
    rclpy = pytest.importorskip("rclpy")
    from sensor_msgs.msg import CameraInfo

    from dpt_ros.ros.node import DptNode

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id("diag-lens"), args=[
        "--ros-args", "-p", f"depth_model:={ROOT / 'dpt_ros' / 'weights' / 'synthetic-depth'}",
        "-p", "device:=cpu", "-p", "warmup:=false", "-p", "publish.depth:=true"])
    node = None
    try:
        node = DptNode(context=context)
        msg = image_msg(camera_rgb(48, 64), "rgb8", (7, 0), "cam")
        info = CameraInfo(width=64, height=48, distortion_model="kannala_brandt8")
        info.header = msg.header
        info.d = [0.1] * 8
        info.k = [50.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0]
        info.p = [50.0, 0.0, 31.5, 0.0, 0.0, 50.0, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0]
        capfd.readouterr()
        node._process({"": (msg, info, time.monotonic(), None)})
        assert node.stats.errors == {"distortion": 1}
        assert node.stats.processed == 1  # depth went out for it
        log = capfd.readouterr().err
        assert "no ~/points (distortion): /camera_info: distortion_model 'kannala_brandt8'" in log
        assert "depth is published, ~/points is not" in log and "skipped a frame" not in log
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        context.try_shutdown()


def test_assess_names_every_problem_and_takes_the_worst():
    from dpt_ros.ros.diagnostics import CameraActivity

    act = CameraActivity(received=10, dropped=9, processed=1, input_rate=10.0,
                         processed_rate=1.0, total_received=50, since_image_s=5.0,
                         rejected={"data": 1})
    level, message = assess(act, 1.0, WorkerState(alive=True, busy_s=4.0), LIMITS)
    assert level == ERROR
    assert message.split("; ") == [
        "stuck: a frame has waited 1.0 s for the worker, busy on one batch for 4.0 s",
        "stale: no image for 5.0 s",
        "1 frame(s) rejected in the last interval (data 1)",
        "drops: 9 of 10 frames dropped, 1.0 Hz processed of 10.0 Hz in",
    ]


def _wait(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_stuck_worker_is_an_error_and_recovers():
    """The real Worker and LatestSlots around a handler that blocks (a hung model call):
    while the camera's next frame waits longer than stuck_s, the node and that camera are
    ERROR; once the handler returns and the worker takes the frame, the error clears."""
    slots: LatestSlots[int] = LatestSlots(["front", "rear"])
    release = threading.Event()
    handled: list[dict] = []

    def handle(items: dict[str, int]) -> None:
        if not handled:
            release.wait(10.0)
        handled.append(items)

    worker = Worker(slots, handle, lambda exc: None)
    worker.start()
    stats = Stats(cameras=["front", "rear"])

    def levels():
        state = WorkerState(worker.alive, worker.busy_s, slots.waiting())
        return _levels(_array(stats, state))

    try:
        slots.put("front", 1)
        _wait(lambda: worker.busy_s is not None)  # taken; the handler hangs
        assert [lvl for _, lvl, _ in levels()] == [OK, OK, OK]  # busy is not stuck
        stats.on_received("front")
        slots.put("front", 2)
        time.sleep(LIMITS.stuck_s + 0.1)
        node, front, rear = levels()
        assert front[1] == ERROR and front[2].startswith("stuck: a frame has waited 0.")
        assert "busy on one batch for" in front[2]
        assert rear[1] == OK  # nothing of it waits
        assert node[1] == ERROR and node[2].startswith("front: stuck")
        release.set()
        _wait(lambda: len(handled) == 2)
        assert handled[1] == {"front": 2} and worker.busy_s is None
        assert slots.waiting() == {}
        assert [lvl for _, lvl, _ in levels()] == [OK, OK, OK]
    finally:
        release.set()
        worker.stop()
    node, front, rear = levels()  # the thread is gone
    assert node[1] == front[1] == rear[1] == ERROR
    assert front[2] == "worker stopped: no frame is processed any more"


def test_alarm_thresholds_are_runtime_parameters():
    for name in ("diagnostics.stale_s", "diagnostics.drop_ratio", "diagnostics.stuck_s"):
        spec = params.BY_NAME[name]
        assert not spec.read_only and spec.lo is not None and spec.hi is not None
        assert spec.description
    assert params.check_update({"diagnostics.drop_ratio": 1.5}, {}) is not None
    assert params.check_update({"diagnostics.stale_s": 0.5}, {}) is None


# ----------------------------------------------------------- real node over DDS
@pytest.mark.ros
def test_camera_that_stops_raises_a_warning_in_time(tmp_path):
    pytest.importorskip("rclpy")
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    stale, period = 1.0, 0.25
    peer = Peer(domain_id("diag-stale"))
    node_params = {"depth_model": str(ROOT / "dpt_ros" / "weights" / "synthetic-depth"),
                   "device": "cpu", "warmup": False, "diagnostics_period": period,
                   "diagnostics.stale_s": stale}
    (proc,) = start_nodes([(node_params, {})], [peer], tmp_path)
    try:
        diag = peer.collect(DiagnosticArray, "/diagnostics")
        peer.collect(Image, "/dpt_node/depth/image")  # an output subscriber: inputs are lazy
        camera = peer.publisher(Image, IMAGE_TOPIC,
                                QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
        msg = image_msg(camera_rgb(48, 64), "rgb8", (1, 0), "cam")

        def status(m, name: str):
            return next((s for s in m.status if s.name == name), None)

        cam_name = f"dpt_node: input {IMAGE_TOPIC}"
        deadline = time.monotonic() + 30
        while True:  # images flowing, the camera's status OK and running
            camera.publish(msg)
            time.sleep(0.1)
            last = diag.msgs[-1] if diag.msgs else None
            s = status(last, cam_name) if last else None
            if s is not None and s.level == bytes([OK]) and s.message.startswith("running"):
                break
            assert time.monotonic() < deadline, proc.log()
        camera.publish(msg)
        stopped = time.monotonic()
        warned = diag.wait_for(lambda m: (s := status(m, cam_name)) is not None
                               and s.level == bytes([WARN]), stale + 5.0)
        assert warned is not None, proc.log()
        after = diag.times[diag.msgs.index(warned)] - stopped
        print(f"stale WARN {after:.2f} s after the last image (stale_s {stale}, period {period})")
        assert stale - 0.05 <= after <= stale + period + 0.5, after  # + DDS / timer slack
        assert status(warned, cam_name).message.startswith("stale: no image for")
        assert warned.status[0].level == bytes([WARN])
        assert warned.status[0].message.startswith("stale: no image for")
    finally:
        code = proc.stop()
        peer.close()
    assert code == 0, proc.log_path.read_text()
