"""Hearth's front ends (CLI, Qt window, local API) and the headless engine they drive."""
