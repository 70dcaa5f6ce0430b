"""Layers shared by the backbones and heads: one small idea per module."""
