"""The web application of the hub (`ioxhub serve`): the REST API, SDMX REST, schemas over HTTP, the portal.

`app.web.app.create_app(settings)` builds it; routers: api (/api/v1), sdmx (/sdmx/rest), schemas (/schemas),
auth (/login, /logout), portal (pages). docs/api.md.
"""
