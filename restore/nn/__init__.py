"""Layers shared by the methods."""
