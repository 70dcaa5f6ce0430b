"""The launch files: what each argument turns into, run for real.

Three levels. (1) ROS-free: `dpt_ros.config.launch_args` (the launch files' one rule) for every
argument and combination, the shipped parameter files and the namespaced rviz config.
(2) The command lines it produces, run in real subprocesses over DDS (rclpy, no launch_ros):
a node in namespace robot1 reads its `/**/dpt_node` file, processes /robot1/camera/... and
publishes under /robot1/dpt_node/...; the demo camera takes `rate:=5`. (3) Where launch_ros
is importable: the real launch service runs the launch files against an install prefix
laid out from setup.py; stand-in executables record the command line launch_ros built (it
must equal level 1's), and real ones are started and talked to.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from _launch_util import (
    add_executable,
    console_scripts,
    install_share,
    launch_env,
    recorded,
    run_launch,
    start_launch,
)
from _node_util import (
    ROOT,
    NodeProcess,
    Peer,
    camera_info_msg,
    camera_rgb,
    domain_id,
    image_msg,
    ros_env,
    send_until,
)

from dpt_ros.config import launch_args as la
from dpt_ros.config.params_file import load_params_file
from dpt_ros.config.rviz_config import display_topics, namespaced_config
from dpt_ros.core.pipeline.outputs import OUTPUT_TOPICS

DOCUMENTED = {"params_file", "image", "camera_info", "namespace", "depth_model",
              "segmentation_model", "device", "use_rviz", "use_sim_time", "lifecycle",
              "autostart", "depth_reference", "points_reference"}
WEIGHTS = ROOT / "dpt_ros" / "weights"
SHARE = "/opt/share/dpt_ros"
CONFIGS = sorted((ROOT / "config").glob("*.yaml"))


def values(share: str = SHARE, **overrides: str) -> dict[str, str]:
    """dpt.launch.py's argument values: the declared defaults, then `overrides`."""
    return {**la.defaults(la.DPT_ARGS, share), **overrides}


def normalised(argv: list[str]) -> list:
    """argv with each `-p name:=value` value parsed as ROS parses it (YAML), so launch_ros'
    `'123'\\n` and the spec's `"123"` compare equal, and so do `false\\n...\\n` and `false`."""
    out: list = []
    for i, item in enumerate(argv):
        if i and argv[i - 1] == "-p":
            name, value = item.split(":=", 1)
            parsed = yaml.safe_load(value)
            out.append((name, type(parsed).__name__, parsed))
        else:
            out.append(item)
    return out


# ------------------------------------------------------------ (1) the rule, ROS-free
def test_arguments_are_the_documented_ones():
    assert {a.name for a in la.DPT_ARGS} == DOCUMENTED
    doc = (ROOT / "docs" / "ros_node.md").read_text()
    for a in (*la.DPT_ARGS, *la.DEMO_ARGS):
        assert f"`{a.name}`" in doc, a.name
        assert a.description


def test_default_command_line():
    spec = la.dpt_node_spec(values())
    assert (spec.package, spec.executable, spec.name) == ("dpt_ros", "dpt_node", "dpt_node")
    assert spec.ros_args() == [
        "--ros-args", "-r", "__node:=dpt_node", "-r", "__ns:=/",
        "--params-file", f"{SHARE}/config/dpt.yaml",
        "-p", "use_sim_time:=false",
        "-r", "image:=camera/image_raw", "-r", "camera_info:=camera/camera_info",
    ]


def test_every_argument_reaches_the_command_line():
    spec = la.dpt_node_spec(values(
        namespace="robot1/", params_file="/p/my.yaml", image="/front/image_raw",
        camera_info="front/info", depth_model="123", segmentation_model="org/seg",
        device="cuda:1", use_sim_time="True", lifecycle="1",
    ))
    assert spec.executable == la.LIFECYCLE_EXECUTABLE and spec.name == "dpt_node"
    assert normalised(spec.ros_args()) == [
        "--ros-args", "-r", "__node:=dpt_node", "-r", "__ns:=/robot1",
        "--params-file", "/p/my.yaml",
        "-p", ("depth_model", "str", "123"),  # a directory named 123 stays a string
        "-p", ("segmentation_model", "str", "org/seg"),
        "-p", ("device", "str", "cuda:1"),
        "-p", ("use_sim_time", "bool", True),
        "-r", "image:=/front/image_raw", "-r", "camera_info:=front/info",
    ]
    spec = la.dpt_node_spec(values(depth_reference="/rgbd/depth", points_reference="lidar"))
    assert spec.remappings[2:] == [("depth_reference", "/rgbd/depth"),
                                   ("points_reference", "lidar")]


@pytest.mark.parametrize("value", ["123", "true", "/models/dpt large", "a: b", "", 5.0, 5, True,
                                   1e-7, -3])
def test_override_values_keep_their_type(value):
    parsed = yaml.safe_load(la.yaml_value(value))
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("arg", ["use_sim_time", "lifecycle"])
def test_bad_booleans_are_errors(arg):
    with pytest.raises(ValueError, match=arg):
        la.dpt_node_spec(values(**{arg: "yes please"}))


@pytest.mark.parametrize(("text", "want"), [("true", True), ("TRUE", True), ("1", True),
                                             ("false", False), (" False ", False), ("0", False)])
def test_booleans_read_as_launch_conditions_read_them(text, want):
    assert la.parse_bool("use_rviz", text) is want
    with pytest.raises(ValueError, match="use_rviz"):
        la.parse_bool("use_rviz", "yes")


def test_empty_input_topic_is_an_error():
    with pytest.raises(ValueError, match="image"):
        la.dpt_node_spec(values(image=""))


def test_rviz_command_line():
    spec = la.rviz_spec(values(namespace="r1", use_sim_time="true"), "/tmp/x.rviz")
    assert normalised(spec.ros_args()) == [
        "-d", "/tmp/x.rviz", "--ros-args", "-r", "__node:=rviz2", "-r", "__ns:=/r1",
        "-p", ("use_sim_time", "bool", True)]


@pytest.mark.parametrize("rate", ["5", "5.0", " 12 "])
def test_demo_camera_arguments_are_typed(rate):
    spec = la.demo_camera_spec({**la.defaults(la.DEMO_ARGS, SHARE), "rate": rate, "seed": "7"})
    assert spec.params["rate"] == float(rate) and type(spec.params["rate"]) is float
    assert spec.params["seed"] == 7 and type(spec.params["seed"]) is int
    assert ("seed", "int", 7) in normalised(spec.ros_args())
    assert ("rate", "float", float(rate)) in normalised(spec.ros_args())
    assert spec.namespace == "/camera"


@pytest.mark.parametrize("bad", [{"rate": "fast"}, {"width": "6.5"}, {"rate": "nan"}])
def test_demo_camera_rejects_bad_numbers(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        la.demo_camera_spec({**la.defaults(la.DEMO_ARGS, SHARE), **bad})


def test_executables_are_console_scripts():
    from dpt_ros.ros import node, synthetic_camera

    scripts = console_scripts()
    assert la.NODE_NAME == node.NODE_NAME
    assert scripts[la.NODE_EXECUTABLE] == "dpt_ros.ros.node:main"
    assert scripts[la.CAMERA_EXECUTABLE] == "dpt_ros.ros.synthetic_camera:main"
    assert callable(node.main) and callable(synthetic_camera.main)
    assert scripts[la.LIFECYCLE_EXECUTABLE] == "dpt_ros.ros.lifecycle_node:main"
    module, func = scripts[la.LIFECYCLE_EXECUTABLE].split(":")
    assert callable(getattr(__import__(module, fromlist=[func]), func))


def test_share_holds_what_the_launch_files_read(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    share = install_share(tmp_path / "install")
    for name in ("dpt.launch.py", "demo.launch.py"):
        assert (share / "launch" / name).is_file()
    assert Path(la.default_params_file(str(share))).is_file()
    assert Path(la.rviz_template(str(share))).is_file()
    assert {p.name for p in (share / "config").iterdir()} == {p.name for p in CONFIGS}
    assert (share / "package.xml").is_file()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_parameter_files_apply_in_any_namespace(path, tmp_path):
    from dpt_ros.config.params import BY_NAME
    from dpt_ros.offline.config import load_config

    doc = yaml.safe_load(path.read_text())
    assert list(doc) == ["/**/dpt_node"]
    params = load_params_file(path)
    assert params and set(params) <= set(BY_NAME)
    # the same block keyed for the root node and for one namespace reads the same
    for key in ("dpt_node", "/robot1/dpt_node"):
        other = tmp_path / "other.yaml"
        other.write_text(yaml.safe_dump({key: doc["/**/dpt_node"]}))
        assert load_params_file(other) == params
    # and the offline tools take every value from it
    config = load_config(str(path), {})
    assert config.ignored == []
    assert {k: config.values[k] for k in params} == params


def _template() -> str:
    return (ROOT / "rviz" / "dpt.rviz").read_text()


def test_rviz_template_shows_node_outputs():
    topics = display_topics(yaml.safe_load(_template()))
    node_topics = {"/dpt_node" + t[1:] for t in OUTPUT_TOPICS.values()}
    outputs = {v for v in topics.values() if v.startswith("/dpt_node/")}
    assert outputs and outputs <= node_topics
    assert "/camera/image_raw" in topics.values()  # the default input, root namespace
    for d in yaml.safe_load(_template())["Visualization Manager"]["Displays"]:
        if "Topic" in d:  # outputs are reliable; a reliable reader matches them
            assert d["Topic"]["Reliability Policy"] == "Reliable"


@pytest.mark.parametrize(("namespace", "image", "want_ns", "want_image"), [
    ("", "camera/image_raw", "", "/camera/image_raw"),
    ("robot1", "camera/image_raw", "/robot1", "/robot1/camera/image_raw"),
    ("/fleet/r2/", "/front/image_raw", "/fleet/r2", "/front/image_raw"),
])
def test_rviz_config_follows_the_namespace(namespace, image, want_ns, want_image):
    template = yaml.safe_load(_template())
    text = namespaced_config(_template(), namespace, image)
    config = yaml.safe_load(text)
    before, after = display_topics(template), display_topics(config)
    assert set(before) == set(after)
    for name, topic in before.items():
        want = want_image if topic == "/camera/image_raw" else want_ns + topic
        assert after[name] == want, name
    # nothing but the topics changed
    for d in config["Visualization Manager"]["Displays"]:
        d.get("Topic", {}).pop("Value", None)
    for d in template["Visualization Manager"]["Displays"]:
        d.get("Topic", {}).pop("Value", None)
    assert config == template


# --------------------------------------------- (2) the command lines, run for real
def _script(name: str, module: str) -> list[str]:
    import sys

    script = Path(sys.executable).with_name(name)
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


def get_parameters(peer: Peer, node: str, names: list[str], timeout: float = 15.0) -> dict:
    """GetParameters on `node` -> {name: python value}."""
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    client = peer.node.create_client(GetParameters, f"{node}/get_parameters")
    try:
        assert client.wait_for_service(timeout_sec=timeout), f"{node}/get_parameters"
        future = client.call_async(GetParameters.Request(names=names))
        peer.wait_until(future.done, timeout, "get_parameters response")
        return {n: parameter_value_to_python(v) for n, v in zip(names, future.result().values)}
    finally:
        peer.node.destroy_client(client)


def _frames(peer: Peer, ns: str):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    image = peer.publisher(Image, f"{ns}/camera/image_raw", reliable)
    info = peer.publisher(CameraInfo, f"{ns}/camera/camera_info", reliable)
    stamp = (12, 345)
    rgb = camera_rgb(48, 64)
    return [(info, camera_info_msg(60.0, 60.0, 32.0, 24.0, 64, 48, stamp, "cam")),
            (image, image_msg(rgb, "rgb8", stamp, "cam"))], stamp


NAMESPACED = dict(namespace="robot1", params_file=str(ROOT / "config" /
                                                      "depth_anything_metric.yaml"),
                  depth_model=str(WEIGHTS / "synthetic-depth"),
                  segmentation_model=str(WEIGHTS / "synthetic-seg"), device="cpu",
                  use_sim_time="true")


def _check_namespaced_node(peer: Peer, proc: NodeProcess) -> None:
    """A camera on /robot1/camera/... is processed; outputs under /robot1/dpt_node/...; the
    `/**/dpt_node` file's values and the overrides are the node's parameters."""
    from sensor_msgs.msg import Image

    depth = peer.collect(Image, "/robot1/dpt_node/depth/image")  # first: inputs are lazy
    seg = peer.collect(Image, "/robot1/dpt_node/segmentation/image")
    wait_for_subscriber(peer, proc, "/robot1/camera/image_raw")
    sends, stamp = _frames(peer, "/robot1")
    got_depth, got_seg = send_until(sends, [depth, seg], stamp, timeout=60)
    assert (got_depth.height, got_depth.width, got_depth.encoding) == (48, 64, "32FC1")
    assert got_seg.header.frame_id == "cam" and got_seg.encoding == "mono8"
    assert np.isfinite(np.frombuffer(bytes(got_depth.data), "<f4")).any()
    file_values = load_params_file(NAMESPACED["params_file"])
    names = ["depth.min", "depth.max", "pointcloud.stride", "colormap", "use_sim_time",
             "device", "depth_model", "segmentation_model"]
    got = get_parameters(peer, "/robot1/dpt_node", names)
    assert {k: got[k] for k in names[:4]} == {k: file_values[k] for k in names[:4]}
    assert got["use_sim_time"] is True and got["device"] == "cpu"
    assert got["depth_model"] == NAMESPACED["depth_model"]
    assert got["segmentation_model"] == NAMESPACED["segmentation_model"]


def wait_for_subscriber(peer: Peer, proc: NodeProcess, topic: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while peer.node.count_subscribers(topic) < 1:
        assert proc.alive(), f"exited with {proc.proc.returncode}:\n{proc.log()}"
        assert time.monotonic() < deadline, f"nothing subscribed to {topic}:\n{proc.log()}"
        time.sleep(0.1)


@pytest.mark.ros
def test_namespaced_command_line_runs_for_real(tmp_path):
    pytest.importorskip("rclpy")
    spec = la.dpt_node_spec(values(share=str(ROOT), **NAMESPACED))
    peer = Peer(domain_id("launch-ns"))
    proc = NodeProcess([*_script("dpt_node", "dpt_ros.ros.node"), *spec.ros_args()],
                       ros_env(peer.domain), tmp_path / "node.log")
    try:
        _check_namespaced_node(peer, proc)
    finally:
        code = proc.stop()
        peer.close()
    assert code == 0, proc.log_path.read_text()


def _check_camera(peer: Peer, proc: NodeProcess, rate: float) -> None:
    from sensor_msgs.msg import Image

    images = peer.collect(Image, "/camera/image_raw")
    deadline = time.monotonic() + 60
    while not images.msgs:
        assert proc.alive(), f"camera exited with {proc.proc.returncode}:\n{proc.log()}"
        assert time.monotonic() < deadline, proc.log()
        time.sleep(0.1)
    assert (images.msgs[0].width, images.msgs[0].height) == (32, 24)
    got = get_parameters(peer, "/camera/synthetic_camera", ["rate", "seed"])
    assert got == {"rate": rate, "seed": 7}
    assert type(got["rate"]) is float


@pytest.mark.ros
def test_demo_camera_command_line_takes_an_integer_rate(tmp_path):
    pytest.importorskip("rclpy")
    spec = la.demo_camera_spec({"seed": "7", "rate": "5", "width": "32", "height": "24"})
    peer = Peer(domain_id("launch-cam"))
    proc = NodeProcess([*_script("synthetic_camera", "dpt_ros.ros.synthetic_camera"),
                        *spec.ros_args()], ros_env(peer.domain), tmp_path / "camera.log")
    try:
        _check_camera(peer, proc, 5.0)
    finally:
        proc.stop()
        peer.close()


# ---------------------------------------- (3) the real launch service, when installed
RECORDED = (("dpt_ros", "dpt_node"), ("dpt_ros", "dpt_lifecycle_node"),
            ("dpt_ros", "synthetic_camera"), ("rviz2", "rviz2"))


def _recording_prefix(root: Path) -> tuple[Path, Path, Path]:
    """(prefix, share, record dir): every executable records its command line."""
    prefix, record = root / "install", root / "argv"
    record.mkdir(parents=True)
    share = install_share(prefix)
    for package, name in RECORDED:
        add_executable(prefix, package, name, record)
    return prefix, share, record


DPT_CASES = {
    "defaults": {},
    "namespace": {"namespace": "robot1"},
    "everything": {"namespace": "/fleet/r2", "image": "/front/image_raw", "camera_info": "info",
                   "depth_model": "123", "segmentation_model": "org/seg", "device": "cpu",
                   "use_sim_time": "true", "use_rviz": "true"},
    "lifecycle": {"lifecycle": "true", "namespace": "robot1"},
    "rviz root": {"use_rviz": "true"},
    "params file": {"params_file": "{config}/dpt_large_ade.yaml", "device": "cuda"},
}


@pytest.mark.ros
def test_real_launch_builds_the_spec_command_lines(tmp_path, monkeypatch):
    pytest.importorskip("launch_ros")
    monkeypatch.chdir(ROOT)
    runs = {}
    for i, (case, args) in enumerate(DPT_CASES.items()):
        prefix, share, record = _recording_prefix(tmp_path / f"case{i}")
        args = {k: v.format(config=share / "config") for k, v in args.items()}
        proc = start_launch(share / "launch" / "dpt.launch.py", args,
                            launch_env(ros_env(domain_id("launch-cmd")), prefix),
                            tmp_path / f"case{i}.log")
        runs[case] = (proc, share, record, args)
    for case, (proc, share, record, args) in runs.items():
        deadline = time.monotonic() + 60
        while proc.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.stop() == 0, (case, proc.log_path.read_text())
        want = values(share=str(share), **args)
        spec = la.dpt_node_spec(want)
        node = recorded(record, spec.executable)
        assert node is not None, (case, proc.log_path.read_text())
        assert normalised(node) == normalised(spec.ros_args()), case
        other = ({"dpt_node", "dpt_lifecycle_node"} - {spec.executable}).pop()
        assert recorded(record, other) is None, case
        rviz = recorded(record, "rviz2")
        if not la.parse_bool("use_rviz", want["use_rviz"]):
            assert rviz is None, case
            continue
        assert rviz is not None, (case, proc.log_path.read_text())
        config = Path(rviz[1])
        assert normalised(rviz) == normalised(la.rviz_spec(want, str(config)).ros_args())
        assert config.read_text() == namespaced_config(
            (share / "rviz" / "dpt.rviz").read_text(), want["namespace"], want["image"])
        config.unlink()


@pytest.mark.ros
@pytest.mark.parametrize("rate", ["5", "5.0"])
def test_real_demo_launch_types_its_arguments(rate, tmp_path, monkeypatch):
    pytest.importorskip("launch_ros")
    monkeypatch.chdir(ROOT)
    prefix, share, record = _recording_prefix(tmp_path)
    args = {"rate": rate, "use_rviz": "false"}
    code, log = run_launch(share / "launch" / "demo.launch.py", args,
                           launch_env(ros_env(domain_id("launch-demo")), prefix),
                           tmp_path / "launch.log")
    assert code == 0, log
    demo = {**la.defaults(la.DEMO_ARGS, str(share)), **args}
    camera = recorded(record, "synthetic_camera")
    assert normalised(camera) == normalised(la.demo_camera_spec(demo).ros_args())
    assert ("rate", "float", 5.0) in normalised(camera)
    node = recorded(record, "dpt_node")
    dpt = values(share=str(share), **la.demo_dpt_values(demo, str(WEIGHTS)))
    assert normalised(node) == normalised(la.dpt_node_spec(dpt).ros_args())
    assert recorded(record, "rviz2") is None


def _real_namespaced_launch(tmp_path: Path, executable: str, **extra: str) -> str:
    """dpt.launch.py with NAMESPACED (+ `extra`) under the real launch service, the real
    `executable` installed; checks the node serves /robot1/...; returns the launch log."""
    prefix = tmp_path / "install"
    share = install_share(prefix)
    add_executable(prefix, "dpt_ros", executable, None)
    peer = Peer(domain_id(f"launch-real-{executable}"))
    args = {k: v for k, v in NAMESPACED.items() if k != "params_file"}
    args.update(params_file=str(share / "config" / "depth_anything_metric.yaml"), **extra)
    proc = start_launch(share / "launch" / "dpt.launch.py", args,
                        launch_env(ros_env(peer.domain), prefix), tmp_path / "launch.log")
    try:
        _check_namespaced_node(peer, proc)
    finally:
        code = proc.stop(timeout=20)
        peer.close()
    log = proc.log_path.read_text()
    assert code == 0, log
    assert f"[{executable}-1]: process has finished cleanly" in log, log
    assert "ready:" in log and "/robot1/camera/image_raw" in log, log
    return log


@pytest.mark.ros
def test_real_launch_starts_the_namespaced_node(tmp_path, monkeypatch):
    """`dpt.launch.py namespace:=robot1 ...` under the real launch service starts the real
    node, which processes /robot1/camera/... into /robot1/dpt_node/...; Ctrl-C ends both."""
    pytest.importorskip("launch_ros")
    monkeypatch.chdir(ROOT)
    _real_namespaced_launch(tmp_path, "dpt_node")


@pytest.mark.ros
def test_real_demo_launch_camera_runs_with_an_integer_rate(tmp_path, monkeypatch):
    """The bug this guards: `rate:=5` reached the camera as an INTEGER and killed it."""
    pytest.importorskip("launch_ros")
    monkeypatch.chdir(ROOT)
    prefix = tmp_path / "install"
    share = install_share(prefix)
    add_executable(prefix, "dpt_ros", "synthetic_camera", None)
    add_executable(prefix, "dpt_ros", "dpt_node", tmp_path)  # recorded only: camera alone
    peer = Peer(domain_id("launch-demo-real"))
    args = {"rate": "5", "seed": "7", "width": "32", "height": "24", "use_rviz": "false"}
    proc = start_launch(share / "launch" / "demo.launch.py", args,
                        launch_env(ros_env(peer.domain), prefix), tmp_path / "launch.log")
    try:
        _check_camera(peer, proc, 5.0)
    finally:
        code = proc.stop(timeout=20)
        peer.close()
    log = proc.log_path.read_text()
    assert code == 0, log
    assert "InvalidParameterTypeException" not in log


@pytest.mark.ros
def test_real_launch_autostarts_the_lifecycle_node(tmp_path, monkeypatch):
    """`lifecycle:=true autostart:=true`: the launch file configures the managed node, then
    activates it once inactive, and it processes /robot1/camera/... like dpt_node."""
    pytest.importorskip("launch_ros")
    monkeypatch.chdir(ROOT)
    log = _real_namespaced_launch(tmp_path, "dpt_lifecycle_node", lifecycle="true",
                                  autostart="true")
    assert "configured: models loaded" in log, log


def test_autostart_needs_lifecycle():
    with pytest.raises(ValueError, match="autostart:=true needs lifecycle:=true"):
        la.dpt_node_spec(values(autostart="true"))
