"""Consumers: derive the evidence datasets from harmonized data, and let analysts pull them.

    from consumers import pull
    panel = pull("indicator_panel_annual", where=["ref_area=FRA"], columns=["indicator", "year", "value"])
"""
from consumers.access import list_datasets, pull

__all__ = ["list_datasets", "pull"]
