# One image for every Gennaker process: the gateway (default command) and the workers
# (`gennaker worker`, set as the command by docker-compose.yml or your orchestrator).
#
# Build stage: install the project and its dependencies into a virtualenv, so the runtime image
# carries neither pip's cache nor the build tools. Nothing is fetched but packages from PyPI.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/gennaker
WORKDIR /src
COPY . .
# psycopg[binary]: the PostgreSQL driver behind GENNAKER_DATABASE_URL=postgresql+psycopg://…, which
# replicated gateways and the workers share (see docs/deploy.md). The binary wheel bundles libpq, so
# the runtime image needs no apt packages for it.
RUN /opt/gennaker/bin/pip install . "psycopg[binary]>=3.1,<4"


FROM python:3.11-slim

ENV PATH=/opt/gennaker/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# A fixed, unprivileged uid/gid so mounted secrets (kubeconfigs, gennaker.yaml) can be chowned to it.
RUN groupadd --system --gid 10001 gennaker \
    && useradd --system --uid 10001 --gid gennaker --home-dir /var/lib/gennaker --create-home \
        --shell /usr/sbin/nologin gennaker \
    && install -d -o gennaker -g gennaker /var/lib/gennaker/.data

COPY --from=build /opt/gennaker /opt/gennaker

# The default store is sqlite:///.data/gennaker.db relative to this directory: fine for a single
# container, lost with it. Mount a volume on /var/lib/gennaker/.data or set GENNAKER_DATABASE_URL.
WORKDIR /var/lib/gennaker
USER gennaker

EXPOSE 8084
CMD ["gennaker", "api", "--host", "0.0.0.0"]
