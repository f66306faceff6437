"""Translation under a wall-clock budget: the paper's second experiment, wider against deeper encoder-decoders."""
