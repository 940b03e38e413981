# VSM developer commands. On a fresh Debian/Ubuntu machine:
#   make run    install everything, migrate, load demo data, serve http://127.0.0.1:8000
#   make test   install everything (plus Debian's chromium) and run the whole test suite
#
# Extra pytest arguments (from the command line or the environment):
#   make test PYTEST_ARGS='-m "not e2e" -x'

PYTHON = .venv/bin/python
# DEBUG is off unless asked for (vsm/settings.py); the developer commands ask for it.
DEV = DJANGO_DEBUG=true

.PHONY: run test install venv node chromium lint worker beat bench

run: install
	$(DEV) $(PYTHON) manage.py migrate
	$(DEV) $(PYTHON) manage.py seed_demo
	$(DEV) $(PYTHON) manage.py runserver 127.0.0.1:8000

# pytest's exit status is the recipe's: any failure, including exit 5 (no tests
# collected), fails `make test`.
test: install chromium
	.venv/bin/pytest $(PYTEST_ARGS)

install: venv node

# uv is taken from PATH, else from the current python3 (inside the repo pyenv picks 3.12
# from .python-version); it is pip-installed if neither has it. uv must never download
# an interpreter: it uses the Python 3.12 that is already on the machine.
venv:
	@if ! uv --version >/dev/null 2>&1 && ! python3 -m uv --version >/dev/null 2>&1; then \
		echo "Installing uv with python3 -m pip"; \
		python3 -m pip install uv || python3 -m pip install --user --break-system-packages uv; \
	fi
	@if uv --version >/dev/null 2>&1; then uv=uv; else uv="python3 -m uv"; fi; \
		echo "UV_PYTHON_DOWNLOADS=never $$uv sync --locked"; \
		UV_PYTHON_DOWNLOADS=never $$uv sync --locked

node:
	npm ci

# Debian's Chromium drives the browser tests (Playwright cannot download its own here).
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi; \
		echo "Installing Debian's chromium"; \
		$$sudo apt-get update && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

# ruff, mypy, then the import layers (all configured in pyproject.toml); all run, and
# any one fails it.
lint: venv
	@status=0; \
	echo ".venv/bin/ruff check ."; .venv/bin/ruff check . || status=1; \
	echo ".venv/bin/mypy"; .venv/bin/mypy || status=1; \
	echo ".venv/bin/lint-imports"; .venv/bin/lint-imports || status=1; \
	exit $$status

# Both need CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0); with nothing set, tasks
# run in-process and no worker is needed.
worker: venv
	$(DEV) .venv/bin/celery -A vsm worker -l info

# The schedule state file is kept out of the work tree.
beat: venv
	$(DEV) .venv/bin/celery -A vsm beat -l info --schedule "$${TMPDIR:-/tmp}/vsm-celerybeat-schedule"

# The dashboard benchmark drives Debian's Chromium and serves the npm front-end libraries.
bench: install chromium
	@found=no; \
	for script in bench/*.py; do \
		[ -f "$$script" ] || continue; \
		found=yes; \
		echo "== $$script"; \
		$(DEV) $(PYTHON) "$$script" || exit 1; \
	done; \
	if [ "$$found" = no ]; then echo "no benchmarks yet"; fi
