# opsbot: the Slack bot for platform teams. `docker build -t opsbot .` (or scripts/container-check)
# Dependencies come from requirements.lock (exact versions and hashes), so a rebuild installs the
# same packages; the lock is made for this Python version (see README, "Lock file").
# BASE may name a local stand-in with the same Python (scripts/container-check makes one when no
# image registry is reachable).
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system opsbot && useradd --system --gid opsbot --home-dir /app opsbot

COPY requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes -r /tmp/requirements.lock

# The package itself (its migrations and example runbooks go inside it), without touching the
# locked dependencies.
COPY pyproject.toml setup.py README.md /src/
COPY bot /src/bot
COPY handlers /src/handlers
COPY migrations /src/migrations
COPY runbooks /src/runbooks
RUN pip install --no-deps /src && rm -rf /src

# The working directory holds the org config (mount opsbot.yaml here) and, optionally, your own
# runbooks/ (else the shipped examples are used).
WORKDIR /app
COPY opsbot.example.yaml slack-manifest.yaml ./
RUN chown -R opsbot:opsbot /app
USER opsbot
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status == 200 else 1)"

CMD ["opsbot", "serve", "--host", "0.0.0.0", "--port", "3000"]
