"""ioxhub: an event-driven data exchange hub for international organizations.

Data flows one way: producers -> Kafka topics -> ingest DAGs -> object storage zones -> consumers.
"""
__version__ = "0.1.0"
