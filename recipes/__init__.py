"""The recipes, importable once hf-tbc is installed: ``accelerate launch -m hf_tbc.recipes.run_mlm ...``."""
