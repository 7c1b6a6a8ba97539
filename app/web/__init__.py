"""The hub's web application: the portal's pages (portal.py) and the API, served by `ioxhub serve`."""
