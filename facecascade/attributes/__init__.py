"""Facial attributes: `AttributeClassifier` (MCFA) and the attribute crop."""

from .classifier import AttributeClassifier

__all__ = ["AttributeClassifier"]
