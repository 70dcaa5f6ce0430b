"""Pictures of the outputs: depth colour maps and segmentation palettes / overlays."""
