"""Deterministic demo data: two value streams with six months of move history.

Every card and every move is written through boards.services, day by day, so the
history obeys the same WIP limits and control points as the live board. The shape is
deliberate, so dashboards show real patterns:

- Referral produces most won business (it converts far better and deals are larger).
- Sales/Buying "Knowledge" (proposal and demo) is the constraint: a low WIP limit and
  a slow pull, so work queues and ages in Sales/Buying "Information" while "Wisdom"
  starves.
"""

from __future__ import annotations

import functools
import random
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from boards import services
from boards.models import Card, Column, Outcome
from pdca import services as pdca_services
from pdca.models import ControlPoint, Cycle
from vsm import services as vsm_services
from vsm.actors import Actor, SystemActor, UserActor
from vsm.models import ChannelKind, Role, Team, ValueStream

# The demo data's configuration is written by the product itself; its history by the
# simulated people.
DEMO = SystemActor("demo")

DEMO_PASSWORD = "vsm-demo"
HISTORY_DAYS = 182
RANDOM_SEED = 20261125

FIRST_NAMES = [
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elif",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Luca",
    "Mara",
    "Nils",
    "Olga",
    "Paul",
    "Rosa",
    "Samir",
    "Tess",
    "Umar",
    "Vera",
    "Wim",
    "Xenia",
    "Yusuf",
    "Zoe",
    "Amir",
    "Bea",
    "Chen",
    "Dora",
    "Emil",
]
LAST_NAMES = [
    "Keller",
    "Novak",
    "Schmidt",
    "Rossi",
    "Moreau",
    "Larsen",
    "Kowalski",
    "Silva",
    "Meyer",
    "Okafor",
    "Jansen",
    "Fischer",
    "Dubois",
    "Costa",
    "Weber",
    "Nagy",
    "Berg",
    "Lehmann",
]


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    kind: str
    arrival_weight: float
    # Multiplies the daily chance to advance, and to be lost, and the deal size.
    pull: float
    loss: float
    value: float


CHANNELS = [
    ChannelSpec("Referral", ChannelKind.REFERRAL, 0.14, 1.8, 0.35, 1.4),
    ChannelSpec("Web form", ChannelKind.WEB_FORM, 0.27, 0.9, 1.1, 0.9),
    ChannelSpec("LinkedIn", ChannelKind.SOCIAL, 0.18, 0.8, 1.3, 0.8),
    ChannelSpec("Trade show", ChannelKind.EVENT, 0.14, 1.0, 1.0, 1.1),
    ChannelSpec("Partner network", ChannelKind.PARTNER, 0.11, 1.1, 0.8, 1.0),
    ChannelSpec("Webinar", ChannelKind.CONTENT, 0.10, 0.9, 1.0, 0.8),
    ChannelSpec("Cold outreach", ChannelKind.OUTBOUND, 0.06, 0.6, 1.8, 0.7),
]

# Per cycle, per column order (1..4): daily chance a card is pulled onward, daily
# chance it is lost there, and the column's WIP limit.
FLOW = {
    1: {1: (0.30, 0.020, None), 2: (0.16, 0.018, 12), 3: (0.14, 0.012, 8), 4: (0.25, 0.010, 5)},
    2: {1: (0.35, 0.010, None), 2: (0.30, 0.055, 16), 3: (0.045, 0.010, 5), 4: (0.30, 0.015, 4)},
    3: {1: (0.20, 0.008, None), 2: (0.12, 0.010, 10), 3: (0.10, 0.010, 6), 4: (0.20, 0.015, 4)},
}
CONSTRAINT = (2, 3)  # Sales/Buying, Knowledge

BLOCK_REASONS = [
    "Waiting for the customer's budget approval",
    "Legal review of our data processing terms",
    "Champion on parental leave until next month",
    "Needs a reference customer in the same industry",
    "Pricing exception pending with finance",
]


@dataclass(frozen=True)
class LostReasonSpec:
    """A demo stream's lost reason: how often it is the reason in each cycle (weights,
    Collaboration, Sales/Buying, Repeat/Upsell), and notes a seller might add."""

    name: str
    weights: tuple[float, float, float]
    notes: tuple[str, ...] = ()


# Reasons every demo stream keeps, then each stream's own: early losses are mostly
# prospects who go quiet, later ones competitors and price.
COMMON_LOST_REASONS = (
    LostReasonSpec("Went silent", (5, 1.5, 1), ("Three follow-ups, no answer.",)),
    LostReasonSpec("Not a priority now", (3, 1.5, 2), ("Asked us to call back next year.",)),
    LostReasonSpec(
        "No budget", (1, 3, 3), ("Budget moved to another project.", "Spending freeze until Q3.")
    ),
    LostReasonSpec("Chose a competitor", (0.5, 4, 1.5), ("Went with the incumbent's add-on.",)),
    LostReasonSpec("Price too high", (0.3, 3, 2), ("Wanted half the licence price.",)),
)
# A loss now and then is explained in the seller's words only (no reason of the list).
NOTE_ONLY_SHARE = 0.06
NOTE_ONLY_LOSSES = (
    "Company was acquired; the new owner buys centrally.",
    "Our contact retired and nobody took the project over.",
)
NOTE_SHARE = 0.2


@dataclass(frozen=True)
class StreamSpec:
    name: str
    slug: str
    market: str
    description: str
    prefix: str
    arrivals_per_day: float
    deal_size: tuple[int, int]
    companies: list[str]
    lost_reasons: tuple[LostReasonSpec, ...] = COMMON_LOST_REASONS


STREAMS = [
    StreamSpec(
        name="Mid-market Manufacturing",
        slug="manufacturing",
        market="Manufacturers with 50-500 employees modernising their shop floor",
        description="Machine builders and component makers buying production analytics.",
        prefix="mfg",
        arrivals_per_day=1.7,
        deal_size=(8_000, 60_000),
        lost_reasons=(
            *COMMON_LOST_REASONS,
            LostReasonSpec(
                "No ERP/MES integration", (0.5, 2, 1), ("Needs a SAP connector we lack.",)
            ),
        ),
        companies=[
            "Hartmann Fräsetechnik",
            "Nordwerk Pumps",
            "Baltic Castings",
            "Rivoli Components",
            "Ostara Plastics",
            "Steelbridge Tools",
            "Vinter Hydraulics",
            "Kessler Antriebe",
            "Lumen Optics",
            "Tarragona Metal",
            "Brixen Bearings",
            "Falun Forge",
            "Adriatic Valves",
            "Moravia Motors",
            "Orbis Packaging",
            "Tyne Gears",
        ],
    ),
    StreamSpec(
        name="Private Clinics",
        slug="clinics",
        market="Private clinics and group practices with 5-80 clinicians",
        description="Practices buying patient scheduling and follow-up.",
        prefix="clin",
        arrivals_per_day=1.4,
        deal_size=(3_000, 25_000),
        lost_reasons=(
            *COMMON_LOST_REASONS,
            LostReasonSpec(
                "Data protection concerns",
                (0.5, 2.5, 0.5),
                ("Their DPO wants hosting in-country.",),
            ),
            LostReasonSpec("Practice software not supported", (0.5, 2, 1)),
        ),
        companies=[
            "Lindenhof Praxis",
            "Harbour Dental Group",
            "Clinica San Marco",
            "Vitalis Health",
            "Northside Physio",
            "Maple Family Practice",
            "Sonnenberg Klinik",
            "Isar Ortho",
            "Kew Dermatology",
            "Alba Eye Centre",
            "Fjord Medical",
            "Solace Paediatrics",
        ],
    ),
]


@functools.cache
def _demo_password_hash() -> str:
    # Hashing is deliberately slow (PBKDF2); every demo user shares one password.
    return make_password(DEMO_PASSWORD)


class _Accounts:
    """Makes the demo's people. With ``shared_password`` (development) each new one
    logs in with DEMO_PASSWORD; otherwise a new one has no usable password until
    ``give_random_passwords`` gives the printed logins one each."""

    def __init__(self, *, shared_password: bool) -> None:
        self.shared_password = shared_password
        self.created: set[str] = set()

    def user(
        self, username: str, first: str, last: str, *, staff: bool = False, superuser: bool = False
    ):
        user, created = get_user_model().objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{username}@vsm.example",
                "is_staff": staff or superuser,
                "is_superuser": superuser,
            },
        )
        if created:
            self.created.add(username)
            if self.shared_password:
                user.password = _demo_password_hash()
            else:
                user.set_unusable_password()
            user.save(update_fields=["password"])
        return user

    def give_random_passwords(self, usernames: list[str]) -> dict[str, str]:
        """A random password for each of ``usernames`` made by this run; returned to be
        printed once (the database keeps only the hash). The others keep theirs."""
        passwords: dict[str, str] = {}
        made = [username for username in usernames if username in self.created]
        for user in get_user_model().objects.filter(username__in=made).order_by("pk"):
            passwords[user.username] = secrets.token_urlsafe(15)
            user.set_password(passwords[user.username])
            user.save(update_fields=["password"])
        return passwords


@dataclass
class SeedReport:
    created: bool
    logins: list[tuple[str, str]]
    streams: int = 0
    cards: int = 0
    moves: int = 0
    # The random passwords given in this run (seed_demo(random_passwords=True)).
    passwords: dict[str, str] = field(default_factory=dict)


class _StreamSimulation:
    def __init__(
        self,
        spec: StreamSpec,
        rng: random.Random,
        start: datetime,
        measuring: DemoMeasuring | None = None,
        accounts: _Accounts | None = None,
    ) -> None:
        self.measuring = measuring
        self.accounts = accounts or _Accounts(shared_password=True)
        self.spec = spec
        self.rng = rng
        self.start = start
        # A running demo experiment's effect: (cycle, column) -> factor on its losses.
        self.loss_factors: dict[tuple[int, int], float] = {}
        self.logins: list[tuple[str, str]] = []

    def _people(self) -> None:
        p = self.spec.prefix
        person = self.accounts.user
        self.manager = person(f"{p}-manager", "Maria" if p == "mfg" else "Tom", "Manager")
        self.coordinator = person(f"{p}-coordinator", "Chris", "Coordinator")
        self.leaders = [
            person(f"{p}-lead-awareness", "Lena", "Leader"),
            person(f"{p}-lead-sales", "Sam", "Leader"),
            person(f"{p}-lead-success", "Kim", "Leader"),
        ]
        self.members = [
            [person(f"{p}-member{i}", name, "Member") for i, name in ((1, "Ada"), (2, "Bo"))],
            [person(f"{p}-member{i}", name, "Member") for i, name in ((3, "Cy"), (4, "Di"))],
            [person(f"{p}-member{i}", name, "Member") for i, name in ((5, "Ed"),)],
        ]
        self.logins += _stream_logins(p)

    def _configure(self) -> None:
        """The stream's configuration, written through the services as the system."""
        spec = self.spec
        self.stream = services.value_stream_create(
            name=spec.name,
            slug=spec.slug,
            customer_market=spec.market,
            description=spec.description,
            manager=self.manager,
            actor=DEMO,
            team_name="Awareness",
        )
        stream_id = self.stream.pk
        awareness = Team.objects.get(value_stream=self.stream, name="Awareness")
        self.teams = [
            awareness,
            vsm_services.team_create(stream_id=stream_id, name="Sales", actor=DEMO),
            vsm_services.team_create(stream_id=stream_id, name="Customer success", actor=DEMO),
        ]
        for index, team in enumerate(self.teams):
            vsm_services.membership_add(
                team_id=team.pk, user_id=self.leaders[index].pk, role=Role.TEAM_LEADER, actor=DEMO
            )
            for member in self.members[index]:
                vsm_services.membership_add(
                    team_id=team.pk, user_id=member.pk, role=Role.MEMBER, actor=DEMO
                )
        vsm_services.membership_add(
            team_id=awareness.pk,
            user_id=self.coordinator.pk,
            role=Role.TEAM_COORDINATOR,
            actor=DEMO,
        )
        self.cycles = list(Cycle.objects.filter(value_stream=self.stream).order_by("order"))
        for cycle, team in zip(self.cycles, self.teams, strict=True):
            pdca_services.cycle_update(cycle_id=cycle.pk, owning_team_id=team.pk, actor=DEMO)
        for control_point in ControlPoint.objects.filter(
            from_cycle__value_stream=self.stream
        ).select_related("to_cycle"):
            pdca_services.control_point_update(
                control_point_id=control_point.pk,
                receiving_team_id=self.teams[control_point.to_cycle.order - 1].pk,
                actor=DEMO,
            )
        self.columns: dict[tuple[int, int], Column] = {}
        for column in Column.objects.filter(cycle__value_stream=self.stream).select_related(
            "cycle"
        ):
            key = (column.cycle.order, column.order)
            wip_limit = FLOW[key[0]][key[1]][2]
            if column.wip_limit != wip_limit:
                column = services.column_set_wip_limit(
                    column_id=column.pk, wip_limit=wip_limit, actor=DEMO
                )
            self.columns[key] = column
        self.channels = {
            c.name: vsm_services.channel_create(
                stream_id=stream_id, name=c.name, kind=c.kind, actor=DEMO
            )
            for c in CHANNELS
        }
        self.lost_reasons = [
            vsm_services.lost_reason_create(stream_id=stream_id, name=reason.name, actor=DEMO)
            for reason in spec.lost_reasons
        ]
        self.control_points = {
            cp.from_cycle.order: cp
            for cp in ControlPoint.objects.filter(from_cycle__value_stream=self.stream)
            .select_related("from_cycle")
            .prefetch_related("criteria")
        }

    def _team_member(self, cycle_order: int):
        return self.rng.choice([self.leaders[cycle_order - 1], *self.members[cycle_order - 1]])

    def _at(self, day: int) -> datetime:
        minutes = self.rng.randint(8 * 60, 18 * 60)
        return self.start + timedelta(days=day, minutes=minutes)

    def _new_card(self, day: int) -> None:
        rng = self.rng
        channel = rng.choices(CHANNELS, weights=[c.arrival_weight for c in CHANNELS])[0]
        low, high = self.spec.deal_size
        value = Decimal(round(rng.uniform(low, high) * channel.value, -2))
        person = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        company = rng.choice(self.spec.companies)
        owner = self._team_member(1)
        result = services.card_create(
            cycle_id=self.cycles[0].pk,
            actor=UserActor(owner),
            person_name=person,
            company=company,
            email=f"{person.split()[0].lower()}@{company.split()[0].lower()}.example",
            channel_id=self.channels[channel.name].pk,
            owner_id=owner.pk,
            estimated_value=value,
            notes="What: asked about pricing. When: this quarter. How/Why: to be learnt.",
            at=self._at(day),
        )
        self.open[result.card.pk] = (channel, 1, 1)
        self.counts[(1, 1)] += 1

    def _advance(self, card_id: int, day: int) -> None:
        rng = self.rng
        channel, cycle_order, column_order = self.open[card_id]
        pull, loss, _ = FLOW[cycle_order][column_order]
        loss *= self.loss_factors.get((cycle_order, column_order), 1.0)
        actor = UserActor(self._team_member(cycle_order))
        at = self._at(day)
        if rng.random() < loss * channel.loss:
            reason_id, note = self._why_lost(card_id, cycle_order)
            services.card_close(
                card_id=card_id,
                outcome=Outcome.LOST,
                actor=actor,
                at=at,
                lost_reason_id=reason_id,
                lost_note=note,
            )
            self._leave(card_id)
            return
        if rng.random() >= pull * channel.pull:
            # Now and then a card goes back a step: what we knew turned out thin.
            if column_order > 1 and rng.random() < 0.006:
                self._move(card_id, cycle_order, column_order - 1, actor, at)
            return
        if column_order < 4:
            self._move(card_id, cycle_order, column_order + 1, actor, at)
        elif cycle_order == 1:
            self._handoff(card_id, 1, actor, at)
        elif cycle_order == 2 and rng.random() < 0.45:
            self._handoff(card_id, 2, actor, at)
        else:
            services.card_close(card_id=card_id, outcome=Outcome.WON, actor=actor, at=at)
            self._leave(card_id)

    def _why_lost(self, card_id: int, cycle_order: int) -> tuple[int | None, str]:
        """A lost card's reason (most of them) and note, drawn from a generator of its
        own, seeded by the card: drawing from the simulation's would change every day
        after the first loss."""
        draw = random.Random(f"{RANDOM_SEED}-lost-{card_id}")
        if draw.random() < NOTE_ONLY_SHARE:
            return None, draw.choice(NOTE_ONLY_LOSSES)
        specs = self.spec.lost_reasons
        index = draw.choices(
            range(len(specs)), weights=[spec.weights[cycle_order - 1] for spec in specs]
        )[0]
        notes = specs[index].notes
        note = draw.choice(notes) if notes and draw.random() < NOTE_SHARE else ""
        return self.lost_reasons[index].pk, note

    def _leave(self, card_id: int) -> None:
        _, cycle_order, column_order = self.open.pop(card_id)
        self.counts[(cycle_order, column_order)] -= 1

    def _has_room(self, cycle_order: int, column_order: int) -> bool:
        limit = FLOW[cycle_order][column_order][2]
        return limit is None or self.counts[(cycle_order, column_order)] < limit

    def _relocate(self, card_id: int, cycle_order: int, column_order: int) -> None:
        channel, old_cycle, old_column = self.open[card_id]
        self.counts[(old_cycle, old_column)] -= 1
        self.counts[(cycle_order, column_order)] += 1
        self.open[card_id] = (channel, cycle_order, column_order)

    def _move(
        self, card_id: int, cycle_order: int, column_order: int, actor: Actor, at: datetime
    ) -> None:
        if not self._has_room(cycle_order, column_order):
            return  # the next column is full: the card waits, as on the real board
        services.card_move(
            card_id=card_id,
            to_column_id=self.columns[(cycle_order, column_order)].pk,
            actor=actor,
            at=at,
        )
        self._relocate(card_id, cycle_order, column_order)

    def _handoff(self, card_id: int, from_cycle_order: int, actor: Actor, at: datetime) -> None:
        control_point = self.control_points[from_cycle_order]
        criteria = list(control_point.criteria.all())
        met = [c.pk for c in criteria if c.required or self.rng.random() < 0.6]
        if not self._has_room(from_cycle_order + 1, 1):
            return
        services.handoff_pass(
            card_id=card_id,
            control_point_id=control_point.pk,
            criteria_met_ids=met,
            actor=actor,
            at=at,
        )
        self._relocate(card_id, from_cycle_order + 1, 1)

    def run(self) -> None:
        self._people()
        self._configure()
        self.open: dict[int, tuple[ChannelSpec, int, int]] = {}
        self.counts: Counter[tuple[int, int]] = Counter()
        rng = self.rng
        experiments = _DemoExperiments(self, self.measuring)
        for day in range(HISTORY_DAYS):
            experiments.on(day)
            # Pull from the right: cards nearest to done move first, freeing room.
            for card_id in sorted(self.open, key=lambda c: (-self.open[c][1], -self.open[c][2])):
                self._advance(card_id, day)
            arrivals = int(self.spec.arrivals_per_day) + (
                rng.random() < self.spec.arrivals_per_day % 1
            )
            if day % 7 in (5, 6):
                arrivals = int(rng.random() < 0.3)
            for _ in range(arrivals):
                self._new_card(day)
        self._manager_override()
        self._block_some()
        self._history_some()
        experiments.on(HISTORY_DAYS)

    def _manager_override(self) -> None:
        """One documented WIP override by the manager, so the move log shows one."""
        full = self.columns[CONSTRAINT]
        waiting = (
            Card.objects.filter(column=self.columns[(2, 2)], outcome=Outcome.OPEN)
            .order_by("column_entered_at", "id")
            .first()
        )
        if waiting is None:
            return
        services.card_move(
            card_id=waiting.pk,
            to_column_id=full.pk,
            actor=UserActor(self.manager),
            wip_override_reason="Strategic account: board asked for a demo this week",
            at=self.start + timedelta(days=HISTORY_DAYS - 2, hours=10),
        )

    def _block_some(self) -> None:
        cards = list(
            Card.objects.filter(value_stream=self.stream, outcome=Outcome.OPEN).order_by("id")
        )
        for card in self.rng.sample(cards, k=max(1, len(cards) // 14)):
            services.card_set_blocked(
                card_id=card.pk,
                blocked=True,
                reason=self.rng.choice(BLOCK_REASONS),
                actor=UserActor(self.manager),
                at=max(card.column_entered_at, timezone.now() - timedelta(days=3)),
            )

    def _history_some(self) -> None:
        """Comments and an edit or two on a few open cards, by the people of the cycle
        they are in, so that a card's history reads as the team's growing knowledge of
        the prospect on first run: the card longest in the constraint and in the other
        busy columns, and a blocked one. Drawn from a generator of its own, so the
        simulation's draws stay as they were."""
        draw = random.Random(f"{RANDOM_SEED}-history-{self.spec.slug}")
        texts = HISTORY_COMMENTS[self.spec.slug]
        cards = [
            card
            for key in HISTORY_COLUMNS
            if (
                card := Card.objects.filter(column=self.columns[key], outcome=Outcome.OPEN)
                .order_by("column_entered_at", "id")
                .first()
            )
        ]
        blocked = Card.objects.filter(value_stream=self.stream, is_blocked=True).order_by("id")
        cards += [card for card in blocked[:1] if card not in cards]
        now = timezone.now() - timedelta(minutes=10)
        for index, card in enumerate(cards):
            cycle_order = card.column.cycle.order
            people = [self.leaders[cycle_order - 1], *self.members[cycle_order - 1]]
            since = min(card.updated_at, now - timedelta(days=1))
            # Working hours, as the simulation's days run; the third is the edit's.
            times = sorted(
                min(max(since + timedelta(minutes=1), at), now)
                for at in (
                    since.replace(hour=0, minute=0, second=0, microsecond=0)
                    + timedelta(
                        days=draw.randint(0, (now - since).days),
                        minutes=draw.randint(8 * 60, 18 * 60),
                    )
                    for _ in range(4)
                )
            )
            comment_times = [times[0], times[1], times[3]][: 2 + index % 2]
            for at, text in zip(comment_times, draw.sample(texts, k=3), strict=False):
                services.card_comment_add(
                    card_id=card.pk, text=text, actor=UserActor(draw.choice(people)), at=at
                )
            if index % 2 == 0:
                # What the team learnt, written into the card's notes, and the deal's
                # size as it now looks.
                value = card.estimated_value * Decimal(draw.choice(("1.2", "1.5", "0.8")))
                services.card_update(
                    card_id=card.pk,
                    actor=UserActor(people[0]),
                    person_name=card.person_name,
                    company=card.company,
                    email=card.email,
                    channel_id=card.channel_id,
                    owner_id=card.owner_id,
                    estimated_value=(value / 100).quantize(Decimal(1)) * 100,
                    notes=draw.choice(HISTORY_NOTES[self.spec.slug]),
                    at=times[2],
                )


# The columns whose longest-waiting card gets a history (cycle, column order): the
# constraint, the queue before it, and Collaboration's middle.
HISTORY_COLUMNS = [CONSTRAINT, (2, 2), (1, 3), (1, 2)]
HISTORY_COMMENTS = {
    "manufacturing": [
        "Call with their operations lead: unplanned stops on the main line cost them "
        "about a shift a week. That is the problem to solve, not reporting.",
        "They tried a spreadsheet add-on last year and dropped it: too much typing on "
        "the shop floor.",
        "The plant manager and the CFO decide together; IT only checks where the data is hosted.",
        "Wants a pilot on one machine before their budget round in March.",
        "Sent the case study of a similar machine builder; she forwarded it to the CFO.",
        "Asked for a reference in their industry. Our customer at Falun Forge would talk to them.",
        "Next step: a demo for their maintenance team on Thursday, with their own "
        "downtime figures.",
    ],
    "clinics": [
        "The practice manager says no-shows cost them two clinician hours a day: that "
        "is the problem, not the calendar itself.",
        "They use paper recall lists for follow-ups; the receptionists would welcome "
        "anything that ends the phoning round.",
        "The two senior partners decide; their DPO must sign off on hosting first.",
        "Wants to start with one specialty before rolling out to the whole group.",
        "Sent the case study of a dental group of their size; they asked about the reminder texts.",
        "Asked to speak to a clinic that switched from their practice software.",
        "Next step: a demo for the front desk team, with their own appointment mix.",
    ],
}
HISTORY_NOTES = {
    "manufacturing": [
        "What: unplanned downtime on the main line. When: before the March budget "
        "round. How/Why: the plant manager needs figures to justify a second shift.",
        "What: scrap rate on the CNC cell. When: this quarter. How/Why: a customer "
        "audit found the losses; quality owns the project.",
    ],
    "clinics": [
        "What: no-shows and late cancellations. When: before the summer. How/Why: two "
        "clinician hours a day lost; the partners want them back.",
        "What: patient follow-up after treatment. When: this half-year. How/Why: "
        "recalls are on paper and get missed.",
    ],
}


@dataclass(frozen=True)
class ExperimentSpec:
    """A demo experiment: its plan, and the history's days (as Mondays before today's
    week: ``weeks_back``) on which its steps were taken; None: not taken (yet)."""

    cycle_order: int
    hypothesis: str
    metric: str
    target: Decimal
    weeks_back: int  # its window starts this many Mondays before this week's
    planned_weeks: int
    column_order: int | None = None
    channel: str | None = None
    start: bool = True
    stop_after_days: int | None = None  # early, from the window's start
    check: bool = True
    decision: str = ""
    notes: str = ""
    # What the change did in the history: the daily loss rate of the experiment's column
    # times this, from the window's start to its end (or the stop).
    loss_factor: float = 1.0


# Each stage on each stream, windows inside the history, so the Checks are real.
EXPERIMENTS: dict[str, list[ExperimentSpec]] = {
    "manufacturing": [
        ExperimentSpec(
            1,
            "We believe that a short discovery call on the first day will cut the time "
            "enquiries wait in Information; we will know because their median time there "
            "falls.",
            "time_in_column_p50",
            Decimal("2"),
            column_order=2,
            weeks_back=14,
            planned_weeks=4,
            stop_after_days=24,
            decision="adopt",
            notes="The call is now part of every qualified deal.",
        ),
        ExperimentSpec(
            2,
            "We believe that offering a two-week trial will raise Information to Knowledge "
            "conversion in Sales/Buying from 30% to 40%; we will know because more of the "
            "qualified prospects move on to proposal and demo.",
            "conversion",
            Decimal("40"),
            weeks_back=10,
            planned_weeks=8,
            column_order=2,
            loss_factor=0.35,
        ),
        ExperimentSpec(
            1,
            "We believe that answering web-form enquiries within a day will lift arrivals "
            "from the web form; we will know because more prospects arrive through it.",
            "arrivals",
            Decimal("4"),
            weeks_back=2,
            planned_weeks=6,
            channel="Web form",
            check=False,
        ),
        ExperimentSpec(
            2,
            "We believe that a WIP limit of 4 on proposal and demo will shorten waiting; we "
            "will know because its WIP stays lower.",
            "wip",
            Decimal("4"),
            weeks_back=-1,
            planned_weeks=4,
            column_order=3,
            start=False,
        ),
    ],
    "clinics": [
        ExperimentSpec(
            1,
            "We believe that a clinician's case study sent with the first reply will move "
            "more practices through Collaboration; we will know because more cards leave it "
            "each week.",
            "throughput",
            Decimal("9"),
            weeks_back=12,
            planned_weeks=6,
            decision="adapt",
            notes="A small lift: try it with a reference from the same specialty.",
        ),
        ExperimentSpec(
            1,
            "We believe that a monthly webinar will bring more arrivals through it; we will "
            "know because webinar arrivals per week rise.",
            "arrivals",
            Decimal("2"),
            weeks_back=5,
            planned_weeks=4,
            channel="Webinar",
            check=False,
        ),
        ExperimentSpec(
            1,
            "We believe that booking the discovery call in the first reply will cut the time "
            "practices wait in Information; we will know because their median time there "
            "falls.",
            "time_in_column_p50",
            Decimal("2"),
            weeks_back=1,
            planned_weeks=4,
            column_order=2,
            check=False,
        ),
    ],
}


@dataclass(frozen=True)
class DemoMeasuring:
    """What measures the demo's experiments: ``metrics.experiments``'
    ``experiment_baseline_start`` and ``experiment_check`` (boards does not import
    metrics: the caller that may, metrics.demo, passes them)."""

    start: Callable[..., object]
    check: Callable[..., object]


class _DemoExperiments:
    """Takes a stream's demo experiments' steps on the history's days, through the
    services (and the metrics' measuring, which folds the moves written so far): the
    baseline is what the board held when the experiment started, as on a live stream."""

    def __init__(self, simulation: _StreamSimulation, measuring: DemoMeasuring | None) -> None:
        self.simulation = simulation
        self.measuring = measuring
        today = simulation.start + timedelta(days=HISTORY_DAYS)
        this_monday = (today - timedelta(days=today.weekday())).date()
        self.steps: dict[int, list[tuple[int, str, ExperimentSpec]]] = {}
        self.ids: dict[int, int] = {}
        for index, spec in enumerate(EXPERIMENTS.get(simulation.spec.slug, [])):
            monday = this_monday - timedelta(weeks=spec.weeks_back)
            first = self._day(monday)
            plan_day = max(0, min(first - 3, HISTORY_DAYS))
            self._at(plan_day, index, "plan", spec)
            if not spec.start:
                continue
            self._at(first, index, "start", spec)
            window_days = spec.planned_weeks * 7
            if spec.stop_after_days is not None:
                stop = first + spec.stop_after_days
                self._at(stop, index, "stop", spec)
                check = stop + 1
            else:
                stop = first + window_days
                check = stop + 1
            if spec.loss_factor != 1.0 and spec.column_order is not None:
                self._at(first, index, "effect", spec)
                self._at(stop, index, "effect_end", spec)
            if spec.check:
                self._at(check, index, "check", spec)
                if spec.decision:
                    self._at(check + 1, index, "act", spec)

    def _day(self, monday) -> int:
        return (monday - self.simulation.start.date()).days

    def _at(self, day: int, index: int, step: str, spec: ExperimentSpec) -> None:
        self.steps.setdefault(min(day, HISTORY_DAYS), []).append((index, step, spec))

    def on(self, day: int) -> None:
        for index, step, spec in self.steps.get(day, []):
            self._take(day, index, step, spec)

    def _take(self, day: int, index: int, step: str, spec: ExperimentSpec) -> None:
        sim = self.simulation
        measuring = self.measuring
        if step in ("effect", "effect_end"):
            assert spec.column_order is not None
            key = (spec.cycle_order, spec.column_order)
            sim.loss_factors[key] = spec.loss_factor if step == "effect" else 1.0
            return
        if measuring is None and step != "plan":
            return  # nothing measures: the experiments stay planned
        cycle_order = spec.cycle_order
        leader = UserActor(sim.leaders[cycle_order - 1])
        # Steps late in the working day; today's (the plan of a future window) now.
        at = min(sim.start + timedelta(days=day, hours=17), timezone.now() - timedelta(minutes=1))
        if step == "plan":
            monday = (sim.start + timedelta(days=HISTORY_DAYS)).date()
            monday -= timedelta(days=monday.weekday(), weeks=spec.weeks_back)
            column = sim.columns[(cycle_order, spec.column_order)] if spec.column_order else None
            channel = sim.channels[spec.channel] if spec.channel else None
            self.ids[index] = pdca_services.experiment_plan(
                cycle_id=sim.cycles[cycle_order - 1].pk,
                team_id=sim.teams[cycle_order - 1].pk,
                hypothesis=spec.hypothesis,
                targeted_metric=spec.metric,
                column_id=column.pk if column else None,
                channel_id=channel.pk if channel else None,
                window_start=monday,
                planned_weeks=spec.planned_weeks,
                target=spec.target,
                actor=leader,
                at=at,
            ).pk
        elif step == "start":
            assert measuring is not None
            measuring.start(experiment_id=self.ids[index], actor=leader, at=at.replace(hour=9))
        elif step == "stop":
            pdca_services.experiment_stop(experiment_id=self.ids[index], actor=leader, at=at)
        elif step == "check":
            assert measuring is not None
            measuring.check(experiment_id=self.ids[index], actor=leader, at=at)
        elif step == "act":
            pdca_services.experiment_act(
                experiment_id=self.ids[index],
                actor=leader,
                decision=spec.decision,
                notes=spec.notes,
                at=at,
            )


def seed_demo(
    *, measuring: DemoMeasuring | None = None, random_passwords: bool = False
) -> SeedReport:
    """Create the demo streams unless they exist. Deterministic: same seed, same data.
    ``measuring``: what starts and checks the demo's experiments on their days in the
    history (metrics.demo.seed_demo passes it); without it they stay planned.
    ``random_passwords`` (anywhere but development): no one gets DEMO_PASSWORD; the
    printed logins made by this run get a random password each, in the report's
    ``passwords``, and the other people none that works."""
    accounts = _Accounts(shared_password=not random_passwords)
    admin = accounts.user("admin", "Ada", "Admin", superuser=True)
    logins = [(admin.username, "admin (Django admin and every board)")]
    if ValueStream.objects.filter(slug__in=[s.slug for s in STREAMS]).exists():
        report = SeedReport(created=False, logins=logins + _existing_logins())
    else:
        rng = random.Random(RANDOM_SEED)
        today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=HISTORY_DAYS)
        report = SeedReport(created=True, logins=logins)
        for spec in STREAMS:
            simulation = _StreamSimulation(spec, rng, start, measuring, accounts)
            with transaction.atomic():
                simulation.run()
            report.logins += simulation.logins
    if random_passwords:
        report.passwords = accounts.give_random_passwords([name for name, _ in report.logins])
    return report


def _stream_logins(prefix: str) -> list[tuple[str, str]]:
    """The logins a run prints for a demo stream: one person of each kind of role."""
    return [
        (f"{prefix}-manager", "value stream manager"),
        (f"{prefix}-coordinator", "team coordinator"),
        (f"{prefix}-lead-sales", "team leader (sales)"),
        (f"{prefix}-member1", "member (awareness)"),
    ]


def _existing_logins() -> list[tuple[str, str]]:
    """The logins of the demo streams that exist, as the run that made them printed
    them (a plain member's too), for those of their people who are still there."""
    slugs = set(
        ValueStream.objects.filter(slug__in=[s.slug for s in STREAMS]).values_list(
            "slug", flat=True
        )
    )
    logins = [
        login for spec in STREAMS if spec.slug in slugs for login in _stream_logins(spec.prefix)
    ]
    present = set(
        get_user_model()
        .objects.filter(username__in=[username for username, _ in logins])
        .values_list("username", flat=True)
    )
    return [(username, role) for username, role in logins if username in present]
