"""Value streams with one planted constraint, for holding the constraint detector to
account: a seeded, deterministic discrete-event simulation of a pull board.

What it simulates (one stream, pure Python, ``random.Random`` seeded per stream):

- The default board: 3 cycles x 4 columns (Data, Information, Knowledge, Wisdom), 12
  columns in flow order. Every card walks all 12 in order: ``enter`` into the first
  column, ``move`` inside a cycle, ``handoff`` from a cycle's last column to the next
  cycle's first, ``won`` after the last column. In each column a card is ``lost`` with
  a small probability (1-4 %) when its work there ends.
- Prospects arrive as a Poisson process (``demand_per_day``, 2-16, most streams small)
  into the first column. When that column is at its WIP limit they wait outside the
  board (an external backlog, invisible to the metrics) and enter as soon as there is
  room.
- Column j has ``workers`` c_j serving the cards in it that are not finished yet, in
  arrival order; service times are gamma distributed with mean S_j days. Its planned
  utilisation is rho_j = lambda_j * S_j / c_j, lambda_j being the demand still alive at
  column j (the losses upstream thin it).
- Three roles. The one **constraint** has rho 0.84-0.99 (capacity 1.0-1.2x the demand
  reaching it) and 1-3 workers. **Work** columns have rho 0.3-0.6 and 1-4 workers.
  **Customer wait** columns (2-5 per stream; half the time the column right after the
  constraint) are delays: many workers, 3-8 days of service, rho 0.3-0.6, so they hold
  many cards for a long time without limiting anything.
- Pull: a finished card WAITS IN ITS COLUMN (still counting as its WIP) until the next
  column has room (WIP < limit), then moves at once, first finished first moved. A move
  frees room upstream, so one finish can pull a chain of cards forward at one instant.
- WIP limits: in the *limited* half the constraint's limit is its worker count or one
  more, so it sits at its limit and the work behind it waits upstream; in the
  *unlimited* half it has none and its own queue grows. Other columns get a comfortable
  limit (mean WIP + 4 sd + 3) or none (about a third of them).
- ``SIM_DAYS`` (19 weeks) end at ``NOW`` (a Wednesday, 15:00 UTC); the metrics window
  (12 full ISO weeks, then NOW's week so far) starts after about 6.5 weeks of warm-up,
  longer than a card takes to cross the board. Cards on the board at ``NOW`` stay
  open; work scheduled past ``NOW`` never happens.

``simulate`` also measures the simulation's own statistics over the metrics window (per
column: utilisation, mean WIP, mean queue, share of time at the WIP limit, share of time
with finished work in it waiting for room in the next column), so that the ground truth
can be checked:
the planted column is the one with the highest utilisation, and in the limited half it
sits at its limit while the work upstream waits on it.

``load_simulation`` writes a simulation as a real stream (Card and CardMove rows, COPY on
PostgreSQL, ``bulk_create`` elsewhere). ``planted_simulations`` is the standard set:
12 positions x {limited, unlimited} x ``seeds_per_case``.
"""

from tests.metrics.planted.loading import create_planted_stream, load_simulation
from tests.metrics.planted.simulation import (
    COLUMN_COUNT,
    NOW,
    POSITION_NAMES,
    Simulation,
    StreamPlan,
    format_stats,
    ground_truth,
    plan_stream,
    planted_plans,
    planted_simulations,
    simulate,
)

__all__ = [
    "COLUMN_COUNT",
    "NOW",
    "POSITION_NAMES",
    "Simulation",
    "StreamPlan",
    "create_planted_stream",
    "format_stats",
    "ground_truth",
    "load_simulation",
    "plan_stream",
    "planted_plans",
    "planted_simulations",
    "simulate",
]
