"""The Airflow plugin registers the step tasks' extra links, as Airflow's plugin manager loads it."""

from __future__ import annotations

from plugins.airflow_plugins.imagesearch_plugin import ImageSearchPlugin
from plugins.links import ALL_LINKS


def test_the_plugin_registers_every_link() -> None:
    assert ImageSearchPlugin.name == "imagesearch"
    assert [type(link) for link in ImageSearchPlugin.operator_extra_links] == list(ALL_LINKS)
    assert [link.name for link in ImageSearchPlugin.operator_extra_links] == ["Index version", "GitOps commit",
                                                                              "Search page"]
