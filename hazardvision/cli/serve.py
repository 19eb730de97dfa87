"""`hazardvision serve`: run the HTTP service."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from hazardvision.cli.common import HomeOption, err, fail
from hazardvision.errors import HazardVisionError


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on. Default: $HAZARDVISION_HOST, else "
                                             "127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port. Default: $HAZARDVISION_PORT, else "
                                             "8000.")] = None,
    home: HomeOption = None,
    models: Annotated[Path | None, typer.Option("--models", help="Models folder. Default: $HAZARDVISION_MODELS, "
                                                "else the bundled packs.")] = None,
    env_file: Annotated[Path | None, typer.Option("--env-file", exists=True, dir_okay=False, help="A .env file of "
                                                  "HAZARDVISION_* settings (the environment wins over it).")] = None,
) -> None:
    """Serve scans, reviews, video frames and model activation over HTTP (JSON logs on stderr)."""
    # The web stack loads only for this command, so that the others start fast.
    import uvicorn  # noqa: PLC0415

    from hazardvision.service.app import create_app  # noqa: PLC0415
    from hazardvision.service.connections import server_config  # noqa: PLC0415
    from hazardvision.service.errors import readable  # noqa: PLC0415
    from hazardvision.service.logs import configure  # noqa: PLC0415
    from hazardvision.service.native_heap import limit_native_heap  # noqa: PLC0415
    from hazardvision.service.settings import load_settings  # noqa: PLC0415

    try:
        settings = load_settings(env_file, host=host, port=port, home=home, models=models)
    except ValidationError as error:
        message, _ = readable(error.errors())
        err.print(f"[red]error:[/red] invalid settings: {message}", highlight=False)
        raise typer.Exit(2) from error
    configure(settings.log_level)
    # Before the service starts its threads, so that they share the few arenas.
    applied = limit_native_heap(settings.malloc_arenas, settings.malloc_mmap_threshold_bytes)
    if applied:
        logging.getLogger("hazardvision.service").info("native heap: %s", ", ".join(applied))
    try:
        app = create_app(settings)
    except HazardVisionError as error:
        fail(error)
    config = server_config(app, settings, host=settings.host, port=settings.port, access_log=False, log_config=None,
                           timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    server.run()
    if not server.started:  # the port was taken, say (uvicorn logged why)
        raise typer.Exit(3)
