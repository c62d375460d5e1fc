"""Training a head on a catalog's stored raw vectors (torch allowed here: nothing else under imagesearch/ imports it)."""
