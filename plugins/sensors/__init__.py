"""Sensors: the catalog watch's wait for a new snapshot."""
