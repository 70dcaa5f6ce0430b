"""Depth Anything V1/V2 and Prompt Depth Anything: DINOv2 + DPT's neck and a Depth Anything
head (configured by DPTConfig); the prompt variant's image processor. Public names are
exported from `dpt_ros.model`."""
