"""gunicorn settings of every service's web process (`gunicorn -c python:shared.gunicorn_conf`)."""

import os

# answer slow clients without holding a worker forever
timeout = 30
# on SIGTERM, requests in flight get this long: below compose's stop_grace_period of a web (15 s), so
# gunicorn has stopped its workers itself before Docker sends SIGKILL (tests/e2e/test_compose.py checks it);
# `make run` passes --graceful-timeout 1
graceful_timeout = 10
keepalive = 5
# the app logs each request as JSON with its request id; gunicorn's own access log would repeat it
accesslog = None
errorlog = "-"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# every web process of a host would share one control socket path (~/.gunicorn/gunicorn.ctl);
# nothing here uses the control interface
control_socket_disable = True
# gunicorn answers longer request lines itself, with an HTML 414; every valid query fits in 8 KiB
limit_request_line = 8190


def on_starting(server):
    # before any worker forks: compose's fresh tmpfs on /tmp hides the folder the image made
    from shared.metrics import ensure_multiproc_dir

    ensure_multiproc_dir()


def child_exit(server, worker):
    # a dead worker's metric files must stop counting as live gauges
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
