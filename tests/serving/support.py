"""A steady HTTP client and a CLI runner, shared by the deploy and end-to-end tests."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import httpx

from tests.conftest import ROOT, photo, png_bytes


class Client(threading.Thread):
    """Searches, asks for similar items and for the index, back to back, until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stopping = threading.Event()
        self.versions: list[str] = []
        self.failures: list[str] = []
        self.query = png_bytes(photo("astronaut").resize((160, 160)))

    def request(self, http: httpx.Client, turn: int) -> httpx.Response:
        if turn % 3 == 0:
            return http.post("/v1/search", params={"k": 3}, files={"image": ("q.png", self.query, "image/png")})
        return http.get("/v1/items/coffee/similar", params={"k": 3}) if turn % 3 == 1 else http.get("/v1/index")

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            turn = 0
            while not self.stopping.is_set():
                try:
                    response = self.request(http, turn)
                    if response.status_code == 200:
                        self.versions.append(response.json()["version"])
                    else:
                        self.failures.append(f"HTTP {response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                turn += 1
                time.sleep(0.01)  # continuous, but leave the 2-core CI machine some room for the deploy itself

    def wait_for(self, version: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        seen = len(self.versions)
        while time.monotonic() < deadline:
            if self.versions[seen:].count(version) >= 5:
                return
            time.sleep(0.05)
        raise AssertionError(f"the client never saw {version}; failures: {self.failures[:3]}")

    def stop(self) -> list[str]:
        """The versions it saw, in order, consecutive repeats collapsed."""
        self.stopping.set()
        self.join(timeout=60)
        return [v for i, v in enumerate(self.versions) if i == 0 or self.versions[i - 1] != v]


def cli(env: dict[str, str], module: str, *argv: str) -> str:
    result = subprocess.run([sys.executable, "-m", module, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"{module} {argv} failed:\n{result.stderr[-3000:]}"
    return result.stdout.strip().splitlines()[-1]
