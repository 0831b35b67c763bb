"""Helpers for testing facecascade and programs built on it."""
