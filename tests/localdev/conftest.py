"""The serving fixtures (one embedder, the published index as the initContainer fetches it) for localdev's tests."""

from tests.serving.conftest import embedder, index_a  # noqa: F401
