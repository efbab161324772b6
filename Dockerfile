# One image for contactq's Python services: `contactq worker`, `contactq bridge`, `contactq flower`.
# Configured only through the CONTACTQ_* environment variables (see README, Configuration); health checks are in
# docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY celeryconfig.py ./
COPY contactq ./contactq
COPY tasks ./tasks
COPY protocol ./protocol
COPY bridge ./bridge
RUN pip install . \
    && cd / && rm -rf /src \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/contactq contactq

USER contactq
WORKDIR /home/contactq
ENTRYPOINT ["contactq"]
CMD ["worker"]
