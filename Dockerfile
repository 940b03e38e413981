# syntax=docker/dockerfile:1
# Production image for VSM: gunicorn serving Django, static files by whitenoise.
# The same image runs the web server, the migrations, the Celery worker and beat
# (see docker-compose.yml).

# --- front-end libraries (SortableJS, Chart.js) from the npm lockfile -----------------
FROM node:20-slim AS node_modules
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev

# --- the application ------------------------------------------------------------------
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH

RUN pip install --no-cache-dir uv

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml uv.lock .python-version README.md ./
RUN uv sync --locked --no-dev --no-install-project --no-cache

COPY --from=node_modules /build/node_modules ./node_modules

# The code is copied by name, so that a developer's .venv, node_modules or db.sqlite3
# in the build context never ends up in the image.
COPY manage.py ./
COPY vsm ./vsm
COPY pdca ./pdca
COPY boards ./boards
COPY metrics ./metrics
COPY templates ./templates
COPY static ./static

# Static files are collected at build time. The secret key here is a throwaway used only
# to import the settings for this command; the running container needs its own.
RUN DJANGO_DEBUG=false \
    DJANGO_SECRET_KEY=build-only-collectstatic-key-not-used-at-run-time-0123456789 \
    DJANGO_ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput

RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home vsm
USER vsm

EXPOSE 8000
CMD ["gunicorn", "vsm.wsgi:application", "--config", "python:vsm.gunicorn_conf", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
