"""Writes of a value stream's configuration: the stream, its teams, memberships, channels
and lost reasons.

Every service here is steered: only those who steer the stream (admins, the system, its
value stream manager) may call it. Each locks the stream row first (so two changes of
one stream's configuration take turns, and the manager's memberships cannot be changed
from two sides at once), records an audit row in its transaction and announces "stream
changed" (settings) after commit: the metrics read channels and team ownership.

Arguments of an update: ``None`` keeps a value that cannot be empty as it is; a value
that may be empty (a team, a WIP limit) is kept by ``UNCHANGED`` and emptied by ``None``.
"""

from vsm.services.channels import channel_create, channel_deactivate, channel_update
from vsm.services.common import (
    UNCHANGED,
    ChannelNotFound,
    InUse,
    Keep,
    ManagerMembershipRequired,
    ManagerRoleHeldElsewhere,
    ManagerRoleReserved,
    MembershipNotFound,
    NotInStream,
    NotUnique,
    TeamNotFound,
    Unchanged,
    UserNotFound,
    count_of,
    name_free_check,
    settings_change_record,
    stream_lock_for_steering,
)
from vsm.services.lost_reasons import (
    LostReasonNotFound,
    lost_reason_create,
    lost_reason_deactivate,
    lost_reason_update,
)
from vsm.services.streams import value_stream_delete, value_stream_update
from vsm.services.teams import (
    ROLE_NUMBERS,
    membership_add,
    membership_remove,
    membership_set_role,
    team_create,
    team_delete,
    team_rename,
)

__all__ = [
    "ROLE_NUMBERS",
    "UNCHANGED",
    "ChannelNotFound",
    "InUse",
    "Keep",
    "LostReasonNotFound",
    "ManagerMembershipRequired",
    "ManagerRoleHeldElsewhere",
    "ManagerRoleReserved",
    "MembershipNotFound",
    "NotInStream",
    "NotUnique",
    "TeamNotFound",
    "Unchanged",
    "UserNotFound",
    "channel_create",
    "channel_deactivate",
    "channel_update",
    "count_of",
    "lost_reason_create",
    "lost_reason_deactivate",
    "lost_reason_update",
    "membership_add",
    "membership_remove",
    "membership_set_role",
    "name_free_check",
    "settings_change_record",
    "stream_lock_for_steering",
    "team_create",
    "team_delete",
    "team_rename",
    "value_stream_delete",
    "value_stream_update",
]
