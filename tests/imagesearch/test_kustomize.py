"""kustomize: one literal edited in place, the rest of the file kept; refusals of what would inject YAML."""

from __future__ import annotations

import pytest

from imagesearch import kustomize
from imagesearch.settings import PROJECT_ROOT

V1 = "20260101T000000Z"



def test_literal_edit_keeps_the_rest_of_the_file() -> None:
    text = ("configMapGenerator:\n  - name: x\n    literals:\n      # the version\n"
            "      - IMAGESEARCH_INDEX_VERSION=  # set by CI\n")
    edited = kustomize.set_literal(text, kustomize.VERSION_KEY, V1)
    assert edited == text.replace("VERSION=  #", f"VERSION={V1}  #")
    assert kustomize.read_literal(edited, kustomize.VERSION_KEY) == V1
    with pytest.raises(kustomize.KustomizeError, match="not allowed"):
        kustomize.set_literal(text, kustomize.VERSION_KEY, "x\n- evil=1")
    with pytest.raises(kustomize.KustomizeError, match="exactly one"):
        kustomize.read_literal(text + text, kustomize.VERSION_KEY)


def test_the_local_overlay_renders_to_the_fetch_and_search_containers() -> None:
    workload = kustomize.read_workload(kustomize.render(PROJECT_ROOT / "gitops" / "overlays" / "local"))
    assert workload.fetch.name == kustomize.FETCH_CONTAINER and workload.search.name == kustomize.SEARCH_CONTAINER
    assert "serving.fetch" in " ".join(workload.fetch.command) and "serving.app" in " ".join(workload.search.command)
    assert workload.config_map.startswith("imagesearch-index-") and kustomize.VERSION_KEY in workload.search.env
    assert kustomize.literal_in_line(f"      - {kustomize.VERSION_KEY}={V1}", kustomize.VERSION_KEY) == V1
    assert kustomize.literal_in_line("      - OTHER=1", kustomize.VERSION_KEY) is None


@pytest.mark.parametrize("value", [f"{V1}\n", f"{V1}\r\n", "\n"])
def test_a_value_with_a_trailing_newline_is_refused(value: str) -> None:
    text = "configMapGenerator:\n  - name: x\n    literals:\n      - IMAGESEARCH_INDEX_VERSION=\n"
    with pytest.raises(kustomize.KustomizeError, match="not allowed"):
        kustomize.set_literal(text, kustomize.VERSION_KEY, value)
