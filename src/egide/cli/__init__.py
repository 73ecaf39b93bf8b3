"""Command-line entry point (everything but ``serve``): talks to a running server over
HTTP, or runs in-process when none answers."""
