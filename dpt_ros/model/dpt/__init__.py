"""DPT (Ranftl et al. 2021): its config (shared with Depth Anything), the ViT / hybrid /
DINOv2 / BEiT / Swinv2 models, the neck and heads the other families reuse, and the image
processor. Public names are exported from `dpt_ros.model`."""
