"""The step tasks' extra links in the Airflow UI: the published version, the GitOps commit, the search page.

Airflow 3 resolves a task's links on the worker when the task ends (the URL is stored as an XCom the UI
reads), so each link is built from the finished step's summary and this worker's settings. A link that
does not apply (a skipped or failed task, a bump that changed nothing, no commit URL template) is empty,
and the UI shows it disabled. They are registered by ``plugins/airflow_plugins/imagesearch_plugin.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

from imagesearch.settings import Settings, get_settings
from plugins.hooks.model_repository import ModelRepositoryHook
from tasks.pipeline import Step

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


def _summary(operator: BaseOperator) -> dict[str, Any]:
    return getattr(operator, "summary", None) or {}


def version_url(publish_summary: dict[str, Any]) -> str:
    """The published version's page, from publish's summary ("" without one)."""
    if not publish_summary.get("version") or not publish_summary.get("repository"):
        return ""
    return ModelRepositoryHook(publish_summary["repository"]).version_url(publish_summary["version"])


def commit_url(deploy_summary: dict[str, Any], settings: Settings) -> str:
    """The bump commit's web page, from deploy's summary and the URL template ("" without either)."""
    if not settings.gitops.commit_url_template or not deploy_summary.get("commit"):
        return ""
    return settings.gitops.commit_url_template.format(commit=deploy_summary["commit"],
                                                      version=deploy_summary.get("version", ""))


class ModelVersionLink(BaseOperatorLink):
    """publish: the version in the model repository (the GCS console for gs://, a file:// URL locally)."""

    name = "Index version"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return version_url(_summary(operator))


class GitOpsCommitLink(BaseOperatorLink):
    """deploy: the bump commit's web page, from ``IMAGESEARCH_GITOPS_COMMIT_URL_TEMPLATE``."""

    name = "GitOps commit"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return commit_url(_summary(operator), get_settings())


class SearchPageLink(BaseOperatorLink):
    """The search web page (``IMAGESEARCH_SEARCH_PAGE_URL``), once the step succeeded."""

    name = "Search page"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return get_settings().serving.search_page() if _summary(operator) else ""


ALL_LINKS = (ModelVersionLink, GitOpsCommitLink, SearchPageLink)


def step_links(step: Step) -> list[BaseOperatorLink]:
    """The links of one step's task: to the version it published, to the commit it pushed (none for most steps)."""
    links = [*([ModelVersionLink] if step.publishes_version else []), *([GitOpsCommitLink] if step.commits_to_git else [])]
    return [link() for link in (*links, *([SearchPageLink] if links else []))]
