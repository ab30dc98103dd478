"""Writer slots: what makes operation ids cheap to remember on the server.

An operation id is ``<writer>:<seq>``. A writer is a slot of this process that carries one
write at a time, from its first send to its last resend; its ``seq`` grows by one per write.
The scripts keep, per object, only each writer's last applied ``seq`` and reply (see
``applied_before`` in ``lua/lib.lua``), so the server's bookkeeping is one field per writer
active in the last hour, not one per write. A process makes as many writers as it runs
writes at the same moment (threads, asyncio tasks): usually one.

The journal is the one place where a writer's writes may wait: a write journaled on a writer
is replayed after the writes journaled before it, so that writer is *held* (only journaled
writes take it) until this process has no journaled write left; a write that must be sent at
once (one whose reply the caller needs, or of an object that does not journal) never takes a
held writer, so it can never overtake a journaled one of the same writer.

On a Redis Cluster the primaries' drivers share one :class:`Writers` (``resends=True``): a
write whose reply was lost on a primary that then stopped answering keeps its writer and seq
(:meth:`Writers.keep_for_resend`), and the router sends it again to the slot's new primary
with the same operation id (:meth:`Writers.take` hands that writer out once more), so a write
the old primary had applied and replicated is not applied twice.
"""

from __future__ import annotations

import contextvars
import os
import secrets
from dataclasses import dataclass


@dataclass(eq=False, slots=True)
class Writer:
    """One writer slot: its token and the seq of its last write."""

    token: str
    seq: int = 0
    journaled: bool = False  # it carried a write to the journal that may not be replayed yet

    def next_id(self) -> str:
        """The operation id of this writer's next write."""
        self.seq += 1
        return f"{self.token}:{self.seq}"


class Writers:
    """The writer slots of one driver (thread- and task-safe: list pops and appends are atomic)."""

    def __init__(self, *, resends: bool = False) -> None:
        """No writer yet; they are made as concurrent writes need them. ``resends``: a cluster
        router's, which sends a write whose reply was lost again with the same id."""
        self._free: list[Writer] = []
        self._held: list[Writer] = []
        self._pid = os.getpid()
        self.resends = resends
        # the writer of this thread's (or task's) write whose reply was lost, for its resend
        self._kept: contextvars.ContextVar[Writer | None] = contextvars.ContextVar(f"kept{id(self)}", default=None)

    def take(self, *, backlog: int, may_journal: bool) -> Writer:
        """A writer for one write. ``backlog``: this process's journaled writes not yet
        replayed; ``may_journal``: whether this write may go to the journal."""
        if self._pid != os.getpid():  # a forked child makes writers of its own
            self._free, self._held, self._pid = [], [], os.getpid()
        kept = self._kept.get() if self.resends else None
        if kept is not None:  # the router sends a write whose reply was lost again: the same id
            self._kept.set(None)
            kept.seq -= 1
            return kept
        if not backlog and self._held:  # every journaled write is replayed: held writers are free again
            while True:
                try:
                    writer = self._held.pop()
                except IndexError:  # (another thread freed the last one)
                    break
                writer.journaled = False
                self._free.append(writer)
        pool = self._held if backlog and may_journal and self._held else self._free
        try:
            return pool.pop()
        except IndexError:
            return Writer(secrets.token_hex(6))

    def give_back(self, writer: Writer) -> None:
        """The write is done (acknowledged, refused, journaled or given up)."""
        if writer.journaled:
            self._held.append(writer)
        else:
            self._free.append(writer)

    def keep_for_resend(self, writer: Writer) -> bool:
        """A write whose reply was lost (its primary stopped answering): keep its writer and
        seq for the router's resend (True), or not, outside a cluster (False: give it back)."""
        if not self.resends:
            return False
        self.release_kept()
        self._kept.set(writer)
        return True

    def release_kept(self) -> None:
        """The router is done with a write (applied, refused, or given up): its writer, if it
        was kept for a resend, is free again."""
        kept = self._kept.get()
        if kept is not None:
            self._kept.set(None)
            self.give_back(kept)

    def __len__(self) -> int:
        """How many writers this driver made (free and held)."""
        return len(self._free) + len(self._held)
