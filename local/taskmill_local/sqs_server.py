"""The local SQS endpoint: moto's server application on a werkzeug server of our own.

moto's `ThreadedMotoServer` binds its socket inside the thread it starts, so a port in use
prints a thread's traceback and leaves `start()` waiting forever. Here the socket is bound
by the caller, which gets the `OSError` (and can say which port and what to do), and the
serving thread starts only once it is bound. Otherwise the same application and request
handler as `ThreadedMotoServer`.
"""

from __future__ import annotations

import threading


class LocalSqsServer:
    def __init__(self, host: str, port: int) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        self._server = make_server(
            host,
            port,
            DomainDispatcherApplication(create_backend_app),
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        self.host = host
        self.port = int(self._server.server_port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sqs", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
