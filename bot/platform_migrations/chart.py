"""The burn-up chart of a migration as a PNG: finished services against scope, the deadline,
and the projected finish. Aggregates only: it never names a team or a service."""

from __future__ import annotations

import io
from datetime import datetime, time
from zoneinfo import ZoneInfo

from matplotlib import dates as mdates
from matplotlib.figure import Figure

from bot.platform_migrations.reports import Status


def burn_up_png(found: Status, now: datetime) -> bytes:
    """Step lines of scope and finished targets from the first event to now, the deadline as a
    vertical line, and a dashed projection to the projected finish when there is one."""
    # Figure without pyplot: no global state, safe in the listener threads (Agg canvas).
    figure = Figure(figsize=(8, 4.5), dpi=100)
    axes = figure.subplots()
    start = min([t for t, _ in found.scope] + [t for t, _ in found.history] + [now])
    scope_x = [t for t, _ in found.scope] + [now]
    scope_y = [n for _, n in found.scope] + [found.total]
    done_x = [start] + [t for t, _ in found.history] + [now]
    done_y = [0] + [n for _, n in found.history] + [found.finished]
    axes.step(scope_x, scope_y, where="post", color="#888888", label="services in scope")
    axes.step(done_x, done_y, where="post", color="#2a9d8f", linewidth=2, label="done or exempt")
    deadline = datetime.combine(found.migration.deadline, time(0), ZoneInfo("UTC"))
    axes.axvline(deadline, color="#e76f51", linestyle="-", label="deadline")
    if found.projected is not None and found.finished < found.total:
        end = datetime.combine(found.projected, time(0), ZoneInfo("UTC"))
        axes.plot(
            [now, end],
            [found.finished, found.total],
            color="#2a9d8f",
            linestyle="--",
            label="projected",
        )
    axes.set_ylim(0, max(found.total, 1) * 1.1)
    axes.set_ylabel("services")
    axes.set_title(f"{found.migration.title}: {found.finished} of {found.total} finished")
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    figure.autofmt_xdate()
    axes.legend(loc="upper left")
    axes.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
