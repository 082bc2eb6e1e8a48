"""Training: the loop, checkpoints, schedules and distributed setup."""
