"""Shared pytest set-up: keep torch to the machine's cores and quiet."""

import os

import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
