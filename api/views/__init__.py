"""The REST API's views (cards, metrics, the stream) and the pages about it (its tokens,
its documentation)."""
