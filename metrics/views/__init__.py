"""The manager's pages: the dashboard, its CSV downloads, forecasts, the weekly review."""

from vsm.http import HtmxHttpRequest

__all__ = ["HtmxHttpRequest"]
