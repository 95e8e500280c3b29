"""torch engine: models, datasets, SNN simulation with real early exit, training."""
