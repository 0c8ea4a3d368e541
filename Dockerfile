# One image for every service of the alliance catalog.
#   web:    gunicorn -c python:shared.gunicorn_conf -b 0.0.0.0:8000 "services.<name>.app:create_app()"  (the default CMD runs courses)
#   worker: python -m services.<name>.worker
# Configuration comes from the environment only (see docs/settings.md); keys are mounted at run time
# under /run/secrets (the default KEYS_DIR), never baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # gunicorn workers write their metric files here, so /metrics sums every worker; the process
    # creates it (compose mounts a fresh tmpfs on /tmp, which would hide a folder made here)
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    WEB_CONCURRENCY=2

WORKDIR /app

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

# dependencies first, so a code change does not reinstall them
COPY pyproject.toml ./
RUN mkdir -p shared services devstack \
    && pip install . \
    && pip uninstall -y alliance-catalog

# the code runs from /app (gunicorn and python -m put the working directory first), with the
# catalog's templates and static files beside it
COPY shared ./shared
COPY services ./services
COPY config ./config
# compose's kafka-init runs it: every topic with its settings, in one process
COPY ops/topics.py ./ops/topics.py
# no dev keys in the image (.dockerignore leaves var/ and secrets/ out): KEYS_DIR is mounted at run time
# the catalog's search index lives on a volume mounted here (a named volume takes this owner)
RUN pip install --no-deps . \
    && mkdir -p /run/secrets /var/lib/alliance/search \
    && chown app:app /var/lib/alliance/search \
    && rm -rf /app/var /app/build

USER app
EXPOSE 8000

CMD ["gunicorn", "-c", "python:shared.gunicorn_conf", "-b", "0.0.0.0:8000", "services.courses.app:create_app()"]
