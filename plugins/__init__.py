"""Airflow plugins of the image-search platform: the step operators and the hooks they use."""
