"""Shared by every layer: neutral types and attribute names, errors, wording, measurements on cubes, figure helpers."""
