# syntax=docker/dockerfile:1
# Preflight: Socket Mode by default (no public URL needed).
#   docker build -t preflight .
#   docker run -e SLACK_BOT_TOKEN=... -e SLACK_APP_TOKEN=... -v preflight-data:/data preflight
# HTTP mode: add `-e SLACK_SIGNING_SECRET=... -p 3000:3000` and the command `serve --http`.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY checks ./checks
COPY handlers ./handlers
COPY store ./store
RUN python -m venv /opt/preflight \
    && /opt/preflight/bin/pip install --no-cache-dir .

FROM python:3.11-slim
# pg_dump/pg_restore for the opt-in db_backup_dump check; nothing else from the OS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client=15* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --create-home preflight
COPY --from=build /opt/preflight /opt/preflight
COPY manifest.yml /opt/preflight/manifest.yml
ENV PATH=/opt/preflight/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PREFLIGHT_DB=/data/preflight.db
USER 10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
# Socket Mode has no port to probe: the health check asks the process itself whether it can
# open its store and load the checklist.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["preflight", "status", "--cached", "--json"]
ENTRYPOINT ["preflight"]
CMD ["serve"]
