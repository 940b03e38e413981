from django.http import HttpRequest, HttpResponse


def stream_list(request: HttpRequest) -> HttpResponse:
    raise NotImplementedError


def board(request: HttpRequest, stream_slug: str) -> HttpResponse:
    raise NotImplementedError
