"""dpt_lifecycle_node, the managed node, driven through its real lifecycle services (a real
subprocess over real DDS, lifecycle_msgs from pip): outputs only while active, a bad model
fails configure with the reason, cleanup releases the models, shutdown ends the process.
The release itself is checked in process, where the model objects can be watched."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest
from _node_util import (
    IMAGE_TOPIC,
    INFO_TOPIC,
    SHARED_PARAMS,
    NodeProcess,
    Peer,
    camera_info_msg,
    camera_rgb,
    domain_id,
    image_msg,
    node_command,
    ros_env,
    stamp_of,
)

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

H, W = 48, 64
DEPTH = "/dpt_node/depth/image"


def call(peer: Peer, srv_type, name: str, request, timeout: float = 30.0):
    client = peer.node.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=timeout), f"{name} not available"
        future = client.call_async(request)
        peer.wait_until(future.done, timeout, f"{name} response")
        return future.result()
    finally:
        peer.node.destroy_client(client)


def state(peer: Peer) -> int:
    return call(peer, GetState, "/dpt_node/get_state", GetState.Request()).current_state.id


def transition(peer: Peer, transition_id: int) -> bool:
    request = ChangeState.Request()
    request.transition.id = transition_id
    return call(peer, ChangeState, "/dpt_node/change_state", request).success


class Camera:
    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.image = peer.publisher(Image, IMAGE_TOPIC)
        self.info = peer.publisher(CameraInfo, INFO_TOPIC)
        self.depth = peer.collect(Image, DEPTH)
        self.sec = 0

    def frames_out(self, seconds: float) -> int:
        """How many of the frames sent for `seconds` come back on ~/depth."""
        sent = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.sec += 1
            msg = image_msg(camera_rgb(H, W, seed=self.sec), "rgb8", (self.sec, 0), "cam")
            self.image.publish(msg)
            self.info.publish(camera_info_msg(50.0, 50.0, 31.5, 23.5, W, H, stamp_of(msg),
                                              "cam"))
            sent.append(stamp_of(msg))
            time.sleep(0.15)
        time.sleep(0.5)
        return sum(stamp_of(m) in sent for m in self.depth.msgs)


def start(params: dict, peer: Peer, log) -> NodeProcess:
    cmd = node_command({**SHARED_PARAMS, **params}, executable="dpt_lifecycle_node")
    return NodeProcess(cmd, ros_env(peer.domain), log)


def test_transitions_through_the_lifecycle_services(checkpoints, tmp_path):
    peer = Peer(domain_id(__name__))
    proc = start({"depth_model": checkpoints["metric"]}, peer, tmp_path / "node.log")
    try:
        cam = Camera(peer)
        assert state(peer) == State.PRIMARY_STATE_UNCONFIGURED
        assert peer.node.count_publishers(DEPTH) == 0  # nothing loaded, nothing offered
        assert transition(peer, Transition.TRANSITION_CONFIGURE)
        assert state(peer) == State.PRIMARY_STATE_INACTIVE
        peer.wait_until(lambda: peer.node.count_publishers(DEPTH) == 1, 10, "publishers")
        assert peer.node.count_subscribers(IMAGE_TOPIC) == 0  # no input while inactive
        assert cam.frames_out(1.0) == 0

        assert transition(peer, Transition.TRANSITION_ACTIVATE)
        assert state(peer) == State.PRIMARY_STATE_ACTIVE
        peer.wait_until(lambda: peer.node.count_subscribers(IMAGE_TOPIC) == 1, 10, "input")
        assert cam.frames_out(3.0) > 0

        assert transition(peer, Transition.TRANSITION_DEACTIVATE)
        peer.wait_until(lambda: peer.node.count_subscribers(IMAGE_TOPIC) == 0, 10, "no input")
        cam.depth.clear()
        assert cam.frames_out(1.0) == 0  # deactivated: no output

        assert transition(peer, Transition.TRANSITION_ACTIVATE)  # and back
        peer.wait_until(lambda: peer.node.count_subscribers(IMAGE_TOPIC) == 1, 10, "input")
        assert cam.frames_out(3.0) > 0

        assert transition(peer, Transition.TRANSITION_DEACTIVATE)
        assert transition(peer, Transition.TRANSITION_CLEANUP)
        assert state(peer) == State.PRIMARY_STATE_UNCONFIGURED
        peer.wait_until(lambda: peer.node.count_publishers(DEPTH) == 0, 10, "no publishers")

        assert transition(peer, Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
        proc.proc.wait(20)
        assert proc.proc.returncode == 0, proc.log()
        log = proc.log()
        assert "configured: models loaded" in log and "cleaned up: models released" in log
    finally:
        proc.stop()
        peer.close()


def test_a_bad_model_fails_configure_with_the_reason(tmp_path):
    peer = Peer(domain_id(__name__ + "bad"))
    proc = start({"depth_model": "./no/such/model"}, peer, tmp_path / "node.log")
    try:
        assert state(peer) == State.PRIMARY_STATE_UNCONFIGURED
        assert not transition(peer, Transition.TRANSITION_CONFIGURE)
        assert state(peer) == State.PRIMARY_STATE_UNCONFIGURED  # still there, for another try
        assert proc.alive()
        log = proc.log()
        assert "configure failed" in log and "does not exist" in log
    finally:
        proc.stop()
        peer.close()


def test_cleanup_releases_the_models(checkpoints, monkeypatch):
    """In process: after cleanup no reference to the model (or the pipeline) survives."""
    from rclpy.lifecycle import TransitionCallbackReturn

    from dpt_ros.ros.lifecycle_node import DptLifecycleNode

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id(__name__ + "inproc"), args=[
        "--ros-args", "-p", f"depth_model:={checkpoints['metric']}", "-p", "device:=cpu"])
    try:
        node = DptLifecycleNode(context=context)
        assert node.on_configure(None) == TransitionCallbackReturn.SUCCESS
        pipeline = weakref.ref(node.pipeline)
        model = weakref.ref(node.pipeline._depth.model)
        assert node.on_activate(None) == TransitionCallbackReturn.SUCCESS
        assert node.on_deactivate(None) == TransitionCallbackReturn.SUCCESS
        assert node.on_cleanup(None) == TransitionCallbackReturn.SUCCESS
        gc.collect()
        assert pipeline() is None and model() is None
        node.destroy_node()
    finally:
        context.try_shutdown()


@pytest.mark.parametrize("where", ["warmup", "timers"])
def test_a_failing_activate_fails_the_transition_and_stays_inactive(
        checkpoints, monkeypatch, capfd, where):
    """In process, through the lifecycle state machine the services drive: activate fails
    (the warm-up, or later, once the subscriptions exist) with the reason in the log, what had
    started is stopped again, and the node stays inactive, not shut down, for another try."""
    from rclpy.lifecycle import TransitionCallbackReturn

    from dpt_ros.ros.lifecycle_node import DptLifecycleNode

    def fail(*args, **kwargs):
        raise RuntimeError("CUDA out of memory.\n  Tried to allocate 2.00 GiB")

    def workers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "dpt_worker" and t.is_alive()]

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id(__name__ + "activate" + where), args=[
        "--ros-args", "-p", f"depth_model:={checkpoints['metric']}", "-p", "device:=cpu",
        "-p", "warmup:=true", "-p", "input_size:=[42,56]",  # patch 14
        "-p", "publish.depth:=true"])  # a forced output: inputs at activation (else lazy)
    node = None
    before = set(workers())  # any other test's
    try:
        node = DptLifecycleNode(context=context)
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        if where == "warmup":  # Worker.start re-raises what the warm-up raised
            monkeypatch.setattr(node.pipeline, "warmup", fail)
        else:
            monkeypatch.setattr(node, "create_timer", fail)
        capfd.readouterr()
        assert node.trigger_activate() == TransitionCallbackReturn.FAILURE
        assert node._state_machine.current_state[1] == "inactive"
        assert not node.finished  # not taken to ERROR -> on_error -> shutdown
        assert list(node.subscriptions) == [] and list(node.timers) == []
        assert not node._active and node._worker is None and set(workers()) <= before
        log = capfd.readouterr().err
        assert "activate failed: CUDA out of memory. Tried to allocate 2.00 GiB" in log, log
        monkeypatch.undo()
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS  # another try
        assert node._state_machine.current_state[1] == "active"
        assert len(set(node.subscriptions)) == 2 and len(set(node.timers)) == 2
        assert len(set(workers()) - before) == 1
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    finally:
        if node is not None:
            node.close()  # a worker left running by a failed assertion
            node.destroy_node()
        context.try_shutdown()
