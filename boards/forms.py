from __future__ import annotations

from django import forms

from boards.selectors import BoardFilters


class BoardFilterForm(forms.Form):
    channel = forms.IntegerField(required=False, min_value=1)
    owner = forms.IntegerField(required=False, min_value=1)
    q = forms.CharField(required=False, max_length=100, strip=True)
    blocked = forms.BooleanField(required=False)

    def filters(self) -> BoardFilters:
        """The filters asked for; a malformed value is ignored rather than failing the board."""
        data = self.cleaned_data if self.is_valid() else {}
        return BoardFilters(
            channel_id=data.get("channel"),
            owner_id=data.get("owner"),
            text=data.get("q") or "",
            blocked_only=bool(data.get("blocked")),
        )
