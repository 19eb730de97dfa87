"""The request deadline and the body limit, on a small app served by a real uvicorn server."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hazardvision.service.middleware import BodyLimit, Deadline

LIMIT = 1000


async def slow(_request: Request) -> JSONResponse:
    await asyncio.sleep(30)
    return JSONResponse({})


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"bytes": len(await request.body())})


@pytest.fixture(scope="module")
def url():
    app = Deadline(BodyLimit(Starlette(routes=[Route("/slow", slow), Route("/echo", echo, methods=["POST"])]),
                             lambda _path: LIMIT), seconds=1.0)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


def test_deadline_unanswered_request_gets_503(url):
    response = httpx.get(f"{url}/slow", timeout=30)
    assert response.status_code == 503
    assert response.json()["error"] == "RequestTimeout"


def test_deadline_slow_body_gets_408(url):
    def dribble():
        yield b"x"
        time.sleep(3)
        yield b"y"

    response = httpx.post(f"{url}/echo", content=dribble(), timeout=30)
    assert response.status_code == 408
    assert response.json()["error"] == "UploadTimeout"


@pytest.mark.parametrize("chunked", [False, True])
def test_body_limit_refuses_a_large_body(url, chunked):
    body = b"z" * (LIMIT + 1)
    content = iter([body[:600], body[600:]]) if chunked else body
    response = httpx.post(f"{url}/echo", content=content, timeout=30)
    assert response.status_code == 413
    assert response.json()["error"] == "ImageTooLarge"


def test_body_limit_lets_a_body_at_the_limit_through(url):
    assert httpx.post(f"{url}/echo", content=b"z" * LIMIT, timeout=30).json() == {"bytes": LIMIT}
