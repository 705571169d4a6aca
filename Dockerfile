# The gateway as a container: slim base, non-root, config mounted at /etc/gateway.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install '.[redis,postgres]' \
 && useradd --system --uid 10001 --home-dir /var/lib/gateway --create-home gateway
COPY config /etc/gateway

USER gateway
WORKDIR /var/lib/gateway
EXPOSE 8443 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9090/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["gateway"]
CMD ["run", "--config", "/etc/gateway/gateway.yaml"]
