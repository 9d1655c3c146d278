"""Locust scenario: active staff of a cooperation through a working day.

    # one node you started yourself from a generated config (see loadtests/README.md)
    .venv/bin/python loadtests/scenario.py prepare cooperation /tmp/office
    .venv/bin/presence-server run --config /tmp/office/server.toml --port 8080 &
    .venv/bin/locust -f loadtests/locustfile.py --host http://127.0.0.1:8080 \\
        --office-scenario cooperation --office-config /tmp/office/server.toml \\
        --headless -u 200 -r 20 -t 2m --html /tmp/office/locust.html

Without ``--headless`` locust serves its web UI (http://127.0.0.1:8089). For
bigger runs add ``--processes 2`` or start ``--master`` and ``--worker``s
(give the workers the same ``--office-*`` options or the ``OFFICE_*``
environment variables). ``python -m loadtests.run`` does all of this itself.

The user class is :class:`office_user.StaffUser`; request types in the
statistics: ``sio`` (acknowledged requests), ``refused`` (refusals that are
office life), ``presence`` (the time until another person sees it) and
``generator`` (how late this process's gevent loop runs: a busy or starved
load generator delays every figure it measures).
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import time
from pathlib import Path

import gevent
import gevent.util
from locust import events

sys.path.insert(0, str(Path(__file__).resolve().parent))  # locust adds it too; `python -c` imports do not

from office_user import StaffUser, setup  # noqa: E402,F401  (locust finds the user class here)

_LAG_PERIOD = 0.5
# `kill -USR1 <pid>` prints every thread's stack, `kill -USR2 <pid>` every greenlet's (if the loop
# still runs): run.py does both to a locust that overran its run time.
faulthandler.register(signal.SIGUSR1, all_threads=True)
gevent.signal_handler(signal.SIGUSR2, lambda: gevent.util.print_run_info(file=sys.stderr))


@events.init_command_line_parser.add_listener
def _options(parser) -> None:  # type: ignore[no-untyped-def]
    parser.add_argument("--office-scenario", default=os.environ.get("OFFICE_SCENARIO", "cooperation"),
                        include_in_web_ui=True,
                        help="scenario file or name in loadtests/scenarios/ (default: cooperation)")
    parser.add_argument("--office-config", default=os.environ.get("OFFICE_CONFIG", ""),
                        help="the server's config file: its HS256 secrets mint the users' tokens")
    parser.add_argument("--office-nodes", default=os.environ.get("OFFICE_NODES", ""), include_in_web_ui=True,
                        help="comma-separated node URLs, users spread round-robin (default: --host)")
    parser.add_argument("--office-active", default=os.environ.get("OFFICE_ACTIVE", ""),
                        help="active staff of the scenario (must match what generated the campus)")


@events.init.add_listener
def _on_init(environment, **_: object) -> None:  # type: ignore[no-untyped-def]
    # The master needs no scenario; workers and a plain (local) runner read it
    # here so a wrong path fails at once, not in the first user.
    from locust.runners import MasterRunner

    options = environment.parsed_options
    if not isinstance(environment.runner, MasterRunner) and options is not None:
        # A worker started by hand learns the host only from the master: then the first user sets up.
        if options.office_config and (options.office_nodes or environment.host):
            setup(options, environment.host)
        gevent.spawn(_loop_lag, environment)


def _loop_lag(environment) -> None:  # type: ignore[no-untyped-def]
    """How late this process's gevent loop wakes a sleeper: when it is late, every
    latency measured here is late by as much (the generator, not the server)."""
    while True:
        start = time.perf_counter()
        gevent.sleep(_LAG_PERIOD)
        lag_ms = (time.perf_counter() - start - _LAG_PERIOD) * 1000
        environment.events.request.fire(request_type="generator", name="gevent loop lag", response_time=max(0.0, lag_ms),
                                        response_length=0, exception=None, context={})
