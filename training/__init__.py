"""Config, losses, checkpoints and the trainer."""
