# The gateway as a container: the compiled build (the hot modules compiled with mypyc, issue 26) on
# the official Python image, whose interpreter is built with PGO and LTO; a base pinned by digest,
# dependencies in a layer of their own, a non-root user, and nothing written outside
# /var/lib/gateway (a volume) and /tmp, so it runs with a read-only root filesystem. The default
# config (deploy/docker/gateway.yaml) needs GATEWAY_ADMIN_TOKEN and GATEWAY_UPSTREAM; README
# "Docker" has the run line. BuildKit (docker's default builder) builds it: the final stage mounts
# the build stage's wheel.
#
# The base of both stages: python:3.11-slim (3.11.16) by the digest of its multi-platform index.
# To move to a newer one, read the current digest (`docker buildx imagetools inspect
# python:3.11-slim`, the first "Digest:" line, or the one `docker pull python:3.11-slim` prints)
# and put it here, or build with --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# The build stage: the same base (the extensions are built for the interpreter that runs them) with
# a C compiler, which the image itself does without. It makes the compiled wheel
# (GATEWAY_COMPILE=1, setup.py; the modules are gateway/build.py's HOT_MODULES).
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# What the compile needs (mypy and what it reads types from), as setup.py asks pip for it, in a layer
# that only a change to these three files rebuilds.
COPY pyproject.toml setup.py README.md ./
RUN pip install "setuptools>=77" \
 && GATEWAY_COMPILE=1 python -c "from setuptools.build_meta import get_requires_for_build_wheel as r; print(*r(), sep='\n')" > /tmp/build-requirements.txt \
 && pip install -r /tmp/build-requirements.txt
COPY gateway ./gateway
RUN GATEWAY_COMPILE=1 pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

# The image.
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/gateway --create-home gateway
WORKDIR /app

# Dependencies (with the redis and postgres extras) from pyproject.toml alone: this layer is
# rebuilt only when pyproject.toml changes, not on every code change.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; x = p['optional-dependencies']; print(*p['dependencies'], *x['redis'], *x['postgres'], sep='\n')" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The code: the compiled wheel from the build stage (mounted, so no layer keeps a copy), and a check
# that the installed gateway runs it (`gateway --version` says "compiled: N modules").
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-deps /wheels/gateway-*.whl \
 && gateway --version | grep "(compiled: "
COPY deploy/docker/gateway.yaml /etc/gateway/gateway.yaml

USER 10001:10001
WORKDIR /var/lib/gateway
VOLUME ["/var/lib/gateway"]
EXPOSE 8443 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9090/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["gateway"]
CMD ["run", "--config", "/etc/gateway/gateway.yaml"]
