# One image for every Python service; compose.yaml picks the module to run.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml ./
COPY reciprocity ./reciprocity
COPY contracts ./contracts
COPY messaging ./messaging
COPY common ./common
COPY services ./services
COPY web ./web
COPY cli ./cli
RUN pip install .
RUN useradd --system --uid 10001 reciprocity
USER reciprocity
