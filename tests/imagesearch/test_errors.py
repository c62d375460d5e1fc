"""imagesearch.errors: every error type is declared transient or permanent, in one table that names real types."""

from __future__ import annotations

import builtins
import importlib
import pkgutil

import pytest
from google.api_core import exceptions as google
from google.api_core.exceptions import RetryError

from imagesearch import errors
from imagesearch.errors import RETRY, declared, is_transient

PROJECT_PACKAGES = ("imagesearch", "tasks", "serving", "localdev")


def project_exceptions() -> set[type]:
    """Every exception type the project defines (its modules imported)."""
    for package in PROJECT_PACKAGES:
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            importlib.import_module(module.name)
    found: set[type] = set()
    pending: list[type] = [BaseException]
    while pending:
        cls = pending.pop()
        found.add(cls)
        pending += cls.__subclasses__()
    return {cls for cls in found if cls.__module__.split(".")[0] in PROJECT_PACKAGES}


def test_every_project_error_type_is_declared_by_name() -> None:
    from imagesearch.settings import SettingsError
    from tasks.cli import StepSkipped  # not an error: the step chose to do nothing (the task is skipped)

    error_types = {cls for cls in project_exceptions() if issubclass(cls, errors.ImageSearchError)} | {SettingsError}
    undeclared = sorted(cls.__qualname__ for cls in error_types - {StepSkipped} if cls.__qualname__ not in RETRY)
    assert undeclared == []


def test_every_name_in_the_table_is_an_exception_type() -> None:
    project = {cls.__qualname__ for cls in project_exceptions()}
    for name in RETRY:
        if "." in name:
            module, _, qualname = name.rpartition(".")
            cls = getattr(importlib.import_module(module), qualname)
        else:
            cls = getattr(builtins, name, None)
            assert name in project or (isinstance(cls, type) and issubclass(cls, BaseException)), name
            continue
        assert isinstance(cls, type) and issubclass(cls, BaseException), name


@pytest.mark.parametrize(("error", "transient"), [
    (ConnectionRefusedError(111, "Connection refused"), True),
    (TimeoutError("timed out"), True),
    (OSError(28, "No space left on device"), True),
    (FileNotFoundError(2, "No such file"), False),
    (ValueError("unsupported model repository URI 'ftp://x'"), False),
    (KeyError("version"), False),  # a bug: the same code fails again
    (google.ServiceUnavailable("503"), True),
    (google.InternalServerError("500"), True),
    (google.TooManyRequests("429"), True),
    (google.DeadlineExceeded("504"), True),
    (RetryError("gave up", cause=None), True),
    (google.Forbidden("403"), False),
    (google.NotFound("404"), False),
    (errors.ImageFetchTimeoutError("deadline"), True),
    (errors.ImageFetchTooSlowError("16 bytes/s"), True),
    (errors.ImageFetchUnavailableError("HTTP 503"), True),
    (errors.ImageFetchError("HTTP 403"), False),
    (errors.InputRefusedError("host not allowed"), False),
    (errors.CatalogUnavailableError("timeout"), True),
    (errors.CatalogError("no valid rows"), False),
    (errors.RepositoryUnavailableError("503"), True),
    (errors.ArtifactError("checksum mismatch"), False),
    (errors.VersionTakenError("committed"), False),
    (errors.VersionNotCommittedError("not committed"), False),
    (errors.GitOpsError("git push failed: could not resolve host"), True),
])
def test_transient_or_permanent(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_the_most_specific_type_decides_then_the_cause() -> None:
    assert isinstance(errors.VersionNotCommittedError("x"), errors.GitOpsError)  # a GitOpsError, yet permanent
    assert not is_transient(errors.VersionNotCommittedError("x"))

    class Wrapped(Exception):
        pass

    try:
        try:
            raise google.ServiceUnavailable("503")
        except google.ServiceUnavailable as exc:
            raise Wrapped("while listing") from exc
    except Wrapped as wrapped:
        assert declared(wrapped) is errors.TRANSIENT
    assert declared(Wrapped("nothing listed")) is None
    assert is_transient(Wrapped("nothing listed")) is (errors.UNLISTED is errors.TRANSIENT)


def test_an_error_may_say_for_itself() -> None:
    from tasks.cli import StepFailed

    assert not is_transient(StepFailed("quality gate failed"))
    assert is_transient(StepFailed("10 of 10 images failed", transient=True))
