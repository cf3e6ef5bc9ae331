# opsbot: the Slack bot for platform teams. `docker build -t opsbot .`
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN groupadd --system opsbot && useradd --system --gid opsbot --home-dir /app opsbot

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY migrations ./migrations
COPY runbooks ./runbooks
COPY alembic.ini slack-manifest.yaml ./
RUN pip install . && chown -R opsbot:opsbot /app

USER opsbot
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status == 200 else 1)"

CMD ["opsbot", "serve", "--host", "0.0.0.0", "--port", "3000"]
