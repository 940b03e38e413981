"""The card's closing panel (boards/partials/card_close.html) brings its own data to
any page that includes it: the stream's lost reasons, or how the card was closed and
whether the viewer may undo it (through its selector), and the close form."""

from __future__ import annotations

from django import template

from boards import selectors
from boards.forms import CloseForm
from boards.models import Card
from vsm.actors import request_actor

register = template.Library()


@register.simple_tag(takes_context=True)
def card_closing(context: template.Context, card: Card) -> selectors.Closing:
    """``{% card_closing card as closing %}``: see ``boards.selectors.card_closing``."""
    return selectors.card_closing(card=card, actor=request_actor(context["request"]))


@register.simple_tag
def close_form_or_new(form: CloseForm | None = None) -> CloseForm:
    """The close form the page holds (refused, with what was typed), or a new one."""
    return form if isinstance(form, CloseForm) else CloseForm()
