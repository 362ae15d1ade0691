"""The runtime: one lifespan that opens Redis, loads the brain and runs the configured roles."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bots.callbacks import CallbackSigner
from bots.channels import Channel, ChannelContext
from bots.desk.human import ServiceHumanSide
from bots.desk.notice_cmd import DeskNotices
from bots.desk.notices import CustomerNotices, DeskEcho
from bots.desk.scheduler import DeskScheduler
from bots.desk.templates import Templates
from bots.desk.turns import DeskDecider
from bots.health import Health, health_route, supervise
from bots.http_guard import Guard, GuardConfig, http_runner
from bots.pace import CustomerPace, PaceConfig
from bots.redact import install_settings_redaction
from bots.redis_connect import redis_client, wait_until_up
from bots.rules.files import load_settings_rules
from bots.rules.timers import RuleTimers
from bots.settings import Settings
from bots.telegram.channel import TelegramChannel
from bots.telegram.sender import SendLimits
from bots.trainer.desk import TrainerDesk, TrainerSetup, trainer_ids
from bots.trainer.knowledge import FlowDrafts
from bots.trainer.reload import BrainReloader, request_reload
from bots.trainer.stats import TrainerStats
from bots.turns import Brain, TurnDecider
from bots.vk.channel import VkChannel
from bots.web.channel import WebChannel
from bots.web.files import MAX_BYTES as UPLOAD_MAX
from bots.worker import Worker, WorkerConfig
from flows.engine import FlowEngine
from flows.loader import load_flows
from handoff.access import Access
from handoff.api import create_api_app
from handoff.audit import DeadLetters
from handoff.clock import SYSTEM_CLOCK, Clock
from handoff.config import HandoffConfig
from handoff.conversations import ConversationStore, Limits
from handoff.embedded_redis import EmbeddedRedis
from handoff.hours import BusinessHours
from handoff.inbox import Inbox
from handoff.ingest import IngestConfig, Ingestor
from handoff.keys import Keys
from handoff.lease import Lease, owner_token
from handoff.links import Links
from handoff.scripts import Scripts
from handoff.service import HandoffService
from handoff.team_metrics import TEAM
from handoff.tokens import ApiTokens
from nlu.cache import load_or_train
from nlu.data import load_training_data
from nlu.embedded import EmbeddedClassifier
from nlu.rasa import RasaBackend
from nlu.types import NLUBackend

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def load_brain(settings: Settings, progress: Progress | None = None) -> Brain:
    """Read NLU data and flows, train (or load the cached model) and build the engine."""
    say = progress or (lambda _msg: None)
    say(f"reading NLU data from {settings.nlu_data_dir}")
    data = load_training_data(settings.nlu_data_dir)
    say("loading the NLU model (trains when the data changed)")
    classifier, trained = load_or_train(
        data, cache_dir=settings.model_cache_dir, threshold=settings.nlu_threshold
    )
    say(("trained" if trained else "loaded cached") + f" model: {len(data.intents)} intents")
    flows = load_flows(settings.flows_dir)
    engine = FlowEngine(
        flows, language=settings.language,
        misses_before_handoff=settings.misses_before_handoff, rng=random.Random(),
    )
    rules = load_settings_rules(settings, set(data.intents))
    if rules.rules:
        say(f"{len(rules.rules)} automation rules from {rules.file}")
    return Brain(nlu=nlu_backend(settings, classifier, say), engine=engine,
                 language=settings.language, rules=rules)


def nlu_backend(settings: Settings, classifier: EmbeddedClassifier, say: Progress) -> NLUBackend:
    """NLU_BACKEND=rasa: Rasa's /model/parse, with the embedded model while Rasa is down."""
    if settings.nlu_backend != "rasa":
        return classifier
    say(f"NLU through Rasa at {settings.rasa_url} (the embedded model while it does not answer)")
    return RasaBackend(settings.rasa_url, classifier, threshold=settings.nlu_threshold,
                       timeout=settings.rasa_timeout)


@dataclass(frozen=True, slots=True)
class Tuning:
    """Knobs tests and benchmarks turn (production uses the defaults)."""

    send_limits: SendLimits = field(default_factory=SendLimits)
    clock: Clock = SYSTEM_CLOCK  # the handoff's timers (tests move a FakeClock)
    desk_tick: float = 5.0  # seconds between rounds of SLA checks and queue updates
    # The desk's pacing clock (a benchmark compresses time to watch a 15-minute burst)
    desk_clock: Callable[[], float] = time.monotonic
    desk_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    reload_poll: float = 5.0  # seconds between checks for a reload request pub/sub missed
    http_guard: GuardConfig = field(default_factory=GuardConfig)
    customer_pace: PaceConfig = field(default_factory=PaceConfig)


class Runtime:
    def __init__(
        self, settings: Settings, redis: aioredis.Redis, brain: Brain,
        embedded: EmbeddedRedis | None = None, tuning: Tuning = Tuning(),
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.brain = brain
        self.tuning = tuning
        self._embedded = embedded
        self.keys = Keys(settings.redis_prefix)
        self.scripts = Scripts(redis)
        self.store = ConversationStore(
            redis, self.keys, self.scripts, Limits(outbox_maxlen=settings.stream_maxlen,
                                                   journal_maxlen=settings.stream_maxlen,
                                                   transcript_max=settings.transcript_max),
            clock=tuning.clock,
        )
        self.ingestor = Ingestor(
            redis, self.keys, self.scripts,
            IngestConfig(
                settings.ingest_shards, settings.dedup_ttl_seconds, settings.stream_maxlen
            ),
        )
        self.owner = owner_token()
        self._signer: CallbackSigner | None = None
        self.handoff = HandoffService(redis, self.keys, self.scripts, handoff_config(settings),
                                      tuning.clock)
        self.access = Access(redis, self.keys, self.scripts, self.handoff.config, tuning.clock)
        self.templates = Templates(seed_templates(settings.templates_path))
        self.health = Health()
        self.guard = Guard(
            tuning.http_guard, trusted_proxies=settings.trusted_proxy_addresses,
            api_token=settings.api_token.get_secret_value() if settings.api_token else None)

    @classmethod
    async def open(
        cls, settings: Settings, *, brain: Brain | None = None, tuning: Tuning = Tuning(),
        progress: Progress | None = None,
    ) -> Runtime:
        install_settings_redaction(settings)  # this runtime's tokens never reach a log line
        redis, embedded, where = redis_client(settings)
        if progress and embedded is not None:
            progress(f"no REDIS_URL: using {where}")
        try:
            await wait_until_up(redis, where, progress)
            if brain is None:
                brain = await asyncio.to_thread(load_brain, settings, progress)
        except BaseException:
            await redis.aclose()
            if embedded:
                embedded.stop()
            raise
        runtime = cls(settings, redis, brain, embedded, tuning)
        await runtime.signer()
        await runtime.access.seed({
            "operator": [f"tg:{uid}" for uid in settings.operator_ids],
            "supervisor": [f"tg:{uid}" for uid in settings.supervisor_ids],
            "trainer": [f"tg:{uid}" for uid in settings.trainer_ids],
        })
        await runtime.handoff.shifts.seed(settings.shifts_by_operator())
        freeze_startup_heap()
        return runtime

    async def close(self) -> None:
        await self.redis.aclose()
        if self._embedded is not None:
            self._embedded.stop()

    async def signer(self, max_bytes: int = 64) -> CallbackSigner:
        """Callback signing key: made once, kept in Redis, shared by every process."""
        if self._signer is None:
            key = f"{self.keys.prefix}callback-secret"
            await self.redis.set(key, secrets.token_hex(32), nx=True)
            secret = bytes.fromhex(str(await self.redis.get(key)))
            self._signer = CallbackSigner(secret, self.redis, self.keys, max_bytes=max_bytes)
        return self._signer

    async def worker(self, desk_bot: str = "") -> Worker:
        """The worker, with the Telegram desk's decisions when there is a desk (`desk_bot`:
        the bot's @username, for commands addressed /take@this_bot)."""
        signer = await self.signer()
        settings = self.settings
        human = ServiceHumanSide(self.handoff, settings.language,
                                 settings.desk_routing() if settings.desk_groups else None,
                                 self.store)
        links = None
        networks = [settings.telegram_bot_token is not None, settings.vk_enabled,
                    settings.web_enabled]
        if sum(networks) >= 2:
            links = Links(  # a customer may link their accounts: Telegram, VK, the widget
                self.redis, self.keys, self.scripts, journal_maxlen=settings.stream_maxlen,
                transcript_max=settings.transcript_max)
        desk = None
        if settings.operator_chat_id is not None:
            desk = DeskDecider(
                self.handoff, self.store, signer, self.templates, settings.language,
                supervisors=[f"tg:{uid}" for uid in settings.supervisor_ids],
                bot_username=desk_bot, desks=settings.desk_routing(), access=self.access,
                trainer=self.trainer_desk(),
                notices=DeskNotices(self.redis, self.keys, self.scripts, self.store,
                                    settings.language))
        return Worker(
            self.redis, self.keys, self.scripts, self.store,
            TurnDecider(self.brain, signer, human, desk=settings.operator_chat_id is not None,
                        pace=CustomerPace(self.tuning.customer_pace), links=links),
            WorkerConfig(shards=settings.ingest_shards, lease_ttl=settings.lease_seconds),
            self.owner, desk=desk)

    # --- the trainers' tools (bots/trainer) ---------------------------------------------
    def trainer_desk(self) -> TrainerDesk:
        setup = TrainerSetup(self.settings.nlu_data_dir,
                             FlowDrafts(self.settings.flow_drafts_path),
                             trainer_ids(self.settings.trainer_ids))
        return TrainerDesk(setup, Inbox(self.redis, self.keys), self.store, self.templates,
                           self.request_reload, self.access)

    async def request_reload(self, by: str, reply_to: str = "") -> int:
        return await request_reload(self.redis, self.keys, by=by, reply_to=reply_to)

    def request_reload_soon(self, by: str) -> None:
        """For a signal handler: the request is sent from a task."""
        self._reload_request = asyncio.get_running_loop().create_task(self.request_reload(by))

    def reloader(self, worker: Worker) -> BrainReloader:
        def swap(brain: Brain) -> None:
            self.brain = brain
            worker.decider.brain = brain

        return BrainReloader(self.redis, self.keys, self.settings, load_brain, swap,
                             self.store.report_to_desk, poll=self.tuning.reload_poll)

    async def run(self, stop: asyncio.Event, roles: set[str]) -> None:
        """Every configured channel's roles among `roles` (`ingress`, `worker`, `sender`)
        until `stop`. The HTTP server, the worker, the reloader and the desk's scheduler run
        once, whatever the channels."""
        channels = self.channels()
        tasks: list[asyncio.Task[None]] = []
        runner: web.AppRunner | None = None
        try:
            for channel in channels:
                await channel.prepare()
            if "ingress" in roles:  # webhooks, the widget, the API, /healthz, /metrics
                routes = [route for channel in channels for route in channel.routes()]
                runner = http_runner(self.http_app(routes))
                await _serve_http(runner, self.settings)
            for channel in channels:
                tasks += await channel.start(stop, roles, self._role)
            if "worker" in roles:
                worker = await self.worker(desk_bot=next(
                    (c.username for c in channels if isinstance(c, TelegramChannel)), ""))
                tasks.append(self._role("worker", worker.run, stop))
                tasks.append(self._role("reload", self.reloader(worker).run, stop))
                tasks.append(self._role(
                    "desk-scheduler", lambda stop: self.scheduler().run(stop), stop))
            await _until_stopped_or_failed(stop, tasks)
        finally:
            stop.set()
            await _shut_down(tasks)
            for channel in channels:  # before the HTTP server: it waits for open sockets
                await channel.close()
            if runner is not None:
                await runner.cleanup()

    def channels(self) -> list[Channel]:
        """The channels the settings configure: Telegram and VK with their tokens, the web
        unless WEB_ENABLED=false. Operators' photos in the Telegram desk reach the others
        through Telegram's files."""
        found: list[Channel] = []
        context = self.channel_context()
        telegram = None
        if self.settings.telegram_bot_token is not None:
            telegram = TelegramChannel(context)
            found.append(telegram)
        files = telegram.files() if telegram else None
        if self.settings.vk_enabled:
            found.append(VkChannel(context, files))
        if self.settings.web_enabled:
            found.append(WebChannel(context, files))
        return found

    def channel_context(self) -> ChannelContext:
        assert self._signer is not None, "open() makes the signer"
        return ChannelContext(self.settings, self.redis, self.keys, self.scripts, self.store,
                              self.ingestor, self.handoff, self._signer, self.tuning,
                              self.owner)

    async def _metrics(self, _request: web.Request) -> web.Response:
        await TEAM.refresh(self.handoff, self.handoff.clock.now())
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    def http_app(self, routes: Sequence[web.AbstractRouteDef] = ()) -> web.Application:
        """/metrics, /healthz, the HTTP API when enabled, and the channels' endpoints."""
        # Bodies up to an image the widget uploads; the API reads its own with tighter limits.
        app = web.Application(middlewares=[self.guard.middleware()],
                              client_max_size=UPLOAD_MAX + 64 * 1024)
        app.router.add_get("/metrics", self._metrics)
        app.add_routes([health_route(self.health, self.redis)])
        if self.settings.api_token is not None:
            app.add_subapp("/api/v1", create_api_app(
                self.handoff, self.store, token=self.settings.api_token.get_secret_value(),
                notices=CustomerNotices(self.settings.language),
                stats=TrainerStats(self.redis, self.keys),
                desk=DeskEcho() if self.settings.operator_chat_id is not None else None,
                dead_letters=DeadLetters(self.redis, self.keys, self.scripts,
                                         self.settings.ingest_shards, self.settings.stream_maxlen,
                                         self.handoff.config.journal_maxlen),
                tokens=ApiTokens(self.redis, self.keys), access=self.access))
        from bots.web.console import console_app  # the operators' console, always mounted
        app.add_subapp("/console", console_app(self))
        app.add_routes(routes)
        return app

    def _role(self, name: str, run: Callable[[asyncio.Event], Awaitable[None]],
              stop: asyncio.Event) -> asyncio.Task[None]:
        """A role that outlives its failures (bots/health.py)."""
        return asyncio.create_task(supervise(name, run, stop, self.health), name=name)

    def scheduler(self) -> DeskScheduler:
        lease = Lease(self.redis, self.scripts, self.keys.lease("desk-scheduler"),
                      ttl=self.settings.lease_seconds, owner=self.owner)
        return DeskScheduler(
            self.handoff, self.store, lease, supervisors=self.settings.supervisor_ids,
            language=self.settings.language, auto_assign=self.settings.auto_assign,
            tick=self.tuning.desk_tick, access=self.access,
            desk=self.settings.operator_chat_id is not None,
            rules=RuleTimers(self.handoff, self.store, lambda: self.brain.rules,
                             language=self.settings.language,
                             desk=self.settings.operator_chat_id is not None),
        )


def freeze_startup_heap() -> None:
    """Keep the cyclic GC away from what start-up built (libraries, model, flows).

    A full collection over aiogram's models and the classifier took 100-200 ms here, which
    showed up as the p99 of reply latency; frozen objects are never scanned again.
    """
    gc.collect()
    gc.freeze()


SHIPPED_TEMPLATES = Path(__file__).parent / "desk" / "templates.yml"


def seed_templates(path: Path) -> Path:
    """First start: the operators' file begins as a copy of the shipped examples (theirs to
    edit from the desk afterwards; an existing file is never overwritten)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHIPPED_TEMPLATES, path)
    return path


def handoff_config(settings: Settings) -> HandoffConfig:
    hours = None
    if settings.business_hours or settings.holidays:
        hours = BusinessHours.parse(settings.business_hours or "mon-sun 00:00-24:00",
                                    settings.timezone, settings.holidays)
    return HandoffConfig(
        default_capacity=settings.operator_capacity,
        offline_grace_seconds=settings.offline_grace_minutes * 60,
        unclaimed_minutes=settings.sla_unclaimed_minutes,
        reply_minutes=settings.sla_reply_minutes, hours=hours, timezone=settings.timezone,
        desk_hours=settings.desk_hours_by_chat(), ladder_minutes=settings.sla_ladder_minutes,
        journal_maxlen=settings.stream_maxlen, outbox_maxlen=settings.stream_maxlen,
        transcript_max=settings.transcript_max,
    )


async def _shut_down(tasks: list[asyncio.Task[None]]) -> None:
    """Roles see `stop` and finish what is on the wire; whatever still runs after a grace
    period is cancelled (its work stays unacknowledged in Redis for the next process)."""
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=3.0)
    for task in pending:
        task.cancel()
    if pending:
        _done, stuck = await asyncio.wait(pending, timeout=5.0)
        for task in stuck:
            log.error("shutdown: %s did not stop", task.get_name())
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("shutdown: %s had failed: %r", task.get_name(), task.exception())


async def _until_stopped_or_failed(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    waiter = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    for task in done:
        if task is not waiter and not task.cancelled():
            with contextlib.suppress(asyncio.CancelledError):
                task.result()  # re-raise a role's fatal error


async def _serve_http(runner: web.AppRunner, settings: Settings) -> None:
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, settings.http_port).start()
    log.info("HTTP on %s:%d", settings.http_host, settings.http_port)



