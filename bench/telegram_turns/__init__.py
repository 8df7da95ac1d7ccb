"""Benchmark: whole Telegram conversations through the real service, against a fake Bot API.

Run::

    python -m bench.telegram_turns [--enquirers N] [--database sqlite|postgres|both]
                                   [--baseline/--no-baseline] [--solo N] [--profile DIR]
                                   [--replicas N]

Per scenario (ours on SQLite, ours on PostgreSQL, ours on PostgreSQL as N webhook
replicas, a plain-PTB baseline on PTB's default httpx transport, and the same baseline on
our aiohttp transport):

1. The fake Bot API (:class:`drivers.BenchTelegram`, a subclass of
   ``tests/fakes/telegram_api.FakeTelegram``) and the simulated enquirers run in *this*
   process.
2. The service runs in a *child* process (:mod:`.service`): ``bot.app.build(settings,
   update_processor=TimedUpdateProcessor(), rate_limited=False)`` run by
   ``bot.app.running``, i.e. what ``helpline run`` runs (HTTP server on a free port,
   leases, polling or the webhook, outbox worker, timers, housekeeping; no Slack), with the
   timing processor passed in. The database is fresh: a SQLite file in a temporary
   directory, or the PostgreSQL database (``bench_telegram`` unless ``--postgres-url``;
   created if missing) wiped and brought up to date when the service opens it.
3. Three warm-up conversations, then ``--solo`` conversations one at a time (the latency
   of one update with nothing else competing; run first, because the load phases leave the
   HTTP pool full of connections), then N enquirers at once, each completing the 18 turns
   of :func:`bench.enquiry.script` (the tests' ``complete_enquiry``), each waiting for the
   bot's reply before its next turn, like a person. Then another N (new chats), to see
   whether memory grows with finished conversations.

Why a child process: the CPU time, ``ru_maxrss`` and RSS are then the service's alone,
not mixed with the fake (which keeps every message it saw) or the drivers, and each
scenario starts fresh. Parent and child talk JSON lines over the child's stdin/stdout.

Latency is measured inside the service: :class:`.service.TimedUpdateProcessor` times
``process_update`` from PTB handing the update over until its handler returned (waiting
for the chat's lock and every Bot API call the handler makes included). The part spent in
``IntakeService.handle`` (the database transaction and the flow step) is timed by a
stopwatch on the service's instance. Under load both are mostly queueing: with N updates
in flight on one event loop, latency is near N / throughput (Little's law). "CPU per
update" is the service's CPU time in the load phases (all threads) over the updates.

The rate limiter is OFF: the fake is local and has no limits. The baseline
(:mod:`.baseline`) is a plain PTB ``ConversationHandler`` bot, state in memory, asking the
same questions worded from the same data; ``baseline-aiohttp`` is it on our transport,
the floor under our figures. Replicas (``--replicas``, PostgreSQL only): N service
processes in webhook mode; the fake POSTs each update at once to the next in turn, so one
chat's turns land on different processes and only the database's per-chat lock keeps
them in order. "machine CPU use" (from /proc/stat) shows when the machine is the limit.

Modules: :mod:`.service` (the child, and the parent's handle on it), :mod:`.baseline`,
:mod:`.drivers` (fake and enquirers), :mod:`.figures` (stats, printing), :mod:`.cli`.
Nothing is asserted: it prints figures and the issue's targets beside them.
"""
