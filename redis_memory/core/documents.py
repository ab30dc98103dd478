"""Dict attributes' operations, a part of the core (see :mod:`redis_memory.core`).

Path-level changes (:class:`~redis_memory.docops.DocOp`) go to Redis as RedisJSON commands
at the changed paths when the module is loaded, and otherwise as a compare-and-set of the
whole document text, retried after a re-read; in a transaction without the module, each
document gets a working copy written once at commit.
"""

from __future__ import annotations

import copy
import hashlib
from typing import TYPE_CHECKING, Any

from redis_memory import codec
from redis_memory.core.mirror import Mirror, MirrorTable
from redis_memory.core.requests import QUEUED, Op
from redis_memory.core.transactions import OpenTransaction
from redis_memory.docops import DocOp, apply_ops
from redis_memory.errors import ConcurrentModificationError, RedisConnectionError, TransactionError
from redis_memory.keys import KeySpace, kind_field

_DOC_NEEDS_REPLY = {"setnx", "pop", "arrpop"}
_CAS_ATTEMPTS = 100


class DocumentOps:
    """The document operations of :class:`~redis_memory.core.Core` (mixed into it)."""

    if TYPE_CHECKING:  # what they use of the core
        _mirrors: MirrorTable

        def _transaction(self, space: KeySpace) -> OpenTransaction | None: ...
        def _op(self, name: str, space: KeySpace, key: str, args: list[str]) -> Op[Any]: ...
        def g_json_flag(self, space: KeySpace) -> Op[str]: ...
        def g_read(self, space: KeySpace, name: str, cached: bool = True) -> Op[tuple[str, Any] | None]: ...
        def forget(self, key: str) -> None: ...
        def known(self, space: KeySpace, name: str) -> tuple[bool, tuple[str, Any] | None]: ...
        def g_assign(self, space: KeySpace, name: str, value: object) -> Op[None]: ...
        def forget_known(self, space: KeySpace, name: str) -> None: ...
        def journal_keeper(self) -> Any: ...

        backlog: int

    def g_doc_ops(self, space: KeySpace, name: str, ops: list[DocOp]) -> Op[list[Any]]:
        """Apply path-level changes to dict attribute ``name``, all or none; return the results.

        With RedisJSON: one EVALSHA of JSON.SET / JSON.DEL / JSON.ARRAPPEND ... at the changed
        paths, O(size of the change). Without: the ops are applied to the stored text, which is
        written back by compare-and-set (one EVALSHA, O(size of the document)), retried after a
        re-read if another writer got there first. In a transaction, results are :data:`QUEUED`.
        """
        transaction = self._transaction(space)
        if transaction is not None and any(op.op in _DOC_NEEDS_REPLY for op in ops):
            raise TransactionError("this change returns a value from Redis: make it outside the transaction")
        key = space.collection_key(name)
        try:
            try:
                json_flag = yield from self.g_json_flag(space)
            except RedisConnectionError:
                if transaction is not None:
                    raise
                return (yield from self._g_doc_ops_unknown_form(space, name, ops))
            if json_flag == "1":
                return (yield from self._g_doc_ops_module(space, name, key, ops))
            if transaction is not None:
                return (yield from self._g_doc_ops_in_transaction(space, name, key, ops, transaction))
            return (yield from self._g_doc_ops_cas(space, name, key, ops))
        except ConcurrentModificationError:
            self.forget(key)
            raise

    def _g_doc_ops_unknown_form(self, space: KeySpace, name: str, ops: list[DocOp]) -> Op[list[Any]]:
        """Redis was never reached, so nobody knows whether it has RedisJSON: the changes are
        applied to the document this process knows (it assigned or read it) and the whole
        document is assigned again, journaled with its form left open like the assignment it
        follows (last writer wins for it on replay). Unknown document: RedisConnectionError."""
        known, found = self.known(space, name)
        if not known or found is None or found[0] != codec.DICT or not isinstance(found[1], Mirror):
            raise RedisConnectionError(
                f"Redis cannot be reached and this process does not know dict attribute {name!r}: "
                "read or assign it while Redis answers"
            )
        document = copy.deepcopy(found[1].value)
        results = apply_ops(document, ops)  # raises MissingKeyError etc. before any write
        yield from self.g_assign(space, name, document)
        return results

    def _g_doc_ops_module(self, space: KeySpace, name: str, key: str, ops: list[DocOp]) -> Op[list[Any]]:
        args = [kind_field(name), str(len(ops))]
        for op in ops:
            args.extend(op.script_args())
        reply = yield from self._op("doc", space, key, args)
        if reply is QUEUED:
            self._known_doc_ops(space, name, ops)
            return [QUEUED] * len(ops)
        results: list[Any] = []
        for op, raw in zip(ops, reply, strict=True):
            if op.op in ("setnx", "pop"):
                results.append(codec.loads(raw)[0])
            elif op.op == "arrpop":
                results.append(codec.loads(raw))
            elif op.op in ("arrappend", "arrinsert"):
                results.append(int(raw))
            else:
                results.append(None)
        mirror = self._mirrors.get(key)
        if mirror is not None:
            try:
                apply_ops(mirror.value, ops)
            except Exception:  # the mirror disagrees: drop it rather than trust it
                self._mirrors.pop(key, None)
        return results

    def _known_doc_ops(self, space: KeySpace, name: str, ops: list[DocOp]) -> None:
        """Journaled (or queued) path changes applied to the last known document, if any, as
        Redis will apply them; a document they do not fit is forgotten, never guessed."""
        known, found = self.known(space, name)
        if not known or found is None or not isinstance(found[1], Mirror):
            return
        try:
            apply_ops(found[1].value, ops)
        except Exception:
            self.forget_known(space, name)

    def _g_read_or_known(self, space: KeySpace, name: str) -> Op[tuple[str, Any] | None]:
        """The document to compare-and-set against: read from Redis, or, while Redis cannot be
        reached (or this process's journaled writes wait for it), the last known one; the
        journaled compare-and-set is then dropped on replay if another writer changed it."""
        known, found = self.known(space, name)
        keeper = self.journal_keeper()
        if known and keeper is not None and keeper.journals_behind(space):
            return found
        try:
            return (yield from self.g_read(space, name))
        except RedisConnectionError:
            if not known:
                raise
            return found

    def _g_doc_ops_in_transaction(
        self, space: KeySpace, name: str, key: str, ops: list[DocOp], transaction: OpenTransaction
    ) -> Op[list[Any]]:
        """Without RedisJSON, a transaction changes a working copy of each document; the copy
        is written by one compare-and-set against the text first read, at commit."""
        if key not in transaction.documents:
            found = yield from self.g_read(space, name)
            if found is None or found[0] != codec.DICT or found[1].raw is None:
                raise ConcurrentModificationError("the attribute was deleted or replaced by another writer")
            sha = hashlib.sha1(found[1].raw).hexdigest()
            transaction.documents[key] = (name, sha, copy.deepcopy(found[1].value))
        apply_ops(transaction.documents[key][2], ops)
        return [QUEUED] * len(ops)

    def _g_doc_ops_cas(self, space: KeySpace, name: str, key: str, ops: list[DocOp]) -> Op[list[Any]]:
        for _attempt in range(_CAS_ATTEMPTS):
            found = yield from self._g_read_or_known(space, name)
            if found is None or found[0] != codec.DICT:
                raise ConcurrentModificationError("the attribute was deleted or replaced by another writer")
            mirror: Mirror = found[1]
            assert mirror.raw is not None
            document = copy.deepcopy(mirror.value)
            results = apply_ops(document, ops)  # raises MissingKeyError etc. before any write
            document_text = codec.dumps(document)
            expected = hashlib.sha1(mirror.raw).hexdigest()
            try:
                yield from self._op("doc_cas", space, key, [kind_field(name), expected, document_text])
            except ConcurrentModificationError as exc:
                self.forget(key)
                if "deleted or replaced" in str(exc):
                    raise
                continue
            if self._mirrors.get(key) is mirror:
                mirror.value, mirror.raw = document, document_text.encode()
            return results
        raise ConcurrentModificationError(f"dict attribute {name!r} kept changing; gave up after {_CAS_ATTEMPTS} tries")
