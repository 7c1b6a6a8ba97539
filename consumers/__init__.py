"""Consumers: derive the evidence datasets from harmonized data, and let analysts pull them."""
