"""dpt_lifecycle_node runs the new families: configure loads DA3METRIC / Depth Pro, activate
starts ~/depth/image (and DA3's ~/sky/image) from camera + camera_info, shutdown ends cleanly."""

from __future__ import annotations

import time

import pytest
from _family_checkpoints import da3_checkpoint, depth_pro_checkpoint, gradient_image
from _node_util import (
    IMAGE_TOPIC,
    INFO_TOPIC,
    SHARED_PARAMS,
    NodeProcess,
    Peer,
    camera_info_msg,
    domain_id,
    image_msg,
    node_command,
    ros_env,
    send_until,
)

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

H, W = 120, 160


def _call(peer: Peer, srv_type, name: str, request):
    client = peer.node.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=30.0), f"{name} not available"
        future = client.call_async(request)
        peer.wait_until(future.done, 60.0, f"{name} response")
        return future.result()
    finally:
        peer.node.destroy_client(client)


def _transition(peer: Peer, transition_id: int) -> bool:
    request = ChangeState.Request()
    request.transition.id = transition_id
    return _call(peer, ChangeState, "/dpt_node/change_state", request).success


@pytest.mark.parametrize("family", ["da3", "depth_pro"])
def test_lifecycle_runs_the_model(family, tmp_path):
    build = da3_checkpoint if family == "da3" else depth_pro_checkpoint
    directory = build(tmp_path / "ckpt")
    peer = Peer(domain_id(f"{__name__}.{family}"))
    cmd = node_command({**SHARED_PARAMS, "depth_model": str(directory)},
                       executable="dpt_lifecycle_node")
    proc = NodeProcess(cmd, ros_env(peer.domain), tmp_path / "node.log")
    try:
        assert _transition(peer, Transition.TRANSITION_CONFIGURE), proc.log()
        assert _transition(peer, Transition.TRANSITION_ACTIVATE), proc.log()
        state = _call(peer, GetState, "/dpt_node/get_state", GetState.Request())
        assert state.current_state.id == State.PRIMARY_STATE_ACTIVE
        outs = [peer.collect(Image, "/dpt_node/depth/image")]
        if family == "da3":
            outs.append(peer.collect(Image, "/dpt_node/sky/image"))
        stamp = (3, 0)
        send_until([(peer.publisher(CameraInfo, INFO_TOPIC),
                     camera_info_msg(150.0, 150.0, 79.5, 59.5, W, H, stamp, "cam")),
                    (peer.publisher(Image, IMAGE_TOPIC),
                     image_msg(gradient_image(H, W), "rgb8", stamp, "cam"))],
                   outs, stamp, timeout=60.0)
        time.sleep(1.0)  # frames still in flight finish before the transitions (as the
        # managed-node test leaves them time to)
        assert _transition(peer, Transition.TRANSITION_DEACTIVATE)
        assert _transition(peer, Transition.TRANSITION_CLEANUP)
        assert _transition(peer, Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
        proc.proc.wait(20)
        assert proc.proc.returncode == 0, proc.log()
    finally:
        proc.stop()
        peer.close()
