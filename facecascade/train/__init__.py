"""Training of the cascades."""
