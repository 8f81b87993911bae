"""PyTorch engine. Import it only where PyTorch is needed: it imports torch."""
