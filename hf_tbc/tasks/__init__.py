"""The tasks hf-tbc trains, one folder each with the same module names where they apply: ``arguments`` (the recipe's
flags), ``data``, ``model``, ``train``, ``report`` (the study's plan and report) and ``card`` (the Hub card and public
record). The study drives them through :mod:`hf_tbc.tasks.registry`."""
