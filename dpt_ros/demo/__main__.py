"""`python -m dpt_ros.demo --out demo_out [--frames N]` (see `dpt_ros.demo`)."""

import sys

from dpt_ros.demo.cli import main

sys.exit(main())
