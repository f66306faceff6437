"""Text classification: finetuning a checkpoint on a GLUE task or local files, and the cards of its variants."""
