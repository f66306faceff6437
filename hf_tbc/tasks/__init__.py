"""The tasks hf-tbc trains, one folder each with the same rooms where they apply: ``arguments`` (the recipe's
flags), ``data``, ``model``, ``train``, ``compress`` (its grid), ``release`` and ``card`` (what it publishes),
``plan``, ``findings`` and ``report`` (what a study reports of it), and ``task`` (its :class:`~.task.Task`: what the
study, the advisor, compress.py and release.py ask of it). :mod:`hf_tbc.tasks.registry` lists the tasks and answers
"which task is this?" for a name, a trained model and a compressed variant."""
