"""Inpainting methods: one module per method, registered in :mod:`restore.models.registry`."""
