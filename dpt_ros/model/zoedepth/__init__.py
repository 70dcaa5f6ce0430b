"""ZoeDepth: DPT-BEiT with the metric bins head, its config and image processor. Public
names are exported from `dpt_ros.model`."""
