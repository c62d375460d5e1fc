"""The search service (Litestar) and the index fetcher: what the serving image ships."""
