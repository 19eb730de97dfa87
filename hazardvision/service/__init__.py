"""The hazardvision HTTP service: `service.app.create_app(settings)` and `service.settings.Settings`.

Nothing is imported here, so that a module of this package (the audit of promotions, say) can be used by
the CLI without loading the web stack.
"""
