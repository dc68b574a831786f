"""The README's demo: the provider watching a training and model-registry scenario on the local W&B backend."""
