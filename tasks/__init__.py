"""The pipeline's code: ``steps/`` (one CLI per pipeline step, ``python -m tasks.steps.<step> --workspace URI ...``),
``operations/`` (the operators' CLIs: rollback, promote, run_all) and, here, what they share: the declaration
(``pipeline.py``), the step CLI and context (``cli.py``), the run workspace and the helpers the steps call."""
