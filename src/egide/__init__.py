"""Égide: a sovereign generative-AI platform."""

__version__ = "0.1.0"
