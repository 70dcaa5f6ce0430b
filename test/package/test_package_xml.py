"""package.xml declares what the code imports, so `rosdep install --from-paths src
--ignore-src` + `colcon build` give a working node; what rosdep cannot install is in
requirements.txt. Every import of dpt_ros/ and launch/ is read from the source (ast), not
from a list kept by hand."""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "dpt_ros").rglob("*.py"), *(ROOT / "launch").glob("*.py")])
# Python modules whose rosdep key is not the module name.
PYTHON_KEYS = {"numpy": "python3-numpy", "yaml": "python3-yaml", "PIL": "python3-pil"}
# pip distributions (requirements.txt) of modules rosdep does not install (why: package.xml)
PIP = {"torch": "torch", "safetensors": "safetensors", "huggingface_hub": "huggingface_hub",
       "rosbags": "rosbags", "imageio": "imageio"}
# pip-only modules of an optional extra (setup.py), not in requirements.txt: what a ROS user
# installs next to the distro; `dpt-ros fleet` asks for `pip install dpt_ros[fleet]`.
EXTRAS = {"ray": "fleet", "pyarrow": "fleet"}
# Declared without an import in the code, and why.
NOT_IMPORTED = {
    "rviz2": "an executable the launch files start (use_rviz:=true)",
    "lifecycle_msgs": "the managed node (dpt_lifecycle_node, lifecycle:=true)",
}


def _package() -> ET.Element:
    return ET.parse(ROOT / "package.xml").getroot()


def _deps(kind: str) -> set[str]:
    return {e.text.strip() for e in _package().iter(kind)}


def imported_modules() -> dict[str, set[str]]:
    """Top-level module -> files importing it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def third_party() -> dict[str, set[str]]:
    return {m: f for m, f in imported_modules().items()
            if m not in sys.stdlib_module_names and m not in ("dpt_ros", "__future__")}


def test_format_3_ament_python_and_license_file():
    pkg = _package()
    assert pkg.get("format") == "3" and pkg.findtext("name") == "dpt_ros"
    assert pkg.find("export/build_type").text == "ament_python"
    license_ = pkg.find("license")
    assert license_.text == "Apache-2.0" and license_.get("file") == "LICENSE"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 190


def test_every_imported_package_is_declared_or_pip_installed():
    declared = _deps("exec_depend") | _deps("depend")
    missing = {}
    for module, files in third_party().items():
        if module in PIP or module in EXTRAS:
            continue
        key = PYTHON_KEYS.get(module, module)
        if key not in declared:
            missing[module] = sorted(files)
    assert not missing, f"imported but not in package.xml (nor requirements.txt): {missing}"


def test_pip_only_modules_are_in_requirements():
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text()
             .splitlines()]
    names = {re.split(r"[<>=!~ \[]", line)[0].lower().replace("_", "-") for line in lines
             if line}
    for module, dist in PIP.items():
        if module in third_party():
            assert dist.lower().replace("_", "-") in names, dist
    setup = (ROOT / "setup.py").read_text()
    for module, extra in EXTRAS.items():  # each optional module is in its extra
        assert re.search(rf'"{extra}": \[[^]]*"{module}[=<>]', setup), (module, extra)
    # numpy from the distro, pinned below 2 next to it (its message modules need 1.x)
    assert any(re.fullmatch(r"numpy>=[\d.]+,<2", line) for line in lines)


def test_every_declared_dependency_is_used():
    imported = {PYTHON_KEYS.get(m, m) for m in third_party()}
    for dep in _deps("exec_depend"):
        assert dep in imported or dep in NOT_IMPORTED, f"{dep} is declared but not used"
    launch_rule = (ROOT / "dpt_ros" / "config" / "launch_args.py").read_text()
    assert 'package="rviz2"' in launch_rule
    assert "python3-pytest" in _deps("test_depend")
