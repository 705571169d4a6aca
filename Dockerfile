# The gateway as a container: a base pinned by digest, dependencies in a layer of their own, a
# non-root user, and nothing written outside /var/lib/gateway (a volume) and /tmp, so it runs
# with a read-only root filesystem. The default config (deploy/docker/gateway.yaml) needs
# GATEWAY_ADMIN_TOKEN and GATEWAY_UPSTREAM; README "Docker" has the run line.
#
# The base: python:3.11-slim (3.11.16) by the digest of its multi-platform index. To move to a
# newer one, read the current digest (`docker buildx imagetools inspect python:3.11-slim`, the
# first "Digest:" line, or the one `docker pull python:3.11-slim` prints) and put it here, or
# build with --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7
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

# The code: only the gateway itself is installed again.
COPY README.md ./
COPY gateway ./gateway
RUN pip install --no-deps . && rm -rf build gateway.egg-info
COPY deploy/docker/gateway.yaml /etc/gateway/gateway.yaml

USER 10001:10001
WORKDIR /var/lib/gateway
VOLUME ["/var/lib/gateway"]
EXPOSE 8443 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9090/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["gateway"]
CMD ["run", "--config", "/etc/gateway/gateway.yaml"]
