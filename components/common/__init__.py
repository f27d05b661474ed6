"""What the components share: names, the dataset, the serving contract, metrics, noise, the serving dir."""
