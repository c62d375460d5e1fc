"""The image-search Airflow plugin: registers the step tasks' extra links so the UI shows them.

This folder is Airflow's plugins folder (``AIRFLOW__CORE__PLUGINS_FOLDER``); it holds only plugin files.
The rest of ``plugins/`` is a library imported as ``plugins.*``, so it needs no ``.airflowignore``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from plugins.links import ALL_LINKS


class ImageSearchPlugin(AirflowPlugin):
    name = "imagesearch"
    operator_extra_links = [link() for link in ALL_LINKS]
