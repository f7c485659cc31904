"""Training, evaluation and model-card scripts for GAUNTLET checkpoints (never imported by the app)."""
