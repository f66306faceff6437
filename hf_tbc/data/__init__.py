"""Reading what a run trains on: data files (text, CSV, JSON, TSV) with clear errors, and tokenizers trained on
the corpus or loaded."""
