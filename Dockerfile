# One image for every role (migrate, web, worker, beat); docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md celeryconfig.py ./
COPY worker ./worker
COPY compliance ./compliance
COPY tasks ./tasks
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app msgworker \
    && mkdir -p /app/var && chown msgworker /app/var

# Celery refuses to run as root without being told to; nothing here needs root.
USER msgworker
EXPOSE 8000
CMD ["msgworker", "web", "--host", "0.0.0.0", "--port", "8000"]
