"""dpt_ros: an ament_python ROS 2 package that is also pip-installable.

Inside a ROS 2 workspace `colcon build` installs it (scripts to lib/dpt_ros, so `ros2 run`
finds them); on a bare machine `pip install -e .[ros,test]` gives the same console scripts.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "dpt_ros"

ROS_WHEELS = [
    # Pinned pip builds of ROS 2 Jazzy; never installed inside a ROS distro (it has its own).
    "ros-jazzy-rclpy[fastrtps]==7.1.6",
    "ros-jazzy-sensor-msgs==5.3.6",
    "ros-jazzy-std-msgs==5.3.6",
    "ros-jazzy-diagnostic-msgs==5.3.6",
]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["weights/*/*.json", "weights/*/*.safetensors"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/rviz", glob("rviz/*.rviz")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "torch>=2.1",
        "safetensors>=0.4",
        "huggingface_hub>=0.20",
        "pyyaml>=6",
        "pillow>=9",
    ],
    extras_require={
        "ros": ROS_WHEELS,
        "offline": ["rosbags>=0.10", "imageio>=2.30", "imageio-ffmpeg>=0.5"],
        # dpt-ros fleet: Ray Core, pinned to the release the fleet was tested with (the
        # driver, the workers and a KubeRay image must run this same version); pyarrow:
        # the file systems of URL inputs (s3://, gs://, ...); psutil: the loopback test
        "fleet": ["ray==2.60.0", "pyarrow>=14", "psutil>=5.9"],
        # pillow>=13: the oracle's resize; colcon: .ci/colcon_check builds the package with it
        # import-linter: the layer / cycle contracts in .importlinter (`make lint`)
        # open3d-cpu: the oracle of the voxel filter's grid (core.pointcloud.filters); its
        # wheel needs libusb-1.0 (apt libusb-1.0-0), else the tests that use it skip
        "test": ["pytest>=8", "transformers>=5.0", "ruff>=0.6", "pillow>=13",
                 "colcon-common-extensions>=0.3", "import-linter>=2.17",
                 "open3d-cpu==0.20.0; sys_platform == 'linux' and platform_machine == 'x86_64'"],
    },
    zip_safe=False,
    maintainer="dpt_ros maintainers",
    maintainer_email="dpt_ros@example.com",
    description="DPT depth, segmentation and point clouds for ROS 2, in plain PyTorch.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "dpt_node = dpt_ros.ros.node:main",
            "dpt_lifecycle_node = dpt_ros.ros.lifecycle_node:main",
            "synthetic_camera = dpt_ros.ros.synthetic_camera:main",
            "dpt-ros = dpt_ros.offline.cli:main",
        ],
    },
)
