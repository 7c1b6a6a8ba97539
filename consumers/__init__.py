"""Consumers: derive the evidence datasets from harmonized data, and let analysts pull them.

    from ioxhub.consumers import pull
    panel = pull("indicator_panel_annual", where=["ref_area=FRA"], columns=["indicator", "year", "value"])
"""
from ioxhub.consumers.access import list_datasets, pull

__all__ = ["list_datasets", "pull"]
