# One image for every Python process; compose.yaml picks the command (an API under gunicorn, a worker
# role, the one-shot migration). Logs go to stdout/stderr, unbuffered.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml ./
COPY reciprocity ./reciprocity
COPY contracts ./contracts
COPY messaging ./messaging
COPY common ./common
COPY services ./services
COPY web ./web
COPY cli ./cli
# A wheel install (not editable): the image carries the package, schemas and templates, not the sources.
# /var/lib/reciprocity-keys: the ledger's key store volume; a new volume takes this directory's owner.
RUN pip install . && rm -rf /app/* && useradd --system --uid 10001 --home-dir /app reciprocity \
    && install -d -o reciprocity -m 700 /var/lib/reciprocity-keys
USER reciprocity
# Listen on every interface inside the container; compose publishes only the web.
ENV HOST=0.0.0.0 RECIPROCITY_ENV=production
CMD ["python", "-m", "reciprocity.web.app"]
