"""The start-up configuration (parameter table, parameter files, launch arguments, rviz
config) is read without torch and without the model: launch files, docs and CLIs must not
pay ~1.8 s of torch import for a parameter table. A fresh interpreter, since this test
process has long imported torch."""

from __future__ import annotations

import json
import subprocess
import sys

MODULES = ("dpt_ros.config.params", "dpt_ros.config.params_file",
           "dpt_ros.config.launch_args", "dpt_ros.config.rviz_config")


def test_config_imports_neither_torch_nor_the_model():
    code = (
        "import json, sys\n"
        + "".join(f"import {m}\n" for m in MODULES)
        + "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('torch', 'rclpy') or m.startswith('dpt_ros.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "torch" not in loaded
    assert "rclpy" not in loaded
    assert not [m for m in loaded if m == "dpt_ros.model" or m.startswith("dpt_ros.model.")]
    assert not [m for m in loaded if m.startswith("dpt_ros.core")], loaded
    assert set(MODULES) <= set(loaded)
