# Put first on PYTHONPATH by .ci/colcon_check: `import transformers` fails as in a ROS distro
# without it, so the test suite must skip (not fail) what needs the oracle.
raise ModuleNotFoundError(
    "transformers is hidden (.ci/no_transformers): emulating a distro without it",
    name="transformers",
)
