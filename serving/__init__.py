"""The search service (Litestar), the index fetcher and the local deploy runner."""
