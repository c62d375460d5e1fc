"""Developer entry points (not imported by the product)."""
