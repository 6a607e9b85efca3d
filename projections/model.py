"""What a projection is: the events it handles, the tables it owns, and rows folded in batches."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from events.catalog import Event, event_type

# A connection of its own or one lent by a pool: both run statements the same way.
Conn = asyncpg.Connection | PoolConnectionProxy


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class Fact(msgspec.Struct, frozen=True, gc=False):
    """One event as a projection folds it: where it stands in the log, when, and what."""

    position: int
    recorded_at: datetime
    event: Event


class Table(msgspec.Struct, frozen=True, kw_only=True):
    """A read-model table, described once: the runner creates it live or in a shadow schema."""

    schema: str
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, SQL type [constraints]) in row order
    key: str  # the primary key column
    generated: tuple[str, ...] = ()  # generated column definitions, never written
    constraints: tuple[str, ...] = ()
    indexes: tuple[str, ...] = ()  # index column lists, e.g. "(account_id, status)"

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    def sql_type(self, column: str) -> str:
        # "text not null default 'new'" → "text"; array and multi-word types kept whole
        definition = dict(self.columns)[column]
        words = definition.split()
        base = []
        for word in words:
            if word.lower() in ("not", "null", "default", "check", "references", "unique", "primary"):
                break
            base.append(word)
        return " ".join(base)

    def ddl(self, schema: str, *, indexes: bool = True) -> list[str]:
        target = f"{quote(schema)}.{quote(self.name)}"
        parts = [f"{quote(c)} {t}" for c, t in self.columns]
        parts += list(self.generated)
        parts.append(f"primary key ({quote(self.key)})")
        parts += list(self.constraints)
        statements = [f"create table {target} (\n    " + ",\n    ".join(parts) + "\n)"]
        if indexes:
            statements += self.index_ddl(schema)
        return statements

    def index_ddl(self, schema: str) -> list[str]:
        return [f"create index on {quote(schema)}.{quote(self.name)} {cols}" for cols in self.indexes]


class View(msgspec.Struct, frozen=True, kw_only=True):
    """A view over read-model tables, recreated whenever a table under it is swapped."""

    schema: str
    name: str
    sql: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


class Db:
    """One transaction's view of a projection's tables: live, or the shadow copy of a rebuild."""

    def __init__(self, conn: Conn, names: Mapping[str, tuple[str, str]]) -> None:
        self.conn = conn
        self.names = names  # "public.leads" → (schema, table) to use: live, or the shadow copy

    def location(self, table: Table) -> tuple[str, str]:
        return self.names[table.qualified]

    def table(self, table: Table) -> str:
        schema, name = self.names[table.qualified]
        return f"{quote(schema)}.{quote(name)}"


R = TypeVar("R", bound=msgspec.Struct)


_ABSENT: Any = object()


def _uuid_int(key: Any) -> Any:
    return key.int


def _same(key: Any) -> Any:
    return key


class Taken(msgspec.Struct, frozen=True, gc=False):
    """Rows to write, captured when taken: later changes to the cached rows do not leak in."""

    new: list[tuple[Any, ...]] | None  # rows the table cannot have yet: binary COPY
    changed: str | None  # rows it may have: one JSON array, upserted
    count: int


class RowSet(Generic[R]):
    """A table's rows as a projection folds events into them.

    Rows are mutable Structs whose fields are the table's columns (json/jsonb columns as
    `msgspec.Raw`). They are cached between batches (a projection is its tables' only writer),
    loaded on first use, and written back by `flush` in one statement per table.
    """

    def __init__(self, table: Table, row_type: type[R], *, max_cached: int = 500_000) -> None:
        arrays = [c for c in table.column_names if table.sql_type(c).endswith("]")]
        if arrays:  # unnest() flattens arrays of arrays: multi-row upserts cannot carry them
            raise TypeError(f"{table.qualified}: array columns ({', '.join(arrays)}) are not supported; use jsonb")
        fields = tuple(msgspec.structs.fields(row_type))
        if tuple(f.name for f in fields) != table.column_names:
            raise TypeError(f"{row_type.__name__} fields must be {table.qualified}'s columns, in order")
        self.table = table
        self.row_type = row_type
        self.max_cached = max_cached
        self._key = table.key
        # uuid keys are cached by their int: hashing and comparing those happens in C, where a
        # uuid.UUID's __hash__ and __eq__ are Python calls (a fifth of a rebuild's time).
        self._uuid = table.sql_type(table.key) == "uuid"
        self._json_columns = [i for i, c in enumerate(table.column_names) if table.sql_type(c) in ("json", "jsonb")]
        self._rows: dict[Any, R | None] = {}  # None: known not to exist
        self._dirty: dict[Any, R] = {}  # changed rows the table has: upserted
        self._new: dict[Any, R] = {}  # rows the table cannot have yet: copied in
        self._written: set[Any] = set()
        self._complete = False  # every row of the table is in the cache
        self._select: str | None = None
        self._upsert: str | None = None

    def reset(self, *, fresh: bool) -> None:
        """Forget everything cached; `fresh`: the table is known to be empty."""
        self._rows.clear()
        self._dirty.clear()
        self._new.clear()
        self._written.clear()
        self._complete = fresh

    @property
    def dirty(self) -> int:
        return len(self._dirty) + len(self._new)

    async def prefetch(self, db: Db, keys: Iterable[Any]) -> None:
        """Load the rows of `keys` not cached yet (one query)."""
        if self._complete:
            return
        norm = _uuid_int if self._uuid else _same
        missing = [k for k in set(keys) if norm(k) not in self._rows]
        if not missing:
            return
        columns = ", ".join(quote(c) for c in self.table.column_names)
        sql = (
            f"select {columns} from {db.table(self.table)} "
            f"where {quote(self._key)} = any($1::{self.table.sql_type(self._key)}[])"
        )
        for record in await db.conn.fetch(sql, missing):
            values = list(record)
            for i in self._json_columns:  # stored JSON goes back out as it came: raw
                if values[i] is not None:
                    values[i] = msgspec.Raw(values[i])
            self._rows[norm(record[self._key])] = self.row_type(*values)
        for key in missing:
            self._rows.setdefault(norm(key), None)

    def get(self, key: Any) -> R | None:
        """A cached row; call `prefetch` for the batch's keys first."""
        row = self._rows.get(key.int if self._uuid else key, _ABSENT)
        if row is _ABSENT:
            if self._complete:
                return None
            raise LookupError(f"{self.table.qualified}: key {key!r} was not prefetched")
        return row

    def put(self, row: R) -> None:
        """A new or changed row, written at the next flush."""
        key = getattr(row, self._key).int if self._uuid else getattr(row, self._key)
        if self._new.get(key) is row:
            return  # changed in place, and already going in as new
        self._rows[key] = row
        if self._complete and key not in self._written:
            # The whole table is in memory (a rebuild into an empty copy): this row is not in
            # the table yet, and goes in by COPY, the fastest way in.
            self._new[key] = row
        else:
            self._dirty[key] = row

    def take(self) -> Taken:
        """What the next flush would write, serialised now; the rows may change on afterwards."""
        taken = Taken(
            new=[msgspec.structs.astuple(r) for r in self._new.values()] if self._new else None,
            changed=_encode_rows(list(self._dirty.values())) if self._dirty else None,
            count=len(self._new) + len(self._dirty),
        )
        self._written.update(self._new)
        self._new.clear()
        self._dirty.clear()
        if len(self._rows) > self.max_cached:  # bounded memory: start over from the table
            self._rows.clear()
            self._written.clear()
            self._complete = False
        return taken

    async def write(self, db: Db, taken: Taken) -> int:
        """Write taken rows, each set in one statement.

        New rows (a rebuild's) go in by binary COPY: the cheapest for PostgreSQL, which is the
        busier side of a rebuild. Changed rows travel as one JSON array that PostgreSQL unpacks
        (`json_populate_recordset`) and upserts: msgspec writes it in C, where array parameters
        would cost Python a conversion per value.
        """
        if taken.new is not None:
            schema, name = db.location(self.table)
            await db.conn.copy_records_to_table(
                name, schema_name=schema, columns=list(self.table.column_names), records=taken.new
            )
        if taken.changed is not None:
            await db.conn.execute(self._write_sql(db, upsert=True), taken.changed)
        return taken.count

    async def flush(self, db: Db) -> int:
        return await self.write(db, self.take())

    def _write_sql(self, db: Db, *, upsert: bool) -> str:
        table = db.table(self.table)
        cols = ", ".join(quote(c) for c in self.table.column_names)
        sql = f"insert into {table} ({cols}) select {cols} from json_populate_recordset(null::{table}, $1::json)"
        if upsert:
            updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in self.table.column_names if c != self._key)
            sql += f" on conflict ({quote(self._key)}) do update set {updates}"
        return sql


_row_encoder = msgspec.json.Encoder()


def _encode_rows(rows: list[Any]) -> str:
    return _row_encoder.encode(rows).decode()


class Projection(abc.ABC):
    """Folds the events it handles into the tables it owns. Pure: the same log, the same rows.

    Never read the clock or anything outside the events: a rebuild must equal the live copy.
    Bump `version` when the tables or the fold change; the runner then rebuilds it (into a
    shadow copy while the old one keeps serving) and swaps it in.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    handles: ClassVar[tuple[type[Event], ...]]
    tables: ClassVar[tuple[Table, ...]]
    views: ClassVar[tuple[View, ...]] = ()

    @classmethod
    def types(cls) -> frozenset[str]:
        return frozenset(event_type(e) for e in cls.handles)

    @abc.abstractmethod
    async def apply(self, db: Db, batch: Sequence[Fact]) -> None:
        """Fold a batch of events (of the handled types, in log order) into the tables."""

    async def flush(self, db: Db) -> None:
        """Write what `apply` kept in memory; called before each checkpoint is committed."""
        for rows in self.row_sets():
            await rows.flush(db)

    def reset(self, *, fresh: bool = False) -> None:
        """Forget cached state: after a rollback, or when another writer moved the checkpoint."""
        for rows in self.row_sets():
            rows.reset(fresh=fresh)

    def dirty(self) -> int:
        return sum(rows.dirty for rows in self.row_sets())

    def take(self) -> list[tuple[RowSet[Any], Taken]]:
        """Every row set's pending writes, to write elsewhere (a rebuild writes in the background)."""
        return [(rows, rows.take()) for rows in self.row_sets()]

    def row_sets(self) -> Sequence[RowSet[Any]]:
        return [v for v in vars(self).values() if isinstance(v, RowSet)]
