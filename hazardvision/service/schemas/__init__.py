"""Request and response schemas of the service, one module per resource."""
