"""Evaluation of detections against annotated faces."""
