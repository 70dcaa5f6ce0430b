"""Offline processing of bags, images and videos with the same pipeline as the node."""
