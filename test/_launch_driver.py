"""Run one launch file with the real launch / launch_ros, as `ros2 launch` does (ros2cli is
not installed here): `python _launch_driver.py FILE [name:=value ...]`. Exits with the launch
service's return code; SIGINT stops it (and its processes) as Ctrl-C would."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import AnyLaunchDescriptionSource

    from launch import LaunchDescription, LaunchService

    path, *pairs = argv
    arguments = [tuple(p.split(":=", 1)) for p in pairs]
    service = LaunchService(argv=pairs, noninteractive=True)
    service.include_launch_description(LaunchDescription([
        IncludeLaunchDescription(AnyLaunchDescriptionSource(path), launch_arguments=arguments)
    ]))
    return service.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
