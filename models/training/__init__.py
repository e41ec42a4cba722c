"""Training the S2HAND network: batches and augmentation, the loop, checkpoints, prediction."""
