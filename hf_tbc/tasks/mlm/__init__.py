"""Masked-LM pretraining under a wall-clock budget: the paper's main experiment, sizes trained for one budget."""
