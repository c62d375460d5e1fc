"""The bump commit's words: a subject naming version and overlay, items and metrics, machine-read trailers."""

from __future__ import annotations

from imagesearch import pins
from imagesearch.gitops.commit_messages import bump_message, pinned_message, reverted_message
from imagesearch.gitops.config import GitOpsConfig

CONFIG = GitOpsConfig("/srv/gitops.git", overlay="gitops/overlays/staging")


def test_bump_message() -> None:
    message = bump_message(CONFIG, "20260102T000000Z", "20260101T000000Z", 1200, {"recall_at_10": 0.98765, "a": 1.0})
    subject, body, trailers = message.split("\n\n")
    assert subject == "Deploy index 20260102T000000Z to staging"
    assert body == "Items: 1200\nMetrics: a=1, recall_at_10=0.9877"
    assert trailers.splitlines() == ["Index-Version: 20260102T000000Z", "Previous-Version: 20260101T000000Z",
                                     "Overlay: gitops/overlays/staging", "Rollout-Action: deploy"]
    promoted = bump_message(CONFIG, "20260102T000000Z", "", None, None, title="Promote it", action="promote")
    assert promoted.split("\n\n")[0] == "Promote it" and "Previous-Version: none" in promoted
    assert promoted.endswith("Rollout-Action: promote")


def test_refusals_say_what_to_do() -> None:
    pin = pins.Pin("20260101T000000Z", "bad results", "ops@test", "2026-01-01T00:00:00+00:00")
    assert "tasks.operations.rollback unpin" in pinned_message(CONFIG, pin) and "bad results" in pinned_message(CONFIG, pin)
    reverted = pins.Reverted("20260102T000000Z", "bad results", "ops@test", "2026-01-01T00:00:00+00:00")
    assert "unpin --deploy 20260102T000000Z" in reverted_message("20260102T000000Z", reverted)


def test_values_in_commit_messages_are_escaped() -> None:
    """A reason or name with a newline cannot forge a trailer; an ANSI escape never reaches `git log`."""
    pin = pins.Pin("20260101T000000Z", "bad\nIndex-Version: 20990101T000000Z", "ops\x1b[2J@test", "2026-01-01T00:00:00Z")
    assert "bad\\nIndex-Version" in pinned_message(CONFIG, pin) and "ops\\x1b[2J@test" in pinned_message(CONFIG, pin)
    reverted = pins.Reverted("20260102T000000Z", "bad\r\nresults", "ops\n@test", "2026-01-01T00:00:00Z")
    assert "\n" not in reverted_message("20260102T000000Z", reverted) and "bad\\r\\nresults" in reverted_message(
        "20260102T000000Z", reverted)
    message = bump_message(CONFIG, "20260102T000000Z", "", None, None, title="Promote\nRollout-Action: rollback")
    assert message.splitlines()[0] == "Promote\\nRollout-Action: rollback" and message.endswith("Rollout-Action: deploy")
