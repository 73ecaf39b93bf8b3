"""The audit record: typed events, a hash chain, signed checkpoints, offline verification."""
