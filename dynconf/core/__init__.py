"""numpy-only core: the run format, decoders, exit policies, metrics, oracle, selection."""
