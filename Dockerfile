# One image for every application process: `agentevents gateway` and `agentevents worker`
# (docker-compose.yml picks the command per service).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so a source change does not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# The package, installed in editable mode as `make` does: the JSON Schemas under
# src/agentevents/protocol/schema/ and the SQL migrations under src/agentevents/store/migrations/
# are read from the source tree at run time (pyproject.toml's package-data does not list them).
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-deps -e . \
    && useradd --system --uid 10001 --no-create-home --home-dir /nonexistent agentevents

USER agentevents

# Inside a container the processes must listen on every interface (the default is 127.0.0.1).
ENV AE_HOST=0.0.0.0

EXPOSE 8000 8001 8002 8101
# Without a command: gateway and worker in one process (`agentevents serve`).
CMD ["agentevents", "serve"]
