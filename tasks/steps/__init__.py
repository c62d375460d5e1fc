"""The pipeline steps: one CLI each (``python -m tasks.steps.<module>``), declared in tasks/pipeline.py."""
