"""A blocking facade of :class:`~provena_like.ProvenaClient` for scripts and notebooks.

The SDK is async. :class:`BlockingClient` gives the same surface without ``await``: every
call runs the async client's coroutine on a private event loop in a background thread (one
loop per blocking client, started on first use, stopped by :meth:`BlockingClient.close`, by
leaving a ``with`` block, or when the interpreter exits). So it works in a plain script and
in Jupyter, where an event loop is already running (``asyncio.run`` fails there), without
``nest_asyncio``.

Nothing is written twice: the facade wraps the async objects generically. Reading an
attribute of a wrapped object gives

* for a coroutine method (``await pv.datastore.mint(...)``): a blocking function with the
  same name, docstring and signature (``pv.datastore.mint(...)``);
* for an async generator or async iterator (``async for hit in pv.datastore.search(...)``):
  a blocking iterator (``for hit in pv.datastore.search(...)``), which ends the async one
  when you stop early and call its ``close()`` (or leave a ``with`` block);
* for an object of the SDK with async methods (an L3 module, an L2 client, an
  ``InteractiveDataset``, a paginator): that object, wrapped the same way;
* anything else (records, results, ids, paths) as it is.

For type checkers the facade is spelt out in ``provena_like/_blocking_types.pyi``, generated
from the async SDK's annotations (``BlockingClient.datastore`` is a ``BlockingDatastore``,
whose ``mint`` returns a ``BlockingInteractiveDataset``, ...), and checked by a test to match.

The module is called ``blocking`` rather than ``sync`` because "sync" already names the
dataset synchronisation (``ds.sync_up``, ``provena-like sync``).

Example:
    ```python
    from provena_like.blocking import BlockingClient

    with BlockingClient.from_env() as pv:
        me = pv.auth_client.userinfo()
        for item in pv.registry_client.iter_items(owner=me.preferred_username, max_items=5):
            print(item.id, item.display_name)
    ```
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from provena_like._core.errors import UsageError
from provena_like._core.lifecycle import Closeable
from provena_like.client import ProvenaClient

if TYPE_CHECKING:
    import httpx

    from provena_like._blocking_types import BlockingProvenaClient as _TypedSurface
    from provena_like._core.config import ProvenaConfig
    from provena_like._core.retry import RetryPolicy
else:
    _TypedSurface = object  # the types live in a stub, generated from the async SDK

__all__ = ["Blocking", "BlockingClient", "BlockingIterator"]

T = TypeVar("T")


class _LoopThread:
    """A private event loop running in a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise UsageError("this BlockingClient is closed and cannot be reused")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="provena-like-blocking", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    @property
    def started(self) -> bool:
        return self._loop is not None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the private loop and wait for its result (or exception)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise UsageError(
                "a BlockingClient was called from its own event loop (e.g. in a progress "
                "callback); inside that callback, use the async client instead"
            )
        try:
            loop = self._started()
        except BaseException:
            coro.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:  # KeyboardInterrupt in a notebook: stop the work too
            future.cancel()
            raise

    def stop(self) -> None:
        """Stop the loop and its thread (after the work on it has finished)."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if threading.current_thread() is thread:  # dropped by a callback: can't wait here
            loop.call_soon(loop.stop)
            return
        # iterators left unfinished (a search stopped early) end here, with what they hold
        asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def _shutdown(runner: _LoopThread, client: ProvenaClient) -> None:
    """Close the async client on its loop, then stop the loop (close, ``with`` exit, atexit)."""
    try:
        if runner.started and not client.is_closed:
            runner.run(client.aclose())
    finally:
        runner.stop()


_ASYNC_MEMBERS: dict[type, bool] = {}


def _has_async_api(cls: type) -> bool:
    """Whether objects of ``cls`` (a class of the SDK) have async methods or iterate async."""
    found = _ASYNC_MEMBERS.get(cls)
    if found is None:
        found = hasattr(cls, "__aiter__") or any(
            inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member)
            for name, member in inspect.getmembers_static(cls)
            if not name.startswith("__")
        )
        _ASYNC_MEMBERS[cls] = found
    return found


def _blocking_result(value: Any, runner: _LoopThread) -> Any:
    """``value`` as the blocking world sees it: wrapped if it has an async API."""
    if isinstance(value, AsyncIterator):  # an async generator, a page walk
        return BlockingIterator(value, runner)
    if type(value).__module__.startswith("provena_like.") and _has_async_api(type(value)):
        return Blocking(value, runner)  # a module, a client, a dataset, a paginator
    return value


def _blocking_callable(func: Callable[..., Any], runner: _LoopThread) -> Callable[..., Any]:
    """A blocking version of ``func`` (same name, docstring and signature)."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        def call_coroutine(*args: Any, **kwargs: Any) -> Any:
            return _blocking_result(runner.run(func(*args, **kwargs)), runner)

        return call_coroutine

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        # a plain method (or an async generator function: calling it starts nothing)
        return _blocking_result(func(*args, **kwargs), runner)

    return call


class Blocking(Generic[T]):
    """An SDK object whose async methods and iterators are made blocking (see the module).

    ``Blocking[InteractiveDataset]`` has the methods of
    :class:`~provena_like.modules.InteractiveDataset`, each returning its result instead of
    a coroutine. The wrapped object is :attr:`wrapped` (use it from async code only).
    """

    def __init__(self, target: T, runner: _LoopThread) -> None:
        self._target = target
        self._runner = runner

    @property
    def wrapped(self) -> T:
        """The async object behind this facade."""
        return self._target

    def __getattr__(self, name: str) -> Any:
        if name in ("_target", "_runner"):  # not set yet (copying, unpickling)
            raise AttributeError(name)
        value = getattr(self._target, name)
        if inspect.ismethod(value) or inspect.isfunction(value):
            return _blocking_callable(value, self._runner)
        return _blocking_result(value, self._runner)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._target)) | {"wrapped"})

    def __iter__(self) -> Iterator[Any]:
        if not hasattr(self._target, "__aiter__"):
            raise TypeError(f"{type(self._target).__name__} is not iterable")
        return BlockingIterator(self._target.__aiter__(), self._runner)

    def __repr__(self) -> str:
        return f"Blocking({self._target!r})"

    def _repr_html_(self) -> str | None:
        html = getattr(self._target, "_repr_html_", None)
        return html() if callable(html) else None


_END = object()


class BlockingIterator(Iterator[T], Closeable):
    """Walks an async iterator from blocking code, one step at a time on the private loop.

    Stopping early leaves the async iterator suspended: call :meth:`close` (or use it in a
    ``with`` block) to end it, which releases what it holds (e.g. an open listing).
    """

    def __init__(self, iterator: AsyncIterator[T], runner: _LoopThread) -> None:
        self._iterator = iterator
        self._runner = runner
        self._done = False

    async def _step(self) -> Any:
        try:
            return await self._iterator.__anext__()
        except StopAsyncIteration:
            return _END

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        value = self._runner.run(self._step())
        if value is _END:
            self._done = True
            raise StopIteration
        result: T = _blocking_result(value, self._runner)
        return result

    def close(self) -> None:
        """End the async iterator (``aclose()`` where it has one). Closing twice is harmless."""
        if self._done:
            return
        self._done = True
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            self._runner.run(aclose())


class BlockingClient(Blocking[ProvenaClient], Closeable, _TypedSurface):
    """A :class:`~provena_like.ProvenaClient` whose calls block: for scripts and notebooks.

    It takes the arguments of :class:`~provena_like.ProvenaClient` and has its attributes
    (``datastore``, ``registration``, ``registry_client``, ``search_client``,
    ``auth_client``, ``datastore_client``, ``review_client``, ``as_user`` ...), each call
    returning its result. The async client runs on a private event loop in a background
    thread, started on first use and stopped by :meth:`close`, by leaving a ``with`` block
    or when the interpreter exits. So it works where an event loop already runs (Jupyter).

    Progress callbacks are called on that background thread: they must not call this
    client (a :class:`~provena_like.UsageError` says so); updating a progress bar is fine.

    Args:
        config: as for :class:`~provena_like.ProvenaClient`.
        auth: as for :class:`~provena_like.ProvenaClient`.
        transport: as for :class:`~provena_like.ProvenaClient`.
        retry_policy: as for :class:`~provena_like.ProvenaClient`.
        **config_overrides: as for :class:`~provena_like.ProvenaClient`.

    Example:
        ```python
        pv = BlockingClient.from_env()
        try:
            ds = pv.datastore.interactive("10378.1/42")
            result = ds.download("./copy")
            print(result)            # TransferResult: 62 ok, 0 failed, 21.1 MB
        finally:
            pv.close()
        ```
    """

    def __init__(
        self,
        config: ProvenaConfig | None = None,
        *,
        auth: httpx.Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_policy: RetryPolicy | None = None,
        **config_overrides: Any,
    ) -> None:
        client = ProvenaClient(
            config, auth=auth, transport=transport, retry_policy=retry_policy, **config_overrides
        )
        self._own(client)

    def _own(self, client: ProvenaClient) -> None:
        runner = _LoopThread()
        Blocking.__init__(self, client, runner)
        # closes the async client and stops the loop on close(), or at interpreter exit
        self._finalizer = weakref.finalize(self, _shutdown, runner, client)

    @classmethod
    def from_env(cls, **overrides: Any) -> BlockingClient:
        """Build one as :meth:`ProvenaClient.from_env` does (arguments, ``PROVENA_*``, file).

        Example:
            ```python
            with BlockingClient.from_env(timeout=60) as pv:
                me = pv.auth_client.userinfo()
            ```
        """
        return cls.wrap(ProvenaClient.from_env(**overrides))

    @classmethod
    def wrap(cls, client: ProvenaClient) -> BlockingClient:
        """Make an async client blocking; it must not have been used in another event loop.

        The blocking client then owns ``client``: closing it closes ``client``.

        Example:
            ```python
            pv = BlockingClient.wrap(ProvenaClient.from_env(timeout=60))
            with pv:
                me = pv.auth_client.userinfo()
            ```
        """
        blocking = object.__new__(cls)
        blocking._own(client)
        return blocking

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (the client can't be used afterwards)."""
        return not self._finalizer.alive

    def close(self) -> None:
        """Close the async client (its pool, engines, auth) and stop the background loop.

        Closing twice is harmless.
        """
        self._finalizer()

    def __repr__(self) -> str:
        return f"BlockingClient({self._target!r})"
